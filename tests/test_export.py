"""ONNX export: files and report, parity against PyTorch, int8, atomic failure, standalone serving."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import SHARED, requires_minilm, requires_shared

from bertdistill.data.sources import DataSpec, load_task_data
from bertdistill.errors import UserError
from bertdistill.export import ExportConfig, export_model, read_report
from bertdistill.export import exporter as exporter_module
from bertdistill.inference import load_scorer, predict_logits
from bertdistill.io import is_complete


@pytest.fixture(scope="module")
def exported(tiny_bert, tmp_path_factory):
    """One tiny export with int8 and real-data parity, shared by the tests that only read it."""
    from conftest import write_toy_pairs

    root = tmp_path_factory.mktemp("export")
    data = write_toy_pairs(root / "toy.tsv", n=64)
    out = root / "onnx"
    report = export_model(ExportConfig(model=str(tiny_bert), output=str(out), int8=True,
                                       data=DataSpec(path=str(data)), parity_examples=48, batch_size=16))
    return out, report, data


def test_export_writes_a_complete_self_contained_directory(exported, tiny_bert):
    out, report, _ = exported
    assert is_complete(out)
    for name in ("model.onnx", "model_quantized.onnx", "tokenizer.json", "config.json", "export_report.json",
                 "export_config.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"}
    saved = read_report(out)
    assert saved["passed"] is True and saved["exporter"] == "legacy" and saved["opset"] == 17
    assert saved["parity_source"] == "data" and saved["parity_data"]["rows_used"] == 48
    assert saved["files"]["model.onnx"] == (out / "model.onnx").stat().st_size
    assert saved["num_parameters"] == sum(p.numel() for p in load_scorer(str(tiny_bert), "torch").torch_model.parameters())
    assert saved["source_weights_sha256"] and saved["versions"]["onnxruntime"]
    assert report.parity["fp32"]["max_abs_diff"] <= 1e-4
    assert report.parity["int8"]["checked"] is True and report.parity["int8"]["argmax_agreement"] >= 0.99
    # No temporary or failed directories are left next to the output.
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".") or "failed" in p.name) == []


def test_directory_with_the_old_int8_name_still_loads(exported, tmp_path):
    import shutil

    import numpy as np

    from bertdistill.inference import is_onnx_dir

    out, _, _ = exported
    old = tmp_path / "old-export"
    shutil.copytree(out, old)
    (old / "model_quantized.onnx").rename(old / "model.int8.onnx")
    (old / "model.onnx").unlink()
    assert is_onnx_dir(old)
    from pathlib import Path

    from bertdistill.inference.scorer import score_rows

    new_scorer, old_scorer = load_scorer(str(out), "onnx-int8"), load_scorer(str(old), "onnx-int8")
    assert Path(old_scorer.model_file).name == "model.int8.onnx"
    a, b = ["what is the river", "a cat"], ["the river is long", "the dog runs"]
    new, _ = score_rows(new_scorer, new_scorer.encode(a, b, 32), 2)
    old_logits, _ = score_rows(old_scorer, old_scorer.encode(a, b, 32), 2)
    np.testing.assert_array_equal(new, old_logits)


def test_onnx_sessions_do_not_busy_wait(exported, monkeypatch):
    """Idle ONNX Runtime pool threads must not spin: they would take the cores of the other models in a bench."""
    import onnxruntime as ort

    out, _, _ = exported
    seen = []
    real = ort.InferenceSession

    def recording(path, options=None, **kwargs):
        seen.append(options)
        return real(path, options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    load_scorer(str(out), "onnx-int8", threads=2)
    (options,) = seen
    assert options.intra_op_num_threads == 2
    for pool in ("intra_op", "inter_op"):
        assert options.get_session_config_entry(f"session.{pool}.allow_spinning") == "0"


def test_onnx_graph_has_dynamic_axes_and_opset(exported):
    import onnx
    import onnxruntime as ort

    out, _, _ = exported
    proto = onnx.load(str(out / "model.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: (i.shape, i.type) for i in session.get_inputs()}
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(shape == ["batch", "sequence"] and kind == "tensor(int64)" for shape, kind in inputs.values())
    assert [o.name for o in session.get_outputs()] == ["logits"]


def test_exported_logits_match_pytorch_on_other_batch_shapes(exported, tiny_bert):
    out, _, data = exported
    task = load_task_data(DataSpec(path=str(data)))
    torch_scorer = load_scorer(str(tiny_bert), "torch")
    reference = predict_logits(torch_scorer, task, max_length=64, batch_size=5)  # shapes not seen at export
    fp32 = predict_logits(load_scorer(str(out), "onnx"), task, max_length=64, batch_size=5)
    int8 = predict_logits(load_scorer(str(out), "onnx-int8"), task, max_length=64, batch_size=5)
    assert np.abs(reference - fp32).max() < 1e-4
    assert np.abs(reference - int8).max() < 0.05
    assert (reference.argmax(-1) == fp32.argmax(-1)).all()


STANDALONE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    folder, pairs_file = sys.argv[1], sys.argv[2]
    max_length = json.load(open(f"{folder}/export_report.json"))["max_length"]
    id2label = json.load(open(f"{folder}/config.json"))["id2label"]
    tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
    tokenizer.enable_truncation(max_length)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
    pairs = json.load(open(pairs_file))
    encodings = tokenizer.encode_batch([(a, b) for a, b in pairs])
    feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
             "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
    session = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], feeds)[0]
    assert "torch" not in sys.modules and "transformers" not in sys.modules, "heavy imports leaked"
    print(json.dumps({"logits": logits.tolist(), "labels": [id2label[str(i)] for i in logits.argmax(-1)]}))
""")


def test_exported_directory_serves_with_only_onnxruntime_and_tokenizers(exported, tiny_bert, tmp_path):
    out, _, _ = exported
    pairs = [["what is the river", "the river is cold"], ["where is paris", "paris is in france and it is old"],
             ["who", "a cat"]]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    (tmp_path / "serve.py").write_text(STANDALONE)
    run = subprocess.run([sys.executable, str(tmp_path / "serve.py"), str(out), str(tmp_path / "pairs.json")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = np.array(json.loads(run.stdout)["logits"])

    from bertdistill.inference import tokenize_batch

    scorer = load_scorer(str(tiny_bert), "torch")
    batch = tokenize_batch(scorer.tokenizer, [a for a, _ in pairs], [b for _, b in pairs], 128)
    assert np.abs(scorer.logits(batch) - got).max() < 1e-4


def test_parity_failure_leaves_nothing_that_looks_finished(tiny_bert, tmp_path, monkeypatch):
    import torch

    real_export = exporter_module._export_onnx

    def export_a_different_model(model, file, config):
        with torch.no_grad():
            model.classifier.bias += 0.5  # the graph no longer computes what the reference computed
        real_export(model, file, config)

    monkeypatch.setattr(exporter_module, "_export_onnx", export_a_different_model)
    out = tmp_path / "broken"
    with pytest.raises(UserError, match="parity check failed: fp32 max_abs_diff=0.5"):
        export_model(ExportConfig(model=str(tiny_bert), output=str(out), parity_examples=16))
    assert not out.exists()
    failed = tmp_path / "broken.failed"
    assert not is_complete(failed) and not list(failed.glob("*.onnx")) and not (failed / "config.json").exists()
    report = json.loads((failed / "export_report.json").read_text())
    assert report["passed"] is False and report["parity"]["fp32"]["failure"].startswith("max_abs_diff above")
    assert [p.name for p in tmp_path.iterdir()] == ["broken.failed"]  # no temp directory left behind


def test_int8_threshold_applies_only_to_real_data(tiny_bert, tmp_path):
    report = export_model(ExportConfig(model=str(tiny_bert), output=str(tmp_path / "gen"), int8=True,
                                       parity_examples=32, int8_min_agreement=1.0))
    assert report.parity_source == "generated" and report.parity["int8"]["checked"] is False
    assert any("generated inputs" in note for note in report.notes)
    assert report.parity["fp32"]["checked"] is True and report.passed


def _weight_scale_sizes(path) -> set[int]:
    """Sizes of the int8 weight scales: 1 for one scale per tensor, the output width per channel."""
    import onnx

    graph = onnx.load(str(path)).graph
    return {int(np.prod(t.dims)) for t in graph.initializer if t.name.endswith("_scale")}


def test_int8_scales_per_channel_by_default_per_tensor_on_request(tiny_bert, tmp_path):
    from typer.testing import CliRunner

    from bertdistill.cli import app

    runner = CliRunner()
    for scales in ("channel", "tensor"):
        result = runner.invoke(app, ["export", "--model", str(tiny_bert), "--output", str(tmp_path / scales),
                                     "--parity-examples", "8", "--int8", "--int8-scales", scales])
        assert result.exit_code == 0, result.output
    per_channel = _weight_scale_sizes(tmp_path / "channel" / "model_quantized.onnx")
    per_tensor = _weight_scale_sizes(tmp_path / "tensor" / "model_quantized.onnx")
    assert per_tensor == {1} and max(per_channel) > 1, (per_tensor, per_channel)  # embeddings: per tensor
    assert json.loads((tmp_path / "tensor" / "export_config.json").read_text())["int8_per_channel"] is False
    assert ExportConfig().int8_per_channel is True


def test_dynamo_exporter_output_quantizes(tiny_bert, tmp_path):
    pytest.importorskip("onnxscript")
    report = export_model(ExportConfig(model=str(tiny_bert), output=str(tmp_path / "dyn"), exporter="dynamo",
                                       opset=18, int8=True, parity_examples=16))
    assert report.passed and (tmp_path / "dyn" / "model_quantized.onnx").is_file()
    assert not (tmp_path / "dyn" / "model.novalueinfo.onnx").exists()


@pytest.mark.parametrize("changes, message", [
    ({"opset": 13}, "--opset 13 is not supported"),
    ({"exporter": "jit"}, "unknown exporter"),
    ({"parity_examples": 0}, "--parity-examples 0"),
])
def test_bad_options_are_user_errors(tiny_bert, tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        export_model(ExportConfig(model=str(tiny_bert), output=str(tmp_path / "x"), **changes))
    assert not (tmp_path / "x").exists()


def test_base_encoder_is_refused_without_flag(tmp_path):
    from conftest import make_tiny_bert

    base = make_tiny_bert(tmp_path / "base", layers=1, classifier=False)
    with pytest.raises(UserError, match="base encoder without a trained classifier head"):
        export_model(ExportConfig(model=str(base), output=str(tmp_path / "x")))
    report = export_model(ExportConfig(model=str(base), output=str(tmp_path / "x"), allow_untrained_head=True,
                                       parity_examples=8))
    assert report.untrained_head is True


def test_existing_output_is_refused(exported, tiny_bert):
    out, _, _ = exported
    with pytest.raises(UserError, match="already exists"):
        export_model(ExportConfig(model=str(tiny_bert), output=str(out)))
    assert is_complete(out)


def test_cli_export_prints_parity_and_exit_codes(tiny_bert, tmp_path):
    from typer.testing import CliRunner

    from bertdistill.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["export", "--model", str(tiny_bert), "--output", str(tmp_path / "cli"),
                                 "--parity-examples", "8", "--int8"])
    assert result.exit_code == 0, result.output
    assert "model_quantize" in result.output and "not checked" in result.output  # truncated at 80 columns
    bad = subprocess.run([sys.executable, "-m", "bertdistill", "export", "--model", str(tiny_bert),
                          "--output", str(tmp_path / "cli")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "already exists" in bad.stderr and "Traceback" not in bad.stderr


@requires_minilm()
@requires_shared()
def test_real_minilm_student_exports_with_wikiqa_parity(tmp_path):
    """The packaged MiniLM cut to 2 layers (a new head), checked on real WikiQA rows."""
    from bertdistill.models import default_model_path, load_classifier, load_tokenizer

    model = load_classifier(default_model_path(), ["0", "1"])
    model.bert.encoder.layer = model.bert.encoder.layer[:2]
    model.config.num_hidden_layers = 2
    student = tmp_path / "student"
    model.save_pretrained(str(student))
    load_tokenizer(default_model_path()).save_pretrained(str(student))
    spec = DataSpec(path=str(SHARED / "wikiqa" / "WikiQA-test.tsv"), text_a="Question", text_b="Sentence")
    report = export_model(ExportConfig(model=str(student), output=str(tmp_path / "onnx"), data=spec,
                                       parity_examples=64, threads=2))
    assert report.parity["fp32"]["max_abs_diff"] < 1e-4 and report.parity_data["rows_used"] == 64
