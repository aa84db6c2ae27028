"""How a student is made (typed, saved in every training config)."""

from __future__ import annotations

from dataclasses import dataclass

LAYER_MAPS = ("first", "skip")
HEADS = ("classes", "score")
"""Output heads: one logit per label (softmax), or one relevance score (num_labels=1, sigmoid; ranking)."""
"""Named ways to pick a student's layers from its source model (or 1-based "i,j,k")."""


@dataclass
class StudentConfig:
    """How the student is made: layers of a pretrained model, or a random model of a given shape."""

    source: str | None = None
    """Model directory or hub id (default: the packaged MiniLM); may be a pretrain-student or prune output."""
    layers: int | None = None
    """Encoder layers kept (default: all of the source)."""
    layer_map: str = "first"
    """first, skip (evenly spaced) or explicit 1-based layers "1,3,5"."""
    random_init: bool = False
    """Random weights (shape below, vocabulary and tokenizer of the source)."""
    width: int | None = None
    heads: int | None = None
    intermediate: int | None = None
    head: str = "classes"
    """classes (one logit per label) or score (one relevance logit for binary/ranking data; saved with
    num_labels=1 and the task's label names as ``task_label_names`` in config.json)."""
    trust_remote_code: bool = False
    """Allow model code from the hub for the source (off unless --trust-remote-code)."""
    dropout: float | None = None
    """Every dropout probability of the student (each config setting named ``*dropout``, ``*dropout_prob`` or
    ``*dropout_rate``: hidden, attention, classifier) set to this; None keeps the source's. 0 makes a small
    student's training step about a quarter faster on CPU (no random masks) and is saved in its config."""
