"""A distillation run killed with SIGKILL and started again with the same command ends like an
uninterrupted run: same weights and the same evaluation record (``label`` is in test_label_resume.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store

KILL_AFTER_STEP = 30
MAX_STEPS = 120


def without_dropout(model_dir: Path) -> Path:
    """Dropout off, so the comparison does not even depend on restored random states."""
    config_file = model_dir / "config.json"
    config = json.loads(config_file.read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    config_file.write_text(json.dumps(config))
    return model_dir


def finetune_cmd(teacher, train, dev, store, out) -> list[str]:
    return [sys.executable, "-m", "bertdistill", "finetune", "--data", str(train), "--eval-data", str(dev),
            "--labels", str(store), "--student-from", str(teacher), "--student-layers", "2",
            "--pkd", "skip", "--pkd-beta", "1", "--alpha", "0.5", "--max-steps", str(MAX_STEPS),
            "--batch-size", "8", "--lr", "5e-4", "--warmup-ratio", "0", "--seed", "3", "--max-length", "32",
            "--eval-every", "20", "--save-every", "2", "--resume", "--output", str(out)]


def completed_steps(out: Path) -> list[int]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    return [int(p.name.split("-")[1]) for p in root.glob("step-*") if (p / ".complete").is_file()]


def test_finetune_killed_midway_resumes_to_the_uninterrupted_result(tmp_path):
    teacher = without_dropout(make_tiny_bert(tmp_path / "teacher", layers=4, seed=1))
    train = write_toy_pairs(tmp_path / "train.tsv", n=48, seed=1)
    dev = write_toy_pairs(tmp_path / "dev.tsv", n=24, seed=2)
    store = make_store(tmp_path / "store", train, {"t": teacher})
    # One thread everywhere: the killed, resumed and reference runs then do the same arithmetic.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    proc = subprocess.Popen(finetune_cmd(teacher, train, dev, store, killed), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120  # generous: the machine may be busy with other test runs
    while (max(completed_steps(killed), default=0) < KILL_AFTER_STEP and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.02)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reached = max(completed_steps(killed), default=0)
    assert KILL_AFTER_STEP <= reached < MAX_STEPS, reached
    assert not (killed / ".complete").exists() and not (killed / "model.safetensors").exists()

    # The very same command again: it continues from the latest checkpoint.
    again = subprocess.run(finetune_cmd(teacher, train, dev, store, killed), env=env, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    said = " ".join(again.stderr.split())
    assert f"resuming from {killed / 'checkpoints' / f'step-{reached}'} (step {reached})" in said, said[-2000:]
    assert (killed / ".complete").is_file() and not (killed / "checkpoints").exists()
    reference = subprocess.run(finetune_cmd(teacher, train, dev, store, clean), env=env, capture_output=True,
                               text=True, timeout=120)
    assert reference.returncode == 0, reference.stderr[-2000:]

    resumed_w = load_file(str(killed / "model.safetensors"))
    clean_w = load_file(str(clean / "model.safetensors"))
    assert resumed_w.keys() == clean_w.keys()
    for key in clean_w:
        torch.testing.assert_close(resumed_w[key], clean_w[key], rtol=0, atol=1e-6, msg=key)

    resumed_rec = json.loads((killed / "training_record.json").read_text())
    clean_rec = json.loads((clean / "training_record.json").read_text())
    assert resumed_rec["summary"]["steps"] == clean_rec["summary"]["steps"] == MAX_STEPS
    assert resumed_rec["summary"]["best_step"] == clean_rec["summary"]["best_step"]
    ev_resumed, ev_clean = resumed_rec["evaluations"], clean_rec["evaluations"]
    assert [e["step"] for e in ev_resumed] == [e["step"] for e in ev_clean]
    for a, b in zip(ev_resumed, ev_clean):
        assert a.keys() == b.keys()
        for key, value in b.items():
            if isinstance(value, float):
                np.testing.assert_allclose(a[key], value, rtol=0, atol=1e-6, err_msg=f"step {b['step']} {key}")
            else:
                assert a[key] == value, (b["step"], key)
