"""int8 export: the recipes tried in order (dynamic, calibrated static, sensitive operators in fp32), and an
export whose int8 cannot hold still writes the checked fp32 model and says so in one line (exit status 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli
from conftest import write_toy_pairs

from bertdistill.data.sources import DataSpec, load_task_data
from bertdistill.export import ExportConfig, export_model
from bertdistill.export import onnx_int8
from bertdistill.export.onnx_int8 import Int8Recipe, choose_int8, layer_of, quantize_int8, recipes, sensitive_nodes
from bertdistill.export.parity import real_batches
from bertdistill.inference import load_scorer, predict_logits
from bertdistill.io import is_complete


@pytest.fixture(scope="module")
def fp32_export(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    data = write_toy_pairs(root / "toy.tsv", n=64)
    out = root / "fp32"
    export_model(ExportConfig(model=str(tiny_bert), output=str(out), data=DataSpec(path=str(data)),
                              parity_examples=32, batch_size=16))
    return out, data


def test_recipes_go_from_cheapest_to_most_fp32():
    names = [r.name for r in recipes(6, calibration=True)]
    assert names[:4] == ["dynamic", "static", "dynamic, head in fp32", "static, head in fp32"]
    assert names[-2:] == ["dynamic, head + top 3 layers in fp32", "static, head + top 3 layers in fp32"]
    assert [r.name for r in recipes(2, calibration=False)] == ["dynamic", "dynamic, head in fp32",
                                                                "dynamic, head + top 1 layer in fp32"]


def test_sensitive_nodes_are_the_head_and_the_top_layers(fp32_export):
    out, _ = fp32_export
    head = sensitive_nodes(out / "model.onnx", 0)
    assert head and all(layer_of(n) is None for n in head)
    assert any("classifier" in n for n in head) and any("pooler" in n for n in head)
    top = sensitive_nodes(out / "model.onnx", 1)
    assert set(head) < set(top) and {layer_of(n) for n in top if layer_of(n) is not None} == {3}  # 4 layers: 0..3
    assert not any(layer_of(n) == 3 for n in head)


@pytest.mark.parametrize("recipe", [Int8Recipe(), Int8Recipe(static=True), Int8Recipe(fp32_top=1),
                                    Int8Recipe(static=True, fp32_top=0)], ids=lambda r: r.name)
def test_every_recipe_writes_a_model_close_to_fp32(fp32_export, tiny_bert, tmp_path, recipe):
    import shutil

    out, data = fp32_export
    target = tmp_path / "m"
    shutil.copytree(out, target)
    scorer = load_scorer(str(tiny_bert), "torch")
    calibration = real_batches(scorer.tokenizer, DataSpec(path=str(data), unlabeled=True), 32, 64, 16, 1)[0]
    quantize_int8(target / "model.onnx", target / "model_quantized.onnx", "legacy", target, True, recipe,
                  calibration if recipe.static else None)
    task = load_task_data(DataSpec(path=str(data)))
    want = predict_logits(scorer, task, max_length=64, batch_size=16)
    got = predict_logits(load_scorer(str(target), "onnx-int8"), task, max_length=64, batch_size=16)
    assert np.abs(want - got).max() < 0.1 and (want.argmax(-1) == got.argmax(-1)).mean() >= 0.95


def test_static_recipes_need_calibration_rows(fp32_export, tmp_path):
    from bertdistill.errors import UserError

    out, _ = fp32_export
    with pytest.raises(UserError, match="calibration"):
        quantize_int8(out / "model.onnx", tmp_path / "q.onnx", "legacy", tmp_path, True, Int8Recipe(static=True))


def test_choose_int8_moves_on_until_a_recipe_passes(fp32_export, tmp_path, monkeypatch):
    out, _ = fp32_export
    written = []
    monkeypatch.setattr(onnx_int8, "quantize_int8", lambda fp32, int8, *a, **k: written.append(a[-2].name))
    results = iter([0.90, 0.95, 0.995])

    def check():
        agreement = next(results)
        return {"passed": agreement >= 0.99, "argmax_agreement": agreement, "max_abs_diff": 0.1}

    parity, tried = choose_int8(out / "model.onnx", tmp_path / "q.onnx", "legacy", tmp_path, True, 4, [{}], check)
    assert [t["recipe"] for t in tried] == ["dynamic", "static", "dynamic, head in fp32"] == written
    assert [t["passed"] for t in tried] == [False, False, True]
    assert parity["passed"] and parity["recipe"] == "dynamic, head in fp32"


def _negate_logits(fp32, int8, *args, **kwargs):
    """An int8 file that computes the opposite of the model: no recipe can pass."""
    import onnx
    from onnx import helper

    proto = onnx.load(str(fp32))
    for node in proto.graph.node:
        node.output[:] = ["logits_raw" if o == "logits" else o for o in node.output]
    proto.graph.node.append(helper.make_node("Neg", ["logits_raw"], ["logits"]))
    onnx.save(proto, str(int8))


def test_when_no_int8_recipe_holds_the_checked_fp32_export_is_still_written(tiny_bert, tmp_path, monkeypatch):
    data = write_toy_pairs(tmp_path / "toy.tsv", n=64)
    monkeypatch.setattr(onnx_int8, "quantize_int8", _negate_logits)
    out = tmp_path / "export"
    res = run_cli("export", "--model", tiny_bert, "--output", out, "--data", data, "--int8", "--parity-examples", "32",
                  "--max-length", "64")
    assert res.code == 3, res.err
    errors = [line for line in res.err.splitlines() if line.startswith(("error:", "failed:"))]
    assert len(errors) == 1 and errors[0].startswith("failed:") and "int8 not written" in errors[0]
    assert "argmax_agreement" in errors[0] and "Traceback" not in res.err
    assert is_complete(out) and (out / "model.onnx").is_file() and not (out / "model_quantized.onnx").exists()
    report = json.loads((out / "export_report.json").read_text())
    assert report["passed"] is True and report["parity"]["fp32"]["passed"] and not report["parity"]["int8"]["passed"]
    assert set(report["failed"]) == {"int8"} and "model_quantized.onnx" not in report["files"]
    assert [t["recipe"] for t in report["int8_recipes"]] == [r.name for r in recipes(4, calibration=True)]
    # What was written serves: predict and bench on the export work.
    res = run_cli("predict", "--model", out, "--data", data, "--max-length", "64", "--output", tmp_path / "p.jsonl")
    assert res.code == 0, res.err
    res = run_cli("bench", "--model", f"t={tiny_bert}", "--model", f"onnx={out}", "--data", data, "--max-length", "64",
                  "--batch-sizes", "1,4", "--repeats", "1", "--warmup", "0", "--threads", "1")
    assert res.code == 0, res.err


def test_a_recipe_that_cannot_quantize_is_skipped(fp32_export, tmp_path, monkeypatch):
    from bertdistill.errors import UserError

    out, _ = fp32_export

    def quantize(fp32, int8, exporter, work, per_channel, recipe, calibration):
        if recipe.static:
            raise UserError("int8 quantization failed (boom)")

    monkeypatch.setattr(onnx_int8, "quantize_int8", quantize)
    results = iter([0.90, 0.995])
    parity, tried = choose_int8(out / "model.onnx", tmp_path / "q.onnx", "legacy", tmp_path, True, 4, [{}],
                                lambda: {"passed": (a := next(results)) >= 0.99, "argmax_agreement": a})
    assert [(t["recipe"], "error" in t) for t in tried] == [("dynamic", False), ("static", True),
                                                            ("dynamic, head in fp32", False)]
    assert parity["recipe"] == "dynamic, head in fp32"
    monkeypatch.setattr(onnx_int8, "quantize_int8", lambda *a: (_ for _ in ()).throw(UserError("no int8")))
    with pytest.raises(UserError, match="no int8"):
        choose_int8(out / "model.onnx", tmp_path / "q.onnx", "legacy", tmp_path, True, 4, [{}], lambda: {})
