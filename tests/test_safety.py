"""Nothing lost, nothing silently wrong (issue 19): every predict row written, --overwrite replaces only
bertdistill outputs, JSON never holds NaN, label stores checked against their checksums, and a full
disk during label is one line and resumes once space is freed."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("safety") / "teacher", layers=2, hidden=32, seed=7)


def snli_like(path: Path) -> Path:
    """Pairs with SNLI's "-" (no consensus) on rows 1 and 4."""
    rows = ["what is the sea\tthe sea is blue\t1", "what is the sun\tthe moon is cold\t-",
            "what is the tree\tthe tree is tall\t1", "what is the rock\tthe sea is blue\t0",
            "what is the moon\tthe sun is hot\t-", "what is the bird\tthe bird is small\t0"]
    path.write_text("query\tpassage\tlabel\n" + "\n".join(rows) + "\n")
    return path


def test_predict_writes_every_row_with_input_row_numbers(teacher, tmp_path):
    data = snli_like(tmp_path / "snli.tsv")
    for ext in ("jsonl", "tsv"):
        out = tmp_path / f"p.{ext}"
        result = run_cli("predict", "--model", teacher, "--data", data, "--max-length", "32", "--output", out)
        assert result.code == 0, result.err
        assert "2 rows with a dropped gold label (-)" in result.out.replace("\n", " ")
        if ext == "jsonl":
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            golds = [r["gold"] for r in rows]
            indices = [r["index"] for r in rows]
        else:
            lines = [line.split("\t") for line in out.read_text().splitlines()]
            header, body = lines[0], lines[1:]
            golds = [r[header.index("gold")] or None for r in body]
            indices = [int(r[header.index("index")]) for r in body]
        assert indices == list(range(6))
        assert golds == ["1", None, "1", "0", None, "0"]


def test_predict_metrics_leave_out_dropped_rows(teacher, tmp_path):
    from bertdistill.data.sources import DataSpec
    from bertdistill.predict import PredictConfig, predict_file

    data = snli_like(tmp_path / "snli.tsv")
    summary = predict_file(PredictConfig(model=str(teacher), data=DataSpec(path=str(data)),
                                         output=str(tmp_path / "p.jsonl"), max_length=32))
    assert summary.rows == 6 and summary.dropped == 2
    kept = tmp_path / "kept.tsv"
    kept.write_text("\n".join(line for line in data.read_text().splitlines() if not line.endswith("\t-")) + "\n")
    ref = predict_file(PredictConfig(model=str(teacher), data=DataSpec(path=str(kept)),
                                     output=str(tmp_path / "k.jsonl"), max_length=32))
    assert summary.metrics == ref.metrics


def test_overwrite_replaces_bertdistill_outputs_only(teacher, tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=16)
    out = tmp_path / "s.json"
    argv = ["data", "--data", data, "--no-tokens", "--json", out]
    assert run_cli(*argv).code == 0
    assert_user_error(run_cli(*argv), "already exists")
    assert run_cli(*argv, "--overwrite").code == 0  # ours: replaced
    out.write_text("the user's own notes\n")  # same name, the user's content now
    assert_user_error(run_cli(*argv, "--overwrite"), "not written by bertdistill")
    assert out.read_text() == "the user's own notes\n"

    preds = tmp_path / "p.jsonl"
    argv = ["predict", "--model", teacher, "--data", data, "--max-length", "32", "--output", preds]
    assert run_cli(*argv).code == 0
    assert run_cli(*argv, "--overwrite").code == 0

    empty = tmp_path / "empty"
    empty.mkdir()
    export = ["export", "--model", teacher, "--parity-examples", "4", "--batch-size", "4", "--output", empty,
              "--overwrite"]
    assert run_cli(*export).code == 0  # an empty folder may be replaced
    assert run_cli(*export).code == 0  # and a finished export
    assert (empty / ".complete").is_file()


def test_json_never_holds_nan(tmp_path):
    from bertdistill.io import write_json

    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [np.float32("inf"), 1.5]})
    assert json.loads((tmp_path / "x.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == \
        {"a": None, "b": [None, 1.5]}


def test_one_class_is_fine_outside_training(teacher, tmp_path):
    """Eval/test slices may hold one class: predict and label take them."""
    one = tmp_path / "one.tsv"
    one.write_text("query\tpassage\tlabel\n" + "".join(f"what is the sea {i}\tthe sea\t1\n" for i in range(4)))
    assert run_cli("predict", "--model", teacher, "--data", one, "--max-length", "32", "--output",
                   tmp_path / "p.jsonl").code == 0


def test_store_checksums_in_meta_and_a_store_without_them_is_refused(tmp_path):
    """Issue 30: a missing checksum list is a refusal, not a skip (else editing meta.json switches the check off)."""
    from bertdistill.errors import UserError
    from bertdistill.teachers.store import LabelStore, write_label_store

    logits = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    meta = {"label_names": ["0", "1"], "teachers": [{"name": "t"}], "data": {"rows": 30}, "max_length": 32}
    store = write_label_store(tmp_path / "store", meta, [logits], [None], shard_rows=10)
    saved = json.loads((store / "meta.json").read_text())
    assert len(saved["shards"]) == 3
    for shard in saved["shards"]:
        assert shard["files"] and all(len(f["sha256"]) == 64 and f["size"] > 0 for f in shard["files"].values())
    np.testing.assert_array_equal(LabelStore.open(store).logits("t"), logits)
    for shard in saved["shards"]:  # checksums removed from meta.json (or a store written before they existed)
        del shard["files"]
    (store / "meta.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match="lists no checksums for shard shard-00000"):
        LabelStore.open(store)


def test_label_disk_full_is_one_line_and_resumes(teacher, tmp_path, monkeypatch):
    from bertdistill.teachers import writer
    from bertdistill.teachers.layout import partial_dir
    from bertdistill.teachers.store import LabelStore

    data = write_toy_pairs(tmp_path / "pairs.tsv", n=40)
    out = tmp_path / "store"
    argv = ["label", "--teacher", f"t={teacher}", "--data", data, "--max-length", "32", "--shard-rows", "10",
            "--quiet", "--output", out]
    real = writer.StoreWriter.write_shard
    calls = {"n": 0}

    def fills_the_disk(self, span, logits, hidden):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.work / "shards"))
        return real(self, span, logits, hidden)

    monkeypatch.setattr(writer.StoreWriter, "write_shard", fills_the_disk)
    line = assert_user_error(run_cli(*argv), "No space left on device", "free on that disk", "run the same command")
    assert str(partial_dir(out)) in line
    assert not out.exists()
    assert len(list((partial_dir(out) / "shards").glob("shard-*"))) == 2
    stamp = (partial_dir(out) / "shards" / "shard-00000" / "state.json").stat().st_mtime_ns

    # Space freed: the same command adopts the two finished shards (checksums match) and labels the rest.
    monkeypatch.setattr(writer.StoreWriter, "write_shard", real)
    result = run_cli(*argv)
    assert result.code == 0, result.err
    assert (out / "shards" / "shard-00000" / "state.json").stat().st_mtime_ns == stamp  # adopted, not redone
    store = LabelStore.open(out)
    assert store.num_rows == 40 and math.isfinite(float(store.logits("t").sum()))


def test_resume_relabels_a_shard_that_fails_its_checksum(teacher, tmp_path):
    from bertdistill.data.sources import DataSpec
    from bertdistill.teachers.label import LabelConfig, label
    from bertdistill.teachers.layout import ShardSpan, partial_dir
    from bertdistill.teachers.writer import StoreWriter

    data = write_toy_pairs(tmp_path / "pairs.tsv", n=20)
    out = tmp_path / "store"
    config = LabelConfig(teachers=[f"t={teacher}"], data=DataSpec(path=str(data)), output=str(out), max_length=32,
                         shard_rows=10, quiet=True)
    label(config)
    # Make it partial again, and damage one shard's bytes (same size): it must not be adopted.
    out.rename(partial_dir(out))
    (partial_dir(out) / ".complete").unlink()
    writer = StoreWriter(out, ["t"])
    span = ShardSpan(1, 10, 20)
    assert writer.has_shard(span)
    arrow = next((partial_dir(out) / "shards" / span.name).glob("*.arrow"))
    raw = bytearray(arrow.read_bytes())
    raw[-50] ^= 0xFF
    arrow.write_bytes(bytes(raw))
    assert not writer.has_shard(span)
    assert writer.has_shard(ShardSpan(0, 0, 10))


def test_finetune_disk_full_ends_with_one_line_and_publishes_nothing(teacher, tmp_path, monkeypatch):
    """Training prints progress on stderr, so the error is its last line; no model looks finished."""
    from bertdistill import io
    import bertdistill.training.loop  # noqa: F401  (imported first: modules imported under the patch would keep it)

    def disk_full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io, "mark_complete", disk_full)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=16)
    out = tmp_path / "s"
    result = run_cli("finetune", "--data", data, "--model", teacher, "--output", out, "--max-steps", "2",
                     "--batch-size", "8", "--max-length", "32", "--no-eval")
    assert result.code == 2 and "Traceback" not in result.err
    last = [line for line in result.err.splitlines() if line.strip()][-1]
    assert last.startswith("error: ") and "No space left on device" in last and "free on that disk" in last
    assert not io.is_complete(out) and not list(out.rglob("*.safetensors")) if out.exists() else True
    assert not [p for p in tmp_path.glob(".s*") if (p / ".complete").exists()]
