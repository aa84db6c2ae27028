"""Typed configuration of training runs, saved as JSON next to every model they produce."""

from __future__ import annotations

from dataclasses import dataclass, field

from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError

MIXED_PRECISION = ("no", "bf16", "fp16")
TEACHER_MODES = ("heads", "avg")
KD_LOSSES = ("kl", "mse")
LAYER_MAPS = ("first", "skip")


@dataclass
class TrainConfig:
    """The optimization loop shared by finetune and pretrain-student."""

    epochs: float = 3.0
    max_steps: int | None = None
    """Optimizer updates; overrides epochs when given."""
    time_budget: float | None = None
    """Stop (and save) after this many seconds of training, summed over resumed runs."""
    batch_size: int = 32
    """Examples per process per micro-batch (global batch = batch_size × processes × grad_accum)."""
    eval_batch_size: int = 64
    grad_accum: int = 1
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    mixed_precision: str = "no"
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

    def check(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise UserError(f"unknown mixed precision {self.mixed_precision!r}", "--mixed-precision",
                            f"use one of: {', '.join(MIXED_PRECISION)}")
        for name in ("batch_size", "eval_batch_size", "grad_accum", "keep_last"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1", f"--{name.replace('_', '-')}", "use 1 or more")
        for name in ("max_steps", "eval_every", "save_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"{name} must be at least 1", f"--{name.replace('_', '-')}", "use 1 or more")
        if self.max_steps is None and self.epochs <= 0:
            raise UserError("epochs must be positive", "--epochs", "use e.g. --epochs 3, or give --max-steps")
        if self.lr <= 0:
            raise UserError("learning rate must be positive", "--lr", "use e.g. --lr 5e-5")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError("warm-up ratio must be in [0, 1)", "--warmup-ratio", "use e.g. 0.1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UserError("time budget must be positive", "--time-budget", "give seconds, e.g. 3600")


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

    def check(self) -> None:
        from bertdistill.training.pkd import PKD_MODES

        if not 0 <= self.alpha <= 1:
            raise UserError(f"alpha {self.alpha} must be in [0, 1]", "--alpha", "use e.g. --alpha 0.5")
        if self.temperature <= 0:
            raise UserError("temperature must be positive", "--temperature", "use e.g. --temperature 2")
        if self.kd_loss not in KD_LOSSES:
            raise UserError(f"unknown KD loss {self.kd_loss!r}", "--kd-loss", f"use one of: {', '.join(KD_LOSSES)}")
        if self.teacher_mode is not None and self.teacher_mode not in TEACHER_MODES:
            raise UserError(f"unknown teacher mode {self.teacher_mode!r}", "--teacher-mode",
                            f"use one of: {', '.join(TEACHER_MODES)}")
        if self.pkd not in PKD_MODES:
            raise UserError(f"unknown PKD mode {self.pkd!r}", "--pkd", f"use one of: {', '.join(PKD_MODES)}")
        if self.pkd_beta < 0:
            raise UserError("PKD weight must not be negative", "--pkd-beta", "use e.g. --pkd-beta 10")
        if self.teacher_weights is not None and (any(w < 0 for w in self.teacher_weights)
                                                 or sum(self.teacher_weights) <= 0):
            raise UserError("teacher weights must be non-negative with a positive sum", "--teacher-weights",
                            "use e.g. --teacher-weights 1,1,2")


@dataclass
class StudentConfig:
    """How the student is made: layers of a pretrained model, or a random model of a given shape."""

    source: str | None = None
    """Model directory or hub id (default: the packaged MiniLM); may be a pretrain-student output."""
    layers: int | None = None
    """Encoder layers kept (default: all of the source)."""
    layer_map: str = "first"
    """first, skip (evenly spaced) or explicit 1-based layers "1,3,5"."""
    random_init: bool = False
    """Random weights (shape below, vocabulary and tokenizer of the source)."""
    width: int | None = None
    heads: int | None = None
    intermediate: int | None = None
    trust_remote_code: bool = False
    """Allow model code from the hub for the source (off unless --trust-remote-code)."""


@dataclass
class FinetuneConfig:
    """Everything ``bertdistill finetune`` needs; saved as training_config.json in the output."""

    train_data: DataSpec = field(default_factory=DataSpec)
    eval_data: DataSpec | None = None
    labels: str | None = None
    """Teacher label store of the training data (distillation); none = plain fine-tuning."""
    eval_labels: str | None = None
    """Label store of the eval data (adds distill_loss, teacher_agreement and teacher_rank_corr to evaluations)."""
    output: str = "student"
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    overwrite: bool = False
    resume: bool = False


@dataclass
class PretrainConfig:
    """Everything ``bertdistill pretrain-student`` needs (stage 1: soft losses only, no gold labels)."""

    train_data: DataSpec = field(default_factory=DataSpec)
    labels: str = ""
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
