"""Checkpoints of a training run and the best model so far, under ``<output>/checkpoints``.

A checkpoint holds Accelerate's state (weights, optimizer, RNG; loaded with ``weights_only=True``) and
``trainer_state.json`` (step, position in the epoch, evaluations, the scheduler's state, the run's
fingerprint). The scheduler's state travels in JSON rather than as a registered Accelerate object:
those are unpickled with ``weights_only=False``, which would run code from a tampered checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from bertdistill.errors import UserError
from bertdistill.io import apply_umask, atomic_dir, is_complete, mark_complete, read_json, write_json

CHECKPOINTS = "checkpoints"
BEST = "best"
STATE_FILE = "trainer_state.json"
CHECKPOINT_FORMAT = 2
"""2: the trained module is the student plus the loss terms' parameters (projections)."""


NOT_FINGERPRINTED = ("guards", "baseline")
"""Run settings that judge the finished model but do not change training: a resumed run may change them, and a
checkpoint made before they existed still resumes."""


def latest_checkpoint(output: Path) -> Path | None:
    root = Path(output) / CHECKPOINTS
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if is_complete(p)]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def lower_is_better(metric: str) -> bool:
    return metric.endswith("loss")


class CheckpointManager:
    """Saves, finds and restores checkpoints; every process calls it, the main process writes the files."""

    def __init__(self, accelerator, output: Path, keep_last: int):
        self.accelerator = accelerator
        self.output = Path(output)
        self.root = self.output / CHECKPOINTS
        self.keep_last = keep_last

    def latest(self) -> Path | None:
        return latest_checkpoint(self.output)

    def remove_unfinished(self) -> None:
        """Delete checkpoints a killed run was still writing (``.step-N.tmp``); the caller holds the output's lock."""
        if self.accelerator.is_main_process and self.root.is_dir():
            for leftover in self.root.glob(".step-*.tmp"):
                shutil.rmtree(leftover, ignore_errors=True)

    def clear(self) -> None:
        if self.accelerator.is_main_process and self.root.exists():
            shutil.rmtree(self.root)

    def read_state(self, path: Path, fingerprint: dict | None) -> dict:
        """The saved trainer state, refused when it was made with other settings or by an older version."""
        saved = read_json(path / STATE_FILE)
        if saved.get("fingerprint"):
            saved["fingerprint"] = {k: v for k, v in saved["fingerprint"].items() if k not in NOT_FINGERPRINTED}
        if fingerprint is not None and saved.get("fingerprint") != fingerprint:
            old, new = saved.get("fingerprint") or {}, fingerprint
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if "inputs" in diff:
                changed = sorted(k for k in set(old.get("inputs") or {}) | set(new.get("inputs") or {})
                                 if (old.get("inputs") or {}).get(k) != (new.get("inputs") or {}).get(k))
                raise UserError(f"the {' and '.join(changed)} changed since the checkpoint was made", str(path),
                                "resume with the inputs the run started with, or start afresh with --overwrite")
            raise UserError(f"the checkpoint was made with other settings ({', '.join(diff[:4])})", str(path),
                            "resume with the same options as the interrupted run")
        if "scheduler" not in saved or saved.get("checkpoint_format") != CHECKPOINT_FORMAT:
            raise UserError("the checkpoint was written by an older bertdistill", str(path),
                            "start the run afresh with --overwrite")
        return saved

    def restore(self, path: Path, state: dict, scheduler) -> None:
        """Load weights, optimizer and RNG states into the prepared objects, and the trainer state into ``state``."""
        saved = read_json(path / STATE_FILE)
        fingerprint = state.get("fingerprint")
        self.accelerator.load_state(str(path))
        state.update(saved)
        scheduler.load_state_dict(state.pop("scheduler"))
        state.pop("checkpoint_format", None)
        state["fingerprint"] = fingerprint

    def save(self, state: dict, scheduler) -> None:
        acc = self.accelerator
        main = acc.is_main_process
        name = f"step-{state['step']}"
        tmp = self.root / f".{name}.tmp"
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        try:
            acc.save_state(str(tmp))
            acc.wait_for_everyone()
            if main:
                write_json(tmp / STATE_FILE, {**state, "scheduler": scheduler.state_dict(),
                                              "checkpoint_format": CHECKPOINT_FORMAT})
                apply_umask(tmp)
                mark_complete(tmp)
        except BaseException:
            if main:  # a checkpoint that could not be written whole (disk full) leaves nothing half-written
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        if main:
            final = self.root / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            done = sorted((p for p in self.root.glob("step-*") if is_complete(p)),
                          key=lambda p: int(p.name.split("-")[1]))
            for old in done[:-self.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()


class BestTracker:
    """Keeps the best model by one metric in ``checkpoints/best``; its value and step live in the trainer state."""

    def __init__(self, accelerator, root: Path, metric: str | None, save_model: Callable[[Path], None],
                 collapsed: Callable[[dict], bool] | None = None):
        self.accelerator = accelerator
        self.dir = Path(root) / BEST
        self.metric = metric
        self.save_model = save_model
        self.collapsed = collapsed or (lambda metrics: False)

    def consider(self, metrics: dict, state: dict) -> bool:
        """Record ``metrics`` of the current step; save the model when it is the best so far.

        The evaluation before the first update (step 0) is never a candidate: the kept model must come from
        training. (An untrained start that scored best, e.g. the majority class on a task no trained
        evaluation beat, was published as the run's result.) A collapsed evaluation (one class for nearly
        every dev row) is kept only until one that is not collapsed comes: on MRPC a trained student at 0.65
        lost to its own one-class step at the majority's 0.665, and the one-class model was published."""
        if not self.metric or self.metric not in metrics or state["step"] == 0:
            return False
        value, best = metrics[self.metric], state["best_value"]
        collapsed = self.collapsed(metrics)
        if best is not None:
            best_collapsed = state.get("best_collapsed", False)
            if collapsed != best_collapsed:
                replaces = best_collapsed  # a step that is not collapsed beats a collapsed one, whatever the scores
            else:
                replaces = value < best if lower_is_better(self.metric) else value > best
            if not replaces:
                return False
        state["best_value"], state["best_step"], state["best_collapsed"] = value, state["step"], collapsed
        if self.accelerator.is_main_process:
            with atomic_dir(self.dir, overwrite=True) as tmp:
                self.save_model(tmp)
        self.accelerator.wait_for_everyone()
        return True

    def copy_into(self, directory: Path, state: dict) -> bool:
        """Copy the best model into ``directory`` (False when there is none)."""
        if state["best_value"] is None or not is_complete(self.dir):
            return False
        for item in self.dir.iterdir():
            if item.name != ".complete":
                shutil.copy2(item, Path(directory) / item.name)
        return True
