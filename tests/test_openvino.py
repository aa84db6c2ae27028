"""The openvino backend: export --openvino writes the IR beside ONNX with its parity check, and predict, bench
and label take it through the backend registry. Skipped where the openvino extra is not installed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli
from conftest import write_toy_pairs

from bertdistill.inference import backend_names, get_backend, load_scorer, predict_logits

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'bertdistill[openvino]')")

from bertdistill.data.sources import DataSpec, load_task_data  # noqa: E402
from bertdistill.inference.openvino_backend import OPENVINO_XML, resolve_precision  # noqa: E402


@pytest.fixture(scope="module")
def ov_export(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("ov")
    data = write_toy_pairs(root / "toy.tsv", n=64)
    out = root / "export"
    res = run_cli("export", "--model", tiny_bert, "--output", out, "--data", data, "--openvino",
                  "--parity-examples", "32", "--max-length", "64")
    assert res.code == 0, res.err
    return out, data


def test_export_writes_the_checked_openvino_model_beside_onnx(ov_export):
    out, _ = ov_export
    assert (out / "model.onnx").is_file() and (out / OPENVINO_XML).is_file()
    report = json.loads((out / "export_report.json").read_text())
    assert report["passed"] and report["parity"]["openvino"]["passed"]
    assert report["openvino_precision"] == resolve_precision("auto") == report["parity"]["openvino"]["precision"]
    assert "openvino/model.bin" in report["files"] and "openvino" in report["versions"]


def test_the_backend_is_registered_and_auto_stays_onnx(ov_export):
    out, _ = ov_export
    assert "openvino" in backend_names()
    assert get_backend("auto", out).name == "onnx"  # torch does not take the IR's .bin for PyTorch weights
    assert get_backend("openvino", out).name == "openvino"


@pytest.mark.parametrize("precision", ["f32", "auto"])
def test_openvino_logits_match_torch(ov_export, tiny_bert, precision):
    from bertdistill.inference.openvino_backend import load_openvino

    out, data = ov_export
    task = load_task_data(DataSpec(path=str(data)))
    want = predict_logits(load_scorer(str(tiny_bert), "torch"), task, max_length=64, batch_size=16)
    got = predict_logits(load_openvino(str(out), threads=1, precision=precision), task, max_length=64, batch_size=16)
    tolerance = 1e-4 if resolve_precision(precision) == "f32" else 0.05
    assert np.abs(want - got).max() < tolerance and (want.argmax(-1) == got.argmax(-1)).mean() >= 0.95


def test_predict_bench_and_label_take_it(ov_export, tiny_bert, tmp_path):
    out, data = ov_export
    res = run_cli("predict", "--model", out, "--backend", "openvino", "--data", data, "--max-length", "64",
                  "--output", tmp_path / "p.jsonl")
    assert res.code == 0, res.err
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 64
    res = run_cli("bench", "--model", f"t={tiny_bert}", "--model", f"ov={out}:openvino", "--data", data,
                  "--max-length", "64", "--batch-sizes", "1,4", "--repeats", "1", "--warmup", "0", "--threads", "1",
                  "--json", tmp_path / "bench.json")
    assert res.code == 0, res.err
    fastest = json.loads((tmp_path / "bench.json").read_text())["fastest"]
    assert [sorted(f["rows"]) for f in fastest] == [["ov", "t"]]  # one model: the IR is t's weights
    res = run_cli("label", "--teacher", f"t={out}", "--backend", "openvino", "--data", data, "--max-length", "64",
                  "--output", tmp_path / "store")
    assert res.code == 0, res.err


def test_a_model_directory_is_refused_in_one_line(tiny_bert, tmp_path):
    res = run_cli("predict", "--model", tiny_bert, "--backend", "openvino", "--data",
                  write_toy_pairs(tmp_path / "t.tsv", n=8), "--output", tmp_path / "p.jsonl")
    assert res.code == 2 and "Traceback" not in res.err
    assert "--openvino" in res.err and len([ln for ln in res.err.splitlines() if ln.startswith("error:")]) == 1
