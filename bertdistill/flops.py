"""Analytic FLOPs of a BERT encoder (and its pooler and classifier) per example at given token lengths.

One multiply-add counts as 2 FLOPs. For an example of ``n`` tokens, hidden size ``H``, ``A`` heads of
size ``d`` (attention width ``W = A·d``, equal to ``H`` in a uniform BertConfig), FFN size ``F`` and
``L`` layers::

    per layer  = 2·n·H·3W        Q, K, V projections
               + 2·n²·W          attention scores  Q·Kᵀ
               + 2·n²·W          context           softmax(·)·V
               + 2·n·W·H         attention output projection
               + 2·n·H·F·2       FFN up and down projections
             = 8·n·H·W + 4·n·H·F + 4·n²·W
    total      = L · per layer + 2·H² (pooler, [CLS] only) + 2·H·C (classifier, C labels; 0 for a base encoder)

Embedding look-ups, LayerNorm, softmax, GELU, biases and residual additions are left out (they are
O(n·H) each, under 1% at BERT shapes). The cost of a data set is the mean over its examples at their
real (unpadded) lengths, so padding, which depends on how examples are batched, is not counted.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np


def layer_flops(seq_len: int | float, hidden: int, intermediate: int, attention_width: int | None = None) -> float:
    """FLOPs of one transformer layer on ``seq_len`` tokens: 8nHW + 4nHF + 4n²W (W = attention width)."""
    n, h, f = float(seq_len), float(hidden), float(intermediate)
    w = h if attention_width is None else float(attention_width)
    return 8 * n * h * w + 4 * n * h * f + 4 * n * n * w


def encoder_flops(seq_len: int | float, hidden: int, layers: int, intermediate: int,
                  attention_width: int | None = None, num_labels: int = 0, pooler: bool = True) -> float:
    """FLOPs of one example of ``seq_len`` tokens: L layers, plus pooler (2H²) and classifier (2HC)."""
    total = layers * layer_flops(seq_len, hidden, intermediate, attention_width)
    if pooler:
        total += 2.0 * hidden * hidden
    return total + 2.0 * hidden * num_labels


def config_dims(config: Any) -> dict[str, int]:
    """The dimensions of a BertConfig (or any config with the same fields) that the count uses."""
    hidden = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    head_size = int(getattr(config, "attention_head_size", None) or hidden // heads)
    return {"hidden": hidden, "layers": int(config.num_hidden_layers), "intermediate": int(config.intermediate_size),
            "attention_width": heads * head_size}


def flops_per_example(config: Any, lengths: Iterable[int], num_labels: int | None = None,
                      pooler: bool = True) -> float:
    """Mean FLOPs per example of a model with ``config`` over examples of token ``lengths``.

    ``num_labels`` defaults to the config's label count for a sequence classifier and 0 for a base
    encoder (``architectures`` not ending in ForSequenceClassification).
    """
    lengths = np.asarray(list(lengths), dtype=np.float64)
    if lengths.size == 0:
        raise ValueError("no token lengths given")
    if num_labels is None:
        archs = getattr(config, "architectures", None) or []
        classifier = any(str(a).endswith("ForSequenceClassification") for a in archs)
        num_labels = int(getattr(config, "num_labels", 0) or 0) if classifier else 0
    dims = config_dims(config)
    # The count is a quadratic in n, so its mean needs only the mean of n and of n².
    n_mean, n2_mean = float(lengths.mean()), float((lengths ** 2).mean())
    h, w, f, layers = dims["hidden"], dims["attention_width"], dims["intermediate"], dims["layers"]
    per_layer = 8 * n_mean * h * w + 4 * n_mean * h * f + 4 * n2_mean * w
    total = layers * per_layer + (2.0 * h * h if pooler else 0.0) + 2.0 * h * num_labels
    return float(total)
