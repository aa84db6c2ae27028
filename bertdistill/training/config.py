"""Typed configuration of training runs, saved as JSON next to every model they produce."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bertdistill.data.sources import DataSpec
from bertdistill.devices import MIXED_PRECISION  # noqa: F401  (no, bf16, fp16, auto)
from bertdistill.errors import UserError
from bertdistill.student.config import StudentConfig  # noqa: F401  (part of the run configs)
from bertdistill.training.guards import GuardConfig
from bertdistill.training.terms import TERMS, check_weight, make_options

TEACHER_MODES = ("heads", "avg")
KD_LOSSES = ("kl", "mse")
REPORT_TO = ("none", "tensorboard", "wandb")


def _finite(value, low: float | None = None, high: float | None = None, low_open: bool = False) -> bool:
    """True for a finite number within [low, high] ((low, high] with ``low_open``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or value <= high


# Defaults measured on 3-layer MiniLM students (examples/defaults/RESULTS.md): at 5e-5 and 3 epochs of ~1,000
# rows (~90 updates) every student collapsed to one class; in the sweep, lr 1e-4 with ~300 updates trained
# every student, fine-tuned or distilled (on 2,000 rows of four tasks, 1 of 8 distilled runs still
# collapsed, and the checks flag it). Teachers (a whole model, no teachers of its own) keep 5e-5.
DEFAULT_EPOCHS = 3.0
MIN_DEFAULT_UPDATES = 300
"""Without --epochs/--max-steps: 3 epochs, or more passes (up to MAX_DEFAULT_EPOCHS) to reach this many updates."""
MAX_DEFAULT_EPOCHS = 20.0
TEACHER_LR = 5e-5
"""Default peak learning rate of a whole model fine-tuned without teachers."""
STUDENT_LR = 1e-4
"""Default peak learning rate of a student: fewer layers than its source, random init, or trained against teachers."""


def default_updates(updates_per_epoch: int) -> int:
    """Updates of a run with neither --epochs nor --max-steps: 3 epochs, at least 300 updates, at most 20 epochs."""
    three = math.ceil(DEFAULT_EPOCHS * updates_per_epoch)
    return max(three, min(MIN_DEFAULT_UPDATES, math.ceil(MAX_DEFAULT_EPOCHS * updates_per_epoch)))


SHORT_RUN_SHARE = 0.5
"""An explicit --epochs/--max-steps giving fewer than this share of the default updates gets a warning."""


def short_run_warning(total: int, updates_per_epoch: int, config: "TrainConfig") -> str | None:
    """One warning line when an explicit --epochs/--max-steps gives far fewer updates than the defaults would
    run (3-layer students collapsed to one class at 87 and 108 updates: examples/defaults/RESULTS.md). The
    measured risk is a short run in updates, so the yardstick is the default length capped at the measured
    minimum: one epoch of 637 updates on a large set is no short run, though the default there is 3 epochs."""
    if config.max_steps is None and config.epochs is None:
        return None
    default = min(default_updates(updates_per_epoch), MIN_DEFAULT_UPDATES)
    if total >= SHORT_RUN_SHARE * default:
        return None
    given = f"--max-steps {config.max_steps}" if config.max_steps else f"--epochs {config.epochs:g}"
    updates = f"{total} update{'s' if total != 1 else ''}"
    return (f"{given} gives {updates} ({updates_per_epoch} per epoch), under half of the {default} that the measured "
            f"defaults run (3-layer students collapsed to one class at 87 and 108 updates); leave {given.split()[0]} "
            "out for the default length")


@dataclass
class TrainConfig:
    """The optimization loop shared by finetune and pretrain-student."""

    epochs: float | None = None
    """Passes over the data; None: 3, or more on small data to reach 300 updates (see default_updates)."""
    max_steps: int | None = None
    """Optimizer updates; overrides epochs when given."""
    time_budget: float | None = None
    """Stop (and save) after this many seconds of training, summed over resumed runs."""
    batch_size: int = 32
    """Examples per process per micro-batch (global batch = batch_size × processes × grad_accum)."""
    eval_batch_size: int = 64
    grad_accum: int = 1
    lr: float | None = None
    """Peak learning rate; None: TEACHER_LR or STUDENT_LR, resolved when the model is built (see default_lr)."""
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    freeze_word_embeddings: bool = False
    """Keep the input word embeddings (vocabulary × width) fixed: no gradient, no optimizer state. Half of
    MiniLM-L6's parameters and 80% of a 256-wide student's; a MiniLM-L6 update took 18% less time here."""
    seed: int = 42
    mixed_precision: str | None = None
    """no | bf16 | fp16 | auto (bf16 where the device computes it in hardware, else no); None: what Accelerate is
    configured with (ACCELERATE_MIXED_PRECISION, which ``accelerate launch`` sets, or the ``accelerate config``
    file), else no. ``check()`` records the result."""
    eval_every: int | None = None
    """Evaluate every N updates (and always at the end of each epoch)."""
    save_every: int | None = 500
    """Checkpoint every N updates (and at the end of each epoch)."""
    keep_last: int = 2
    """Checkpoints kept during training."""
    keep_checkpoints: bool = False
    """Keep the checkpoints in the output after a successful run (they are large)."""
    best_metric: str | None = None
    """Metric that picks the saved model (default: the task's main metric, or distill_loss)."""
    max_length: int = 128
    report_to: str = "none"
    """Experiment tracker fed through Accelerate: none, tensorboard (logs in <output>/logs) or wandb."""
    log_every: int | None = None
    """Keep every N-th step in the record's step history (default: every step up to 2,000 updates, else
    about 2,000 evenly spaced steps)."""

    def check(self) -> None:
        from bertdistill.devices import resolve_mixed_precision

        self.mixed_precision = resolve_mixed_precision(self.mixed_precision)
        for name in ("batch_size", "eval_batch_size", "grad_accum", "keep_last"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1", f"--{name.replace('_', '-')}", "use 1 or more")
        if self.report_to not in REPORT_TO:
            raise UserError(f"unknown tracker {self.report_to!r}", "--report-to", f"use one of: {', '.join(REPORT_TO)}")
        if self.report_to == "wandb":
            import importlib.util

            if importlib.util.find_spec("wandb") is None:
                raise UserError("--report-to wandb needs the wandb package", "--report-to",
                                "pip install wandb (and wandb login, or WANDB_MODE=offline), or use tensorboard")
        if self.report_to == "tensorboard":
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
                raise UserError("--report-to tensorboard needs the tensorboard package", "--report-to",
                                "pip install tensorboard")
        for name in ("max_steps", "eval_every", "save_every", "log_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"{name} must be at least 1", f"--{name.replace('_', '-')}", "use 1 or more")
        if self.max_steps is None and self.epochs is not None and not _finite(self.epochs, low=0, low_open=True):
            raise UserError(f"epochs {self.epochs} must be a finite positive number", "--epochs",
                            "use e.g. --epochs 3, or give --max-steps")
        if self.lr is not None and not _finite(self.lr, low=0, low_open=True, high=1.0):
            raise UserError(f"learning rate {self.lr} must be a finite number in (0, 1]", "--lr", "use e.g. --lr 5e-5")
        if not _finite(self.warmup_ratio, low=0) or self.warmup_ratio >= 1:
            raise UserError("warm-up ratio must be in [0, 1)", "--warmup-ratio", "use e.g. 0.1")
        if not _finite(self.weight_decay, low=0):
            raise UserError(f"weight decay {self.weight_decay} must be finite and ≥ 0", "--weight-decay",
                            "use e.g. --weight-decay 0.01")
        if not _finite(self.max_grad_norm, low=0):
            raise UserError(f"gradient norm {self.max_grad_norm} must be finite and ≥ 0 (0: no clipping)",
                            "--max-grad-norm", "use e.g. 1.0")
        if self.time_budget is not None and not _finite(self.time_budget, low=0, low_open=True):
            raise UserError("time budget must be a finite positive number", "--time-budget", "give seconds, e.g. 3600")


@dataclass
class DistillConfig:
    """Loss weights and teacher use. Total = (1−α)·hard + α·KD + β·PKD (hard weight 0 in stage 1)."""

    alpha: float = 0.5
    temperature: float = 2.0
    kd_loss: str = "kl"
    teacher_mode: str | None = None
    """heads (TMKD: one head per teacher) or avg (one head, averaged target); default heads for >1 teacher."""
    teacher_weights: list[float] | None = None
    teachers: list[str] | None = None
    """Use only these teachers of the store (default: all)."""
    pkd: str = "none"
    pkd_beta: float = 10.0
    pkd_projection: bool = True
    """Learn a linear projection when student and teacher widths differ (else refuse)."""
    use_hard_labels: bool = True
    terms: dict[str, float | dict[str, Any]] | None = None
    """Further loss terms by registered name: a weight, or ``{"weight": w, option: value, ...}`` with the
    term's own options (e.g. ``{"listwise_kd": {"weight": 0.7, "temperature": 1}}``); the run-wide
    settings above (temperature, kd_loss, pkd, pkd_projection, match_layers, relation_heads) are the
    defaults of those options."""
    match_layers: str = "skip"
    """Layer map of the all-layer terms (hidden_mse, attention_mse): skip, last or teacher layers "i,j,k"."""
    relation_heads: int | None = None
    """Relation heads of the MiniLM terms (default: the student's attention heads)."""

    def check(self) -> None:
        from bertdistill.training.pkd import PKD_MODES

        if not _finite(self.alpha, low=0, high=1):
            raise UserError(f"alpha {self.alpha} must be in [0, 1]", "--alpha", "use e.g. --alpha 0.5")
        if not _finite(self.temperature, low=0, low_open=True, high=1e4):
            raise UserError(f"temperature {self.temperature} must be a finite positive number", "--temperature",
                            "use e.g. --temperature 2")
        if self.kd_loss not in KD_LOSSES:
            raise UserError(f"unknown KD loss {self.kd_loss!r}", "--kd-loss", f"use one of: {', '.join(KD_LOSSES)}")
        if self.teacher_mode is not None and self.teacher_mode not in TEACHER_MODES:
            raise UserError(f"unknown teacher mode {self.teacher_mode!r}", "--teacher-mode",
                            f"use one of: {', '.join(TEACHER_MODES)}")
        if self.pkd not in PKD_MODES:
            raise UserError(f"unknown PKD mode {self.pkd!r}", "--pkd", f"use one of: {', '.join(PKD_MODES)}")
        if not _finite(self.pkd_beta, low=0):
            raise UserError(f"PKD weight {self.pkd_beta} must be finite and ≥ 0", "--pkd-beta", "use e.g. --pkd-beta 10")
        for name, value in (self.terms or {}).items():
            options = dict(value) if isinstance(value, dict) else {}
            check_weight(name, options.pop("weight", 1.0) if isinstance(value, dict) else value)
            if name in TERMS:
                make_options(TERMS[name], options, self)
        if self.relation_heads is not None and self.relation_heads < 1:
            raise UserError("relation heads must be at least 1", "--relation-heads", "use e.g. --relation-heads 12")
        if self.teacher_weights is not None and (any(not _finite(w, low=0) for w in self.teacher_weights)
                                                 or sum(self.teacher_weights) <= 0):
            raise UserError("teacher weights must be non-negative with a positive sum", "--teacher-weights",
                            "use e.g. --teacher-weights 1,1,2")


@dataclass
class FinetuneConfig:
    """Everything ``bertdistill finetune`` needs; saved as training_config.json in the output."""

    train_data: DataSpec = field(default_factory=DataSpec)
    eval_data: DataSpec | None = None
    labels: str | None = None
    """Teacher label store of the training data (offline distillation); none = plain fine-tuning."""
    teacher_models: list[str] | None = None
    """Teachers run in the loop (online distillation), each ``PATH`` or ``NAME=PATH``; instead of ``labels``."""
    eval_labels: str | None = None
    """Label store of the eval data (adds distill_loss, teacher_agreement and teacher_rank_corr to evaluations)."""
    output: str = "student"
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    dev_fraction: float = 0.1
    """Without eval data: share of the training rows held out as a dev set (whole queries for ranking data;
    at most 2,000 rows; none below 200 training rows); 0 = no evaluation (--no-eval)."""
    guards: GuardConfig = field(default_factory=GuardConfig)
    baseline: str | None = None
    """A model trained on the same task (the student fine-tuned alone, say), scored on the same dev/eval rows and
    shown next to the kept student, so the run says whether distillation helped."""
    overwrite: bool = False
    resume: bool = False


TRAIN_KEYS_ADDED_LATER = {"freeze_word_embeddings": False}
"""TrainConfig settings added after runs existed: a fingerprint leaves them out while they hold these defaults,
so a checkpoint or a recipe step made before they existed still resumes or counts as done."""


def without_later_defaults(config_dict: dict) -> dict:
    """``config_dict`` (a run config as a dict) without the ``train`` settings of TRAIN_KEYS_ADDED_LATER that
    hold their default."""
    train = config_dict.get("train")
    if isinstance(train, dict):
        config_dict = {**config_dict, "train": {k: v for k, v in train.items()
                                                if not (k in TRAIN_KEYS_ADDED_LATER and v == TRAIN_KEYS_ADDED_LATER[k])}}
    return config_dict


STAGE1_TRAIN_DEFAULTS = {"epochs": 1.0, "lr": 1e-4, "warmup_ratio": 0.05, "save_every": 1000}
"""The ``pretrain-student`` command's defaults where they differ from TrainConfig's (``distill`` uses them too, so
a recipe's stage 1 and the single command agree)."""


@dataclass
class PretrainConfig:
    """Everything ``bertdistill pretrain-student`` needs (stage 1: soft losses only, no gold labels)."""

    train_data: DataSpec = field(default_factory=DataSpec)
    labels: str = ""
    """Teacher label store of the corpus (offline); or give ``teacher_models``."""
    teacher_models: list[str] | None = None
    """Teachers run in the loop (online), each ``PATH`` or ``NAME=PATH``; instead of ``labels``."""
    eval_data: DataSpec | None = None
    eval_labels: str | None = None
    eval_fraction: float = 0.02
    """Held-out share of the corpus when no --eval-data is given (0 = no evaluation)."""
    output: str = "student-stage1"
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(alpha=1.0, use_hard_labels=False))
    overwrite: bool = False
    resume: bool = False
