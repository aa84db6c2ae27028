"""Typed configuration of ``bertdistill prune`` (saved as ``prune_config.json`` next to the model)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bertdistill.data.sources import DataSpec

LAYER_SELECTIONS = ("first", "skip", "importance")
"""Named ways to choose the kept layers (or explicit 1-based layers "i,j,k")."""


@dataclass
class PruneConfig:
    """Which model to cut, to what shape, and on which calibration data its parts are scored."""

    model: str | None = None
    """Source directory or hub id: a pre-trained encoder or a fine-tuned sequence classifier of any family
    with a layout adapter (``bertdistill.families``; default: the packaged all-MiniLM-L6-v2)."""
    data: DataSpec = field(default_factory=DataSpec)
    """Calibration set (importance scores and the token lengths of the FLOPs count)."""
    output: str = "pruned"
    layers: int | None = None
    """Encoder layers kept (default: all, or as many as ``layer_map`` lists)."""
    layer_map: str = "first"
    """first (1..k), skip (evenly spaced, ending at the top, as ``finetune --layer-map skip``),
    importance (the k layers with the largest block importance 1 − cos(input, output)) or "i,j,k"."""
    hidden: int | None = None
    """Hidden (residual) width (default: the source's)."""
    heads: int | None = None
    """Attention heads per layer (default: hidden / the source's head size)."""
    ffn: int | None = None
    """FFN neurons per layer (default: the source's FFN size scaled by hidden / source hidden)."""
    teacher: str | None = None
    """Classifier whose soft predictions the importance loss matches (KL); needs a classifier source."""
    labels: str | None = None
    """Label store of the calibration data (teachers' logits, averaged as probabilities) instead of --teacher."""
    max_length: int = 128
    batch_size: int = 32
    device: str = "auto"
    """Where the parts are scored (and --teacher runs): auto | cpu | cuda | cuda:N. The pruned model is
    built and saved on the CPU."""
    overwrite: bool = False
    quiet: bool = False
    trust_remote_code: bool = False
