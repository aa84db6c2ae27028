"""--report-to tensorboard through Accelerate, the step history in training_record.json, the curves PNG."""

from __future__ import annotations

import importlib.util
import json

import pytest

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs


def test_tensorboard_history_and_curves(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        pytest.fail("tensorboard is in the dev extra; install it (pip install -c constraints.txt tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = make_tiny_bert(tmp_path / "bert", layers=2)
    data = write_toy_pairs(tmp_path / "train.tsv", n=48)
    out = tmp_path / "run"
    r = run_cli("finetune", "--data", data, "--eval-data", data, "--model", model, "--epochs", 2, "--batch-size", 8,
                "--lr", "1e-3", "--max-length", 32, "--save-every", 1000, "--report-to", "tensorboard",
                "--allow-collapsed", "--output", out)
    assert r.code == 0, r.err
    record = json.loads((out / "training_record.json").read_text())
    history = record["history"]
    assert [h["step"] for h in history] == list(range(1, 13))  # 48 rows / 8 = 6 updates per epoch, every step kept
    assert {"step", "loss", "hard", "lr", "ex_s"} <= set(history[0])
    assert history[0]["lr"] > 0 and history[0]["ex_s"] > 0
    png = out / "training_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    events = list((out / "logs").rglob("events.out.tfevents.*"))
    assert events, list((out / "logs").rglob("*"))
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/hard", "train/lr", "train/examples_per_second", "eval/accuracy"} <= tags, tags
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))
    assert acc.Scalars("train/loss")[-1].value == pytest.approx(history[-1]["loss"], rel=1e-4)


def test_log_every_thins_the_history(tmp_path):
    model = make_tiny_bert(tmp_path / "bert", layers=1)
    data = write_toy_pairs(tmp_path / "train.tsv", n=40)
    out = tmp_path / "run"
    r = run_cli("finetune", "--data", data, "--model", model, "--max-steps", 7, "--batch-size", 8, "--no-eval",
                "--max-length", 32, "--save-every", 1000, "--log-every", 3, "--output", out)
    assert r.code == 0, r.err
    record = json.loads((out / "training_record.json").read_text())
    assert [h["step"] for h in record["history"]] == [3, 6, 7]  # and always the last step


def test_curves_note_without_matplotlib(tmp_path, monkeypatch):
    import builtins

    from bertdistill.training.curves import SKIP_NOTE, write_curves
    from bertdistill.training.run import TrainResult

    real = builtins.__import__

    def no_matplotlib(name, *args, **kw):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = TrainResult(output=tmp_path, steps=1, epochs_done=1, best_metric=None, best_value=None, best_step=None,
                         history=[{"step": 1, "loss": 0.5, "lr": 1e-3, "ex_s": 10.0}])
    assert write_curves(tmp_path / "c.png", result) == SKIP_NOTE
    assert not (tmp_path / "c.png").exists()


def test_bad_tracker_is_refused(tmp_path):
    data = write_toy_pairs(tmp_path / "train.tsv", n=16)
    r = run_cli("finetune", "--data", data, "--report-to", "mlflow", "--output", tmp_path / "o")
    assert r.code == 2 and "mlflow" in r.err
    if importlib.util.find_spec("wandb") is None:
        assert_user_error(run_cli("finetune", "--data", data, "--report-to", "wandb", "--output", tmp_path / "o"),
                          "wandb")
