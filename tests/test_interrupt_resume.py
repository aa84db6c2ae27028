"""Ctrl-C at any point of ``finetune`` or ``pretrain-student``, then the same command with --resume, ends
exactly like the uninterrupted run: the same weights in every tensor and the same evaluations.

The first Ctrl-C is deferred to the boundary between two optimizer updates (bertdistill.interrupts), so
the checkpoint written on it is a consistent state. The interrupt points are chosen by counting the
Python function calls of an uninterrupted run from its first update on (a profile hook), spread evenly
over the run and aimed at the optimizer step, the learning-rate scheduler, the forward pass, evaluation
and checkpoint writing, where an interrupt used to leave the weights half a step ahead.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store

#: where an interrupt is aimed: a substring of the called function's file name ("" = any call)
TARGETS = {"anywhere": "", "optimizer step": "torch/optim/", "lr scheduler": "lr_scheduler",
           "forward pass": "transformers/models/bert", "checkpoint writing": "accelerate/checkpointing",
           "weights file": "safetensors", "evaluation": "bertdistill/training/guards"}


class CtrlCAt:
    """A profile hook that presses Ctrl-C (SIGINT) at the ``nth`` call into a file matching ``target``,
    counted from the first optimizer update on, and ``presses - 1`` more times at the calls into it that
    follow; with ``nth`` None it only counts the calls, per target."""

    def __init__(self, target: str = "", nth: int | None = None, presses: int = 1):
        self.target, self.nth, self.presses = target, nth, presses
        self.started = self.published = False
        self.pressed = 0
        self.counts: Counter = Counter()

    @property
    def fired(self) -> bool:
        return self.pressed > 0

    def __call__(self, frame, event, arg) -> None:
        if event != "call" or self.pressed == self.presses or self.published:
            return
        if not self.started:
            if frame.f_code.co_name != "train_step":
                return
            self.started = True
        if frame.f_code.co_name == "publish":  # the run is over (a Ctrl-C now no longer stops it)
            self.published = True
            return
        filename = frame.f_code.co_filename
        if self.nth is None:
            for name, part in TARGETS.items():
                if part in filename:
                    self.counts[name] += 1
            return
        if self.target in filename:
            self.counts[self.target] += 1
            if self.counts[self.target] >= self.nth:
                self.pressed += 1
                signal.raise_signal(signal.SIGINT)


def profiled(hook: CtrlCAt, fn: Callable[[], object]):
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    sys.setprofile(hook)
    try:
        return fn()
    finally:
        sys.setprofile(None)
        signal.signal(signal.SIGINT, previous_handler)


@dataclass
class Stage:
    """One command's run: ``train(output, resume)`` trains; the reference is its uninterrupted result."""

    train: Callable[[Path, bool], object]
    reference: Path
    counts: Counter = field(default_factory=Counter)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model.safetensors"))


def record(out: Path) -> dict:
    return json.loads((out / "training_record.json").read_text())


def interrupt_points(counts: Counter, spread: int, aimed: int) -> list[tuple[str, int]]:
    """(target, nth call) pairs: ``spread`` points evenly over all calls, ``aimed`` over each other target."""
    points = [("anywhere", max(1, counts["anywhere"] * k // (spread + 1))) for k in range(1, spread + 1)]
    for name in TARGETS:
        if name != "anywhere" and counts[name]:
            points += [(name, max(1, counts[name] * k // (aimed + 1))) for k in range(1, aimed + 1)]
    return points


def assert_interrupt_then_resume_is_exact(stage: Stage, tmp_path: Path, target: str, nth: int) -> str:
    """Press Ctrl-C at the point, resume, compare with the reference; returns how the first run ended."""
    from bertdistill.errors import UserError

    out = tmp_path / f"{target.replace(' ', '-')}-{nth}"
    hook = CtrlCAt(TARGETS[target], nth)
    try:
        profiled(hook, lambda: stage.train(out, False))
        ended = "finished (Ctrl-C after the last update)"
    except UserError as exc:
        assert exc.what.startswith("interrupted at step") and "checkpoint saved" in exc.what, exc.what
        assert not (out / ".complete").exists() and not (out / "model.safetensors").exists()
        ended = exc.what.split(";")[0]
        stage.train(out, True)
    assert hook.fired, (target, nth)
    reference, resumed = weights(stage.reference), weights(out)
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), (target, nth, ended, key)
    want, got = record(stage.reference), record(out)
    assert got["summary"]["steps"] == want["summary"]["steps"]
    assert got["summary"]["final_loss"] == want["summary"]["final_loss"]
    assert [{k: v for k, v in e.items()} for e in got["evaluations"]] == want["evaluations"], (target, nth)
    return ended


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the interrupted, resumed and reference runs do the same arithmetic
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctrl_c")
    teacher = make_tiny_bert(root / "teacher", layers=3, hidden=32, seed=1)  # dropout on: RNG states matter
    train = write_toy_pairs(root / "train.tsv", n=40, seed=1)
    store = make_store(root / "store", train, {"t": teacher})
    return root, teacher, train, store


def finetune_stage(inputs, tmp_path_factory) -> Stage:
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig, TrainConfig
    from bertdistill.training.finetune import finetune
    from bertdistill.training.guards import GuardConfig

    root, teacher, train, store = inputs
    dev = write_toy_pairs(root / "dev.tsv", n=16, seed=2)
    dev_store = make_store(root / "dev-store", dev, {"t": teacher})

    def run(out: Path, resume: bool):
        # 40 training rows in batches of 8: 5 updates an epoch, so the run crosses an epoch end.
        config = FinetuneConfig(
            train_data=DataSpec(path=str(train)), labels=str(store), output=str(out), resume=resume,
            eval_data=DataSpec(path=str(dev)), eval_labels=str(dev_store),
            student=StudentConfig(source=str(teacher), layers=2),
            train=TrainConfig(max_steps=7, batch_size=8, lr=1e-3, warmup_ratio=0.2, seed=3, max_length=32,
                              save_every=3, eval_every=2),
            distill=DistillConfig(alpha=0.5, pkd="skip", pkd_beta=1.0),
            guards=GuardConfig(allow_collapsed=True))  # 7 updates of a toy task: what is compared is the weights
        return finetune(config, show_progress=False)

    return _reference(run, tmp_path_factory.mktemp("finetune_ref") / "ref")


def pretrain_stage(inputs, tmp_path_factory) -> Stage:
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, PretrainConfig, StudentConfig, TrainConfig
    from bertdistill.training.pretrain import pretrain_student

    _, teacher, train, store = inputs

    def run(out: Path, resume: bool):
        # Two micro-batches per update: an interrupt between them must not keep half a gradient.
        config = PretrainConfig(
            train_data=DataSpec(path=str(train), unlabeled=True), labels=str(store), output=str(out),
            resume=resume, eval_fraction=0.2, student=StudentConfig(source=str(teacher), layers=2),
            train=TrainConfig(max_steps=5, batch_size=4, grad_accum=2, lr=1e-3, warmup_ratio=0.0, seed=5,
                              max_length=32, save_every=2, eval_every=2),
            distill=DistillConfig(alpha=1.0, use_hard_labels=False, pkd="last", pkd_beta=1.0))
        return pretrain_student(config, show_progress=False)

    return _reference(run, tmp_path_factory.mktemp("pretrain_ref") / "ref")


def _reference(run: Callable[[Path, bool], object], out: Path) -> Stage:
    counter = CtrlCAt()
    profiled(counter, lambda: run(out, False))
    return Stage(run, out, counter.counts)


STAGES = {"finetune": (finetune_stage, 8, 2), "pretrain-student": (pretrain_stage, 4, 1)}
"""command → (its stage, interrupt points spread over the run, points aimed at each part of it)"""


@pytest.fixture(scope="module")
def stages(inputs, tmp_path_factory) -> dict[str, Stage]:
    cache: dict[str, Stage] = {}

    def get(command: str) -> Stage:
        if command not in cache:
            cache[command] = STAGES[command][0](inputs, tmp_path_factory)
        return cache[command]

    return get  # type: ignore[return-value]


@pytest.mark.parametrize("command", list(STAGES))
def test_ctrl_c_anywhere_then_resume_gives_the_uninterrupted_weights(command, stages, one_thread, tmp_path):
    _, spread, aimed = STAGES[command]
    stage = stages(command)
    points = interrupt_points(stage.counts, spread, aimed)
    assert len(points) == spread + (len(TARGETS) - 1) * aimed, stage.counts  # every aimed-at part was reached
    endings = [assert_interrupt_then_resume_is_exact(stage, tmp_path, target, nth) for target, nth in points]
    # The points reach across the run: stops at several different steps, not all at one.
    stops = {e for e in endings if e.startswith("interrupted at step")}
    assert len(stops) >= 3, endings


def test_second_ctrl_c_stops_at_once_and_saves_nothing_half_done(stages, one_thread, tmp_path):
    """Two presses inside the optimizer step: stopped there, no checkpoint from that state; the same command
    with --resume continues from the last periodic checkpoint and still ends exactly like the reference."""
    from bertdistill.errors import UserError

    stage = stages("finetune")
    out = tmp_path / "twice"
    hook = CtrlCAt(TARGETS["optimizer step"], stage.counts["optimizer step"] * 3 // 4, presses=2)
    with pytest.raises(UserError, match="nothing was saved") as caught:
        profiled(hook, lambda: stage.train(out, False))
    assert hook.pressed == 2 and "is kept" in str(caught.value)
    update = int(caught.value.what.split("inside update ")[1].split()[0])
    saved = [int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*") if (p / ".complete").exists()]
    # Only the periodic checkpoints (every 3 updates, and the epoch end at 5) of the updates before it.
    assert saved and all(step in (3, 5, 6) and step < update for step in saved), (update, saved)
    stage.train(out, True)
    reference, resumed = weights(stage.reference), weights(out)
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_pretrain_student_command_ctrl_c_between_checkpoints_then_resume(inputs, one_thread, tmp_path):
    """The issue's case through the command line: Ctrl-C inside the optimizer step of update 3 of 6, between the
    checkpoints at 0 and 4, says how to continue; the same command with --resume exits 0 with the weights of an
    uninterrupted run (it used to differ in every tensor)."""
    from cli_helpers import run_cli

    _, teacher, train, store = inputs

    def argv(out: Path) -> list:
        return ["pretrain-student", "--data", train, "--labels", store, "--student-from", teacher,
                "--student-layers", "2", "--max-steps", "6", "--batch-size", "8", "--max-length", "64",
                "--save-every", "4", "--eval-fraction", "0", "--seed", "7", "--output", out]

    counter = CtrlCAt()
    clean = profiled(counter, lambda: run_cli(*argv(tmp_path / "clean")))
    assert clean.code == 0, clean.err[-2000:]
    out = tmp_path / "stopped"
    hook = CtrlCAt(TARGETS["optimizer step"], counter.counts["optimizer step"] * 5 // 12)  # inside update 3
    stopped = profiled(hook, lambda: run_cli(*argv(out)))
    last = stopped.err.strip().splitlines()[-1]
    assert stopped.code == 2 and last.startswith("error: ") and "Traceback" not in stopped.err, stopped.err
    assert "interrupted at step 3 of 6; checkpoint saved" in last and "--resume" in last, last
    resumed = run_cli(*argv(out), "--resume")
    assert resumed.code == 0, resumed.err[-2000:]
    reference, got = weights(tmp_path / "clean"), weights(out)
    assert all(torch.equal(got[k], reference[k]) for k in reference)
