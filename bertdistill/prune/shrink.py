"""Cut a smaller BERT out of a larger one: chosen layers, heads, head dimensions, FFN neurons and hidden dims.

The result is a plain model of the source's class (``BertModel`` stays a base encoder, a
``BertForSequenceClassification`` stays a classifier) with a uniform ``BertConfig``: every layer has
``heads`` heads of ``hidden // heads`` dimensions and ``len(plan.ffn[i])`` FFN neurons.

One set of hidden (residual) dimensions is kept everywhere the residual stream is read or written:
the word/position/token-type embedding columns, every LayerNorm, the input columns of Q/K/V and of the
FFN up-projection, the output rows of the attention output and FFN down projections, the pooler (both
sides) and the classifier's input columns. Q/K rows of a layer are the kept heads' kept query/key
dimensions, V rows (and the attention output projection's columns) the kept value dimensions. When the
head size shrinks, Q is multiplied by sqrt(new head size / old head size), so that with the new
``1/sqrt(d)`` attention scaling the scores equal the source's partial dot products over the kept
dimensions (``Σ_kept q·k / sqrt(d_source)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bertdistill.errors import UserError


@dataclass
class BertParts:
    """The modules of a BERT-layout model that pruning reads and writes."""

    base: nn.Module
    layers: list[nn.Module]
    pooler: nn.Module | None
    classifier: nn.Linear | None
    head_size: int
    heads: int


def bert_parts(model: nn.Module, where: str | None = None) -> BertParts:
    """Check ``model`` is BERT-layout (``encoder.layer[i].attention.self.query`` ...) and return its parts."""
    fix = "use a BERT-family model (BertModel or BertForSequenceClassification)"
    base = getattr(model, "base_model", model)
    emb = getattr(base, "embeddings", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if emb is None or layers is None or not all(
            isinstance(getattr(emb, name, None), mod) for name, mod in (
                ("word_embeddings", nn.Embedding), ("position_embeddings", nn.Embedding),
                ("token_type_embeddings", nn.Embedding), ("LayerNorm", nn.LayerNorm))):
        raise UserError(f"{type(model).__name__} is not BERT-layout (no embeddings and encoder.layer[i])", where, fix)
    for i, layer in enumerate(layers):
        try:
            linears = [layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                       layer.attention.output.dense, layer.intermediate.dense, layer.output.dense]
            norms = [layer.attention.output.LayerNorm, layer.output.LayerNorm]
        except AttributeError:
            raise UserError(f"{type(model).__name__} is not BERT-layout (no encoder.layer[{i}].attention.self.query "
                            "structure)", where, fix) from None
        if not all(isinstance(m, nn.Linear) for m in linears) or not all(isinstance(m, nn.LayerNorm) for m in norms):
            raise UserError(f"{type(model).__name__} layer {i + 1} is not a plain BERT layer", where, fix)
        if hasattr(layer, "crossattention"):
            raise UserError("models with cross-attention (decoders) are not supported", where, fix)
    config = model.config
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        raise UserError(f"position embeddings {config.position_embedding_type!r} are not supported", where,
                        "use a BERT with absolute position embeddings")
    classifier = None
    if model is not base:
        classifier = getattr(model, "classifier", None)
        if not isinstance(classifier, nn.Linear):
            raise UserError(f"{type(model).__name__} has no linear classifier head", where,
                            "use a base BertModel or a BertForSequenceClassification")
    self_attn = layers[0].attention.self
    heads = int(config.num_attention_heads)
    head_size = self_attn.query.out_features // heads
    return BertParts(base, list(layers), getattr(base, "pooler", None), classifier, head_size, heads)


@dataclass
class PrunePlan:
    """What is kept, as 0-based indices into the source model's tensors."""

    layers: list[int]
    """Source layers (0-based), in the order the pruned model stacks them."""
    hidden: list[int]
    """Kept hidden (residual) dimensions, one set for the whole model."""
    heads: list[list[int]]
    """Per kept layer: kept source heads."""
    qk_rows: list[list[int]]
    """Per kept layer: rows of Q and K kept (kept heads' kept dimensions, head by head)."""
    v_rows: list[list[int]]
    """Per kept layer: rows of V (= columns of the attention output projection) kept."""
    ffn: list[list[int]]
    """Per kept layer: kept FFN neurons (rows of the up projection, columns of the down projection)."""
    head_size: int
    source_head_size: int

    @property
    def num_heads(self) -> int:
        return len(self.heads[0]) if self.heads else 0


def identity_plan(model: nn.Module) -> PrunePlan:
    """The plan that keeps everything (the pruned model equals the source)."""
    parts = bert_parts(model)
    cfg = model.config
    width = parts.heads * parts.head_size
    n = len(parts.layers)
    return PrunePlan(layers=list(range(n)), hidden=list(range(cfg.hidden_size)),
                     heads=[list(range(parts.heads))] * n, qk_rows=[list(range(width))] * n,
                     v_rows=[list(range(width))] * n, ffn=[list(range(cfg.intermediate_size))] * n,
                     head_size=parts.head_size, source_head_size=parts.head_size)


RESIDUAL_ATTR = "bertdistill_pruned_residual"
"""Config attribute of a pruned model: {"source_width": W, "index": [source dimension of each kept one]}."""


def pruned_config(config, plan: PrunePlan):
    """A copy of ``config`` with the plan's uniform shape."""
    new = config.__class__.from_dict(config.to_dict())
    # Which of the source's residual dimensions each kept one is (composed over repeated prunes), so that a
    # width projection onto a teacher of the source's family can start as that embedding (PKD, hidden_mse).
    before = getattr(config, RESIDUAL_ATTR, None) or {"source_width": int(config.hidden_size),
                                                      "index": list(range(int(config.hidden_size)))}
    setattr(new, RESIDUAL_ATTR, {"source_width": int(before["source_width"]),
                                 "index": [int(before["index"][i]) for i in plan.hidden]})
    new.num_hidden_layers = len(plan.layers)
    new.hidden_size = len(plan.hidden)
    new.num_attention_heads = plan.num_heads
    new.intermediate_size = len(plan.ffn[0])
    if hasattr(new, "head_dim"):
        new.head_dim = plan.head_size
    return new


class _Copier:
    """Copies sliced tensors into a new model and remembers which of its parameters were set."""

    def __init__(self) -> None:
        self.done: set[int] = set()

    def tensor(self, dst: torch.Tensor, src: torch.Tensor, *index: torch.Tensor | None, scale: float = 1.0) -> None:
        value = src.detach()
        for dim, idx in enumerate(index):
            if idx is not None:
                value = value.index_select(dim, idx)
        if value.shape != dst.shape:
            raise RuntimeError(f"shape mismatch {tuple(value.shape)} vs {tuple(dst.shape)}")
        with torch.no_grad():
            dst.copy_(value * scale if scale != 1.0 else value)
        self.done.add(id(dst))

    def linear(self, dst: nn.Linear, src: nn.Linear, rows, cols, scale: float = 1.0) -> None:
        self.tensor(dst.weight, src.weight, rows, cols, scale=scale)
        if src.bias is not None:
            self.tensor(dst.bias, src.bias, rows, scale=scale)

    def norm(self, dst: nn.LayerNorm, src: nn.LayerNorm, dims) -> None:
        self.tensor(dst.weight, src.weight, dims)
        if src.bias is not None:
            self.tensor(dst.bias, src.bias, dims)


def shrink_model(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """A new model of ``model``'s class holding the slices ``plan`` keeps (``model`` is left unchanged)."""
    src = bert_parts(model)
    config = pruned_config(model.config, plan)
    dtype = next(model.parameters()).dtype
    new = model.__class__(config).to(dtype).eval()
    dst = bert_parts(new)
    ix = lambda values: torch.as_tensor(values, dtype=torch.long)  # noqa: E731
    hid = ix(plan.hidden)
    copy = _Copier()
    e_src, e_dst = src.base.embeddings, dst.base.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        copy.tensor(getattr(e_dst, name).weight, getattr(e_src, name).weight, None, hid)
    copy.norm(e_dst.LayerNorm, e_src.LayerNorm, hid)
    qk_scale = math.sqrt(plan.head_size / plan.source_head_size)
    for dst_layer, src_index, qk, v, ffn in zip(dst.layers, plan.layers, plan.qk_rows, plan.v_rows, plan.ffn):
        s, d = src.layers[src_index], dst_layer
        qk, v, ffn = ix(qk), ix(v), ix(ffn)
        copy.linear(d.attention.self.query, s.attention.self.query, qk, hid, scale=qk_scale)
        copy.linear(d.attention.self.key, s.attention.self.key, qk, hid)
        copy.linear(d.attention.self.value, s.attention.self.value, v, hid)
        copy.linear(d.attention.output.dense, s.attention.output.dense, hid, v)
        copy.norm(d.attention.output.LayerNorm, s.attention.output.LayerNorm, hid)
        copy.linear(d.intermediate.dense, s.intermediate.dense, ffn, hid)
        copy.linear(d.output.dense, s.output.dense, hid, ffn)
        copy.norm(d.output.LayerNorm, s.output.LayerNorm, hid)
    if src.pooler is not None and dst.pooler is not None:
        copy.linear(dst.pooler.dense, src.pooler.dense, hid, hid)
    elif dst.pooler is not None:
        dst.base.pooler = None
    if src.classifier is not None:
        copy.linear(dst.classifier, src.classifier, None, hid)
    missing = [name for name, p in new.named_parameters() if id(p) not in copy.done]
    if missing:
        raise UserError(f"cannot prune {type(model).__name__}: no rule for weights {missing[:3]}", None,
                        "use a plain BertModel or BertForSequenceClassification")
    return new
