"""bertdistill predict: same scores with PyTorch and ONNX, chunked streaming, ranked output, formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_toy_pairs

from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError
from bertdistill.export import ExportConfig, export_model
from bertdistill.predict import PredictConfig, predict, predict_file, ranked_path


@pytest.fixture(scope="module")
def onnx_dir(tiny_bert, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "onnx"
    export_model(ExportConfig(model=str(tiny_bert), output=str(out), int8=True, parity_examples=16))
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ranking_spec(path: Path) -> DataSpec:
    return DataSpec(path=str(path), group_column="qid")


def test_same_scores_with_torch_and_onnx_and_ranked_output(tiny_bert, onnx_dir, toy_ranking, tmp_path):
    rows = {}
    for name, model, backend in (("torch", tiny_bert, "torch"), ("onnx", onnx_dir, "auto"),
                                 ("int8", onnx_dir, "onnx-int8")):
        summary = predict_file(PredictConfig(model=str(model), backend=backend, data=ranking_spec(toy_ranking),
                                             output=str(tmp_path / f"{name}.jsonl"), chunk_rows=10, batch_size=4))
        assert summary.rows == 48 and summary.kind == "ranking" and summary.metrics["queries_scored"] == 12
        rows[name] = read_jsonl(tmp_path / f"{name}.jsonl")
    assert summary.backend == "onnx-int8"
    torch_p = np.array([[r["probabilities"][n] for n in ("0", "1")] for r in rows["torch"]])
    onnx_p = np.array([[r["probabilities"][n] for n in ("0", "1")] for r in rows["onnx"]])
    int8_p = np.array([[r["probabilities"][n] for n in ("0", "1")] for r in rows["int8"]])
    assert np.abs(torch_p - onnx_p).max() < 1e-5
    assert np.abs(torch_p - int8_p).max() < 1e-2
    first = rows["onnx"][0]
    assert set(first) == {"group", "index", "query", "passage", "prediction", "probabilities", "gold"}
    assert [r["index"] for r in rows["onnx"]] == list(range(48))
    assert [r["gold"] for r in rows["onnx"]] == [line.split("\t")[3] for line in toy_ranking.read_text().splitlines()[1:]]

    ranked = read_jsonl(ranked_path(tmp_path / "onnx.jsonl"))
    assert sorted(r["index"] for r in ranked) == list(range(48))
    by_group: dict[str, list[dict]] = {}
    for r in ranked:
        by_group.setdefault(r["group"], []).append(r)
    assert list(by_group) == [f"q{i}" for i in range(12)]  # queries in order of first appearance
    for group_rows in by_group.values():
        assert [r["rank"] for r in group_rows] == list(range(1, len(group_rows) + 1))
        scores = [r["probabilities"]["1"] for r in group_rows]
        assert scores == sorted(scores, reverse=True)


def test_chunked_tsv_matches_one_chunk_and_handles_unlabeled(onnx_dir, tmp_path):
    data = write_toy_pairs(tmp_path / "toy.tsv", n=23)
    outputs = []
    for chunk in (5, 1000):
        out = tmp_path / f"preds_{chunk}.tsv"
        predict(PredictConfig(model=str(onnx_dir), data=DataSpec(path=str(data), unlabeled=True),
                              output=str(out), chunk_rows=chunk, batch_size=3))
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    table = list(csv.reader(outputs[0].splitlines(), delimiter="\t"))
    assert table[0] == ["index", "query", "passage", "prediction", "p_0", "p_1"]
    assert [int(r[0]) for r in table[1:]] == list(range(23))
    assert all(abs(float(r[4]) + float(r[5]) - 1) < 1e-5 for r in table[1:])
    assert not ranked_path(tmp_path / "preds_5.tsv").exists()
    saved = json.loads((tmp_path / "preds_5.tsv.config.json").read_text())
    assert saved["chunk_rows"] == 5 and saved["data"]["unlabeled"] is True


def test_text_with_tabs_stays_one_tsv_cell(onnx_dir, tmp_path):
    data = tmp_path / "texts.jsonl"
    data.write_text(json.dumps({"text_a": "the\tcold river", "text_b": "snow\nand ice"}) + "\n"
                    + json.dumps({"text_a": "a cat", "text_b": "a dog"}) + "\n")
    out = tmp_path / "p.tsv"
    predict(PredictConfig(model=str(onnx_dir), data=DataSpec(path=str(data)), output=str(out), include_text=True))
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and all(len(line.split("\t")) == 6 for line in lines)
    assert lines[1].split("\t")[1] == "the cold river"


@pytest.mark.parametrize("name, message", [("p.csv", "unknown output type"), ("exists.jsonl", "already exists")])
def test_bad_outputs_are_user_errors(onnx_dir, toy_pairs, tmp_path, name, message):
    (tmp_path / "exists.jsonl").write_text("keep me\n")
    with pytest.raises(UserError, match=message):
        predict(PredictConfig(model=str(onnx_dir), data=DataSpec(path=str(toy_pairs)), output=str(tmp_path / name)))
    assert (tmp_path / "exists.jsonl").read_text() == "keep me\n"


def test_torch_backend_on_onnx_dir_and_mismatched_labels_are_user_errors(onnx_dir, tmp_path):
    data = tmp_path / "three.tsv"
    data.write_text("a\tb\tlabel\nx\ty\t0\nx\tz\t2\n")
    with pytest.raises(UserError, match="needs a PyTorch model"):
        predict(PredictConfig(model=str(onnx_dir), backend="torch", data=DataSpec(path=str(data)),
                              output=str(tmp_path / "p.jsonl")))
    with pytest.raises(UserError, match="label '2'"):
        predict(PredictConfig(model=str(onnx_dir), data=DataSpec(path=str(data), text_a="a", text_b="b"),
                              output=str(tmp_path / "p.jsonl")))
    assert not (tmp_path / "p.jsonl").exists()


def test_cli_predict_prints_metrics(onnx_dir, toy_ranking, tmp_path):
    from typer.testing import CliRunner

    from bertdistill.cli import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["predict", "--model", str(onnx_dir), "--data", str(toy_ranking),
                                      "--group-column", "qid", "--output", str(out), "--no-text"])
    assert result.exit_code == 0, result.output
    assert "48 rows scored with onnx" in result.output and "map" in result.output
    assert "query" not in read_jsonl(out)[0] and ranked_path(out).is_file()


def test_base_encoder_is_refused(tmp_path, toy_pairs):
    from conftest import make_tiny_bert

    base = make_tiny_bert(tmp_path / "base", layers=1, classifier=False)
    with pytest.raises(UserError, match="base encoder"):
        predict(PredictConfig(model=str(base), data=DataSpec(path=str(toy_pairs)), output=str(tmp_path / "p.jsonl")))
