"""Files get the umask's permissions, and what a killed run leaves behind is removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import run_cli
from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("leftovers")
    teacher = make_tiny_bert(root / "teacher", layers=2, hidden=32, seed=1)
    train = write_toy_pairs(root / "train.tsv", n=32, seed=1)
    store = make_store(root / "store", train, {"t": teacher})
    return teacher, train, store


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def modes(root: Path) -> dict[str, int]:
    paths = [root] + (sorted(root.rglob("*")) if root.is_dir() else [])
    return {str(p.relative_to(root.parent)): p.stat().st_mode & 0o777 for p in paths}


def assert_umask_modes(root: Path, umask: int) -> None:
    want_file, want_dir = 0o666 & ~umask, 0o777 & ~umask
    wrong = {name: oct(mode) for name, mode in modes(root).items()
             if mode != (want_dir if (root.parent / name).is_dir() else want_file)}
    assert not wrong, (oct(umask), wrong)


def ok(*argv) -> None:
    result = run_cli(*argv)
    assert result.code == 0, result.err[-2000:]


# -- permissions ------------------------------------------------------------------------------------

def test_every_output_gets_the_umask_permissions(kit, tmp_path):
    """umask 027: files 0640 and folders 0750 everywhere (model.safetensors came out 0600, predictions 0644)."""
    teacher, train, store = kit
    fast = ("--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--save-every", "1")
    previous = os.umask(0o027)
    try:
        ok("finetune", "--data", train, "--model", teacher, "--no-eval", "--keep-checkpoints", "--output",
           tmp_path / "ft", *fast)
        ok("pretrain-student", "--data", train, "--labels", store, "--student-from", teacher, "--eval-fraction", "0",
           "--output", tmp_path / "pre", *fast)
        ok("label", "--teacher", f"t={teacher}", "--data", train, "--max-length", "32", "--quiet", "--output",
           tmp_path / "store")
        ok("export", "--model", teacher, "--parity-examples", "4", "--output", tmp_path / "onnx")
        ok("predict", "--model", teacher, "--data", train, "--max-length", "32", "--output", tmp_path / "p.tsv")
        ok("corpus", "--data", train, "--quiet", "--output", tmp_path / "c.jsonl")
        ok("data", "--data", train, "--no-tokens", "--json", tmp_path / "d.json")
        ok("bench", "--model", teacher, "--data", train, "--repeats", "1", "--warmup", "0", "--batch-sizes", "2",
           "--max-length", "32", "--json", tmp_path / "b.json", "--markdown", tmp_path / "b.md")
        ok("prune", "--model", teacher, "--data", train, "--max-length", "32", "--layers", "1", "--quiet",
           "--output", tmp_path / "pruned")
    finally:
        os.umask(previous)
    outputs = [p for p in tmp_path.iterdir()]
    assert len(outputs) == 19, outputs  # every output, its sidecars and their .bertdistill notes
    for path in outputs:
        assert_umask_modes(path, 0o027)
    assert (tmp_path / "ft" / "checkpoints").is_dir() and (tmp_path / "ft" / "model.safetensors").is_file()


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_predictions_and_corpora_follow_a_strict_or_open_umask(kit, tmp_path, umask):
    teacher, train, _ = kit
    previous = os.umask(umask)
    try:
        ok("predict", "--model", teacher, "--data", train, "--max-length", "32", "--output", tmp_path / "p.jsonl")
        ok("corpus", "--data", train, "--quiet", "--output", tmp_path / "c.jsonl")
    finally:
        os.umask(previous)
    for name in ("p.jsonl", "p.jsonl.config.json", "c.jsonl", "c.jsonl.meta.json"):
        assert_umask_modes(tmp_path / name, umask)


# -- temporaries of killed runs ---------------------------------------------------------------------------

def test_stale_temporaries_go_when_their_writer_is_dead(tmp_path):
    from bertdistill.io import remove_stale_temporaries

    out = tmp_path / "model"
    dead, alive = dead_pid(), os.getppid()
    leftovers = {
        "dead dir": tmp_path / f".model.tmp-{dead}-abc123",
        "dead file": tmp_path / f".model.tmp-{dead}-x9",
        "dead old": tmp_path / f".model.old-{dead}-1f2e3d",
        "alive dir": tmp_path / f".model.tmp-{alive}-abc123",
        "legacy dir": tmp_path / ".model.tmp-k2j4h5",
        "other output": tmp_path / f".model2.tmp-{dead}-abc123",
    }
    for name, path in leftovers.items():
        if "file" in name:
            path.write_text("half\n")
        else:
            path.mkdir()
            (path / "model.safetensors").write_bytes(b"\0" * 100)
    removed = remove_stale_temporaries(out)
    assert sorted(removed) == sorted([leftovers["dead dir"], leftovers["dead file"], leftovers["dead old"]])
    assert all(leftovers[k].exists() for k in ("alive dir", "legacy dir", "other output"))
    # A writer holding the output's lock knows no other bertdistill writes it: an older version's leftover goes too.
    assert remove_stale_temporaries(out, locked=True) == [leftovers["legacy dir"]]
    assert leftovers["alive dir"].exists() and leftovers["other output"].exists()


def test_export_killed_mid_write_leaves_a_folder_the_next_run_removes(kit, tmp_path):
    """kill -9 while the ONNX directory is written: the next export (any output path beside it) removes it."""
    teacher, _, _ = kit
    out = tmp_path / "onnx"
    cmd = [sys.executable, "-m", "bertdistill", "export", "--model", str(teacher), "--parity-examples", "512",
           "--batch-size", "1", "--output", str(out)]
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    temporaries: list[Path] = []
    while proc.poll() is None and time.time() < deadline:
        temporaries = [p for p in tmp_path.glob(".onnx.tmp-*") if (p / "model.onnx").is_file()]
        if temporaries:
            break
        time.sleep(0.01)
    assert temporaries and proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.poll() else "timeout"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(p.exists() for p in temporaries) and not out.exists()
    ok("export", "--model", teacher, "--parity-examples", "4", "--output", out)
    assert (out / ".complete").is_file()
    assert not list(tmp_path.glob(".onnx.*")), list(tmp_path.iterdir())


def test_resume_removes_a_checkpoint_a_killed_run_was_writing(kit, tmp_path, monkeypatch):
    from bertdistill.training import batches

    teacher, train, _ = kit
    out = tmp_path / "s"
    argv = ["finetune", "--data", train, "--model", teacher, "--no-eval", "--max-steps", "4", "--batch-size", "8",
            "--max-length", "32", "--save-every", "1", "--output", out, "--resume"]
    real_batch = batches.TrainSet.batch

    def stop_at_batch(n: int):
        calls = []

        def batch(self, indices):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real_batch(self, indices)

        return batch

    monkeypatch.setattr(batches.TrainSet, "batch", stop_at_batch(3))
    assert "interrupted at step 2" in run_cli(*argv).err
    # As if a later run was killed while writing a checkpoint: a half-written step folder.
    half = out / "checkpoints" / ".step-7.tmp"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 10)
    monkeypatch.setattr(batches.TrainSet, "batch", stop_at_batch(2))
    assert "interrupted at step 3" in run_cli(*argv).err
    assert not half.exists() and (out / "checkpoints" / "step-3" / ".complete").is_file()
    monkeypatch.setattr(batches.TrainSet, "batch", real_batch)
    ok(*argv)
    assert (out / ".complete").is_file() and not (out / "checkpoints").exists()


def test_predictions_left_half_written_by_a_killed_run_are_removed(kit, tmp_path):
    teacher, train, _ = kit
    stale = tmp_path / f".p.jsonl.tmp-{dead_pid()}-a1b2c3"
    stale.write_text('{"index": 0, "prediction": "1"}\n')
    ok("predict", "--model", teacher, "--data", train, "--max-length", "32", "--output", tmp_path / "p.jsonl")
    assert not stale.exists() and (tmp_path / "p.jsonl").is_file()
