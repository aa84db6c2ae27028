"""Analytic FLOPs of an encoder (and its pooler or classification head) per example at given token lengths.

One multiply-add counts as 2 FLOPs. For an example of ``n`` tokens, hidden size ``H``, ``A`` heads of
size ``d`` (attention width ``W = A·d``, equal to ``H`` in a uniform config), FFN size ``F`` and
``L`` layers::

    per layer  = 2·n·H·3W        Q, K, V projections
               + 2·n²·W          attention scores  Q·Kᵀ
               + 2·n²·W          context           softmax(·)·V
               + 2·n·W·H         attention output projection
               + 2·n·H·F·2       FFN up and down projections (a gated FFN, ModernBERT's: up is 2F wide, 2·n·H·F·3)
             = 8·n·H·W + 4·n·H·F + 4·n²·W
    total      = L · per layer + 2·H² (pooler or head dense, [CLS] only) + 2·H·C (classifier, C labels; 0 for a
                 base encoder)

What differs between families comes from their adapter (``bertdistill.families``: ``FlopsDims``):
a gated FFN; embeddings of width E projected up (ELECTRA, some DeBERTa: + 2·n·E·H); DeBERTa's
disentangled attention, per position term (c2p, p2c) and layer: scores against the S = 2k relative
positions (+ 2·n·S·W) and the projection of the S relative embeddings (+ 2·S·H·W, once per example).
ModernBERT's sliding-window layers are counted as full attention (the eager and SDPA kernels compute
the whole n×n scores and mask them). Embedding look-ups, LayerNorm, softmax, GELU, rotary rotations,
biases and residual additions are left out (they are O(n·H) each, under 1% at BERT shapes). The cost
of a data set is the mean over its examples at their real (unpadded) lengths, so padding, which
depends on how examples are batched, is not counted.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np


def layer_flops(seq_len: int | float, hidden: int, intermediate: int, attention_width: int | None = None,
                gated_ffn: bool = False) -> float:
    """FLOPs of one transformer layer on ``seq_len`` tokens: 8nHW + 4nHF + 4n²W (W = attention width; a gated
    FFN 6nHF)."""
    n, h, f = float(seq_len), float(hidden), float(intermediate)
    w = h if attention_width is None else float(attention_width)
    return 8 * n * h * w + (6 if gated_ffn else 4) * n * h * f + 4 * n * n * w


def encoder_flops(seq_len: int | float, hidden: int, layers: int, intermediate: int,
                  attention_width: int | None = None, num_labels: int = 0, pooler: bool = True) -> float:
    """FLOPs of one example of ``seq_len`` tokens: L layers, plus pooler (2H²) and classifier (2HC)."""
    total = layers * layer_flops(seq_len, hidden, intermediate, attention_width)
    if pooler:
        total += 2.0 * hidden * hidden
    return total + 2.0 * hidden * num_labels


def config_dims(config: Any) -> dict[str, int]:
    """The dimensions the count uses, from the config's family adapter (for a family without one, the
    BERT field names: hidden_size, num_attention_heads, num_hidden_layers, intermediate_size)."""
    from bertdistill.families import FlopsDims, find_family

    family = find_family(config)
    if family is not None:
        shape, extra = family.shape(config), family.flops_dims(config)
        hidden, heads, head_size, layers, ffn = shape.hidden, shape.heads, shape.head_size, shape.layers, shape.ffn
    else:
        extra = FlopsDims()
        hidden = int(config.hidden_size)
        heads = int(config.num_attention_heads)
        head_size = int(getattr(config, "attention_head_size", None) or hidden // heads)
        layers, ffn = int(config.num_hidden_layers), int(config.intermediate_size)
    return {"hidden": hidden, "layers": layers, "intermediate": ffn, "attention_width": heads * head_size,
            "gated_ffn": int(extra.gated_ffn), "embedding_projection": extra.embedding_projection,
            "relative_span": extra.relative_span, "relative_terms": extra.relative_terms,
            "head_dense": int(extra.head_dense)}


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
    ffn_factor = 6 if dims["gated_ffn"] else 4
    per_layer = 8 * n_mean * h * w + ffn_factor * n_mean * h * f + 4 * n2_mean * w
    span, terms = dims["relative_span"], dims["relative_terms"]
    per_layer += terms * (2 * n_mean * span * w + 2 * span * h * w)
    total = layers * per_layer + 2.0 * n_mean * dims["embedding_projection"] * h
    total += (2.0 * h * h if pooler and dims["head_dense"] else 0.0) + 2.0 * h * num_labels
    return float(total)
