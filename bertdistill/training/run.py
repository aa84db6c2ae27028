"""The contract between a stage's setup and the loop: what a run needs (``Run``) and what it gives (``TrainResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bertdistill.training.batches import EvalSet, TrainSet
from bertdistill.training.objective import DistillationModule


@dataclass
class Run:
    """Everything one training run needs, as prepared by ``training.setup`` for either stage."""

    module: DistillationModule
    train_set: TrainSet
    eval_set: EvalSet | None
    output: Path
    save_model: Callable[[object, Path], None]
    """save_model(student, directory) writes a model directory."""
    write_extras: Callable[[Path, "TrainResult"], None] | None = None
    check_result: Callable[["TrainResult"], list[str]] | None = None
    """Checks of the kept model's last evaluation; each failure is a warning line in the result."""
    teachers: object = None
    """The teacher source (label store or online models), or None for plain fine-tuning."""
    best_metric: str | None = None
    fingerprint: dict | None = None
    """The run's settings; a resumed run must match them."""
    resume: bool = False
    overwrite: bool = False
    notes: list[str] = field(default_factory=list)
    """Lines shown when training starts (after every check has passed)."""
    warnings: list[str] = field(default_factory=list)
    """Warnings about the setup: shown when training starts and kept in the result (and so in the record)."""
    collapsed: Callable[[dict], bool] | None = None
    """Whether an evaluation's student is collapsed (``guards.collapsed``): such a step is kept as the best model
    only while no evaluation that is not collapsed has come."""


@dataclass
class TrainResult:
    output: Path
    steps: int
    epochs_done: float
    best_metric: str | None
    best_value: float | None
    best_step: int | None
    evaluations: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    """Step history: {step, loss terms, lr, ex_s} every ``log_every`` steps (see TrainConfig.log_every)."""
    train_seconds: float = 0.0
    examples_per_second: float = 0.0
    stopped_by: str = "done"
    final_loss: float | None = None
    warnings: list[str] = field(default_factory=list)
    dev_report: dict | None = None
    """The kept student's metrics on the dev/eval set next to the majority baseline and the teachers'."""
    verdict: dict | None = None
    """``guards.run_verdict``: ok, or failed (every evaluation collapsed, or a --strict check); set by the checks."""
    length_warning: str | None = None
    """An explicit --epochs/--max-steps far below the default length (``config.short_run_warning``)."""
