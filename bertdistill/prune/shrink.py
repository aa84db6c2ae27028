"""Cut a smaller model out of a larger one of any supported family: chosen layers, heads, head dimensions, FFN
neurons and hidden dims.

The result is a plain model of the source's class (a base encoder stays one, a sequence classifier stays
a classifier) with a uniform config: every layer has ``heads`` heads of ``hidden // heads`` dimensions and
``len(plan.ffn[i])`` FFN neurons.

Where each weight is and what indexes each of its axes comes from the model's family adapter
(``bertdistill.families``: its pruning rules). One set of hidden (residual) dimensions is kept
everywhere the residual stream is read or written: embedding columns, every LayerNorm, the input
columns of the query/key/value and FFN up projections, the output rows of the attention output and FFN
down projections, the pooler or classification head. Q/K rows of a layer are the kept heads' kept
query/key dimensions, V rows (and the attention output projection's columns) the kept value dimensions;
a fused [Q; K; V] projection keeps the same rows of each third, a gated FFN the same neurons of its up
and gate halves. When the head size shrinks, Q is multiplied by sqrt(new head size / old head size), so
that with the new ``1/sqrt(d)`` attention scaling the scores equal the source's partial dot products over
the kept dimensions (``Σ_kept q·k / sqrt(d_source)``); every weight that builds queries (DeBERTa's
position queries too) is scaled the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bertdistill.errors import UserError
from bertdistill.families import (FFN, FFN_GATED, HEADS, HIDDEN, KEY, QKV, QUERY, VALUE, Family, Shape,
                                  family_of)


@dataclass
class SourceParts:
    """A model to prune with its family adapter, checked to have the family's layout."""

    model: nn.Module
    family: Family
    shape: Shape
    layers: nn.ModuleList

    @property
    def head_size(self) -> int:
        return self.shape.head_size

    @property
    def heads(self) -> int:
        return self.shape.heads


def source_parts(model: nn.Module, where: str | None = None) -> SourceParts:
    """The model's family adapter and shape; one line for a model that cannot be pruned."""
    family = family_of(model, "prune", where)
    family.check_prunable(model, where)
    shape = family.shape(model.config)
    if shape.attention_width != shape.hidden:
        raise UserError(f"attention width {shape.attention_width} differs from the hidden size {shape.hidden}",
                        where, "prune a model whose heads × head size equals its hidden size")
    return SourceParts(model, family, shape, family.layers(model))


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
    shape = source_parts(model).shape
    width = shape.attention_width
    n = shape.layers
    return PrunePlan(layers=list(range(n)), hidden=list(range(shape.hidden)),
                     heads=[list(range(shape.heads))] * n, qk_rows=[list(range(width))] * n,
                     v_rows=[list(range(width))] * n, ffn=[list(range(shape.ffn))] * n,
                     head_size=shape.head_size, source_head_size=shape.head_size)


RESIDUAL_ATTR = "bertdistill_pruned_residual"
"""Config attribute of a pruned model: {"source_width": W, "index": [source dimension of each kept one]}."""


def pruned_config(config, plan: PrunePlan, family: Family):
    """A copy of ``config`` with the plan's uniform shape (and per-layer settings of the kept layers)."""
    new = family.select_layers(config, plan.layers)
    new = family.with_shape(new, hidden=len(plan.hidden), heads=plan.num_heads, ffn=len(plan.ffn[0]),
                            head_size=plan.head_size)
    # Which of the source's residual dimensions each kept one is (composed over repeated prunes), so that a
    # width projection onto a teacher of the source's family can start as that embedding (PKD, hidden_mse).
    width = family.shape(config).hidden
    before = getattr(config, RESIDUAL_ATTR, None) or {"source_width": width, "index": list(range(width))}
    setattr(new, RESIDUAL_ATTR, {"source_width": int(before["source_width"]),
                                 "index": [int(before["index"][i]) for i in plan.hidden]})
    return new


class _Copier:
    """Copies sliced tensors into a new model and remembers which of its parameters were set."""

    def __init__(self) -> None:
        self.done: set[int] = set()

    def tensor(self, dst: torch.Tensor, src: torch.Tensor, index: list, scale_rows: tuple[int, float] | None) -> None:
        value = src.detach()
        for dim, idx in enumerate(index):
            if idx is not None:
                value = value.index_select(dim, idx)
        if value.shape != dst.shape:
            raise RuntimeError(f"shape mismatch {tuple(value.shape)} vs {tuple(dst.shape)}")
        if scale_rows is not None:  # the first n rows (queries) times the factor
            n, factor = scale_rows
            value = value.clone()
            value[:n] *= factor
        with torch.no_grad():
            dst.copy_(value)
        self.done.add(id(dst))


class _Indexer:
    """Index tensors for each axis kind of the pruning rules, for one kept layer (or none)."""

    def __init__(self, plan: PrunePlan, shape: Shape, shared_heads: list[int] | None):
        self.plan = plan
        self.shape = shape
        self.shared_heads = shared_heads
        self.qk_scale = math.sqrt(plan.head_size / plan.source_head_size)

    @staticmethod
    def ix(values) -> torch.Tensor:
        return torch.as_tensor(list(values), dtype=torch.long)

    def index(self, axis: str | None, j: int | None) -> tuple[torch.Tensor | None, tuple[int, float] | None]:
        """(index, (rows to scale, factor) or None) for ``axis`` in kept layer ``j``."""
        plan, width = self.plan, self.shape.attention_width
        scale = None
        if axis is None:
            return None, None
        if axis == HIDDEN:
            return self.ix(plan.hidden), None
        if axis == HEADS:
            if self.shared_heads is None:
                raise RuntimeError("a per-head table needs the same heads in every layer")
            return self.ix(self.shared_heads), None
        if j is None:
            raise RuntimeError(f"axis {axis} outside a layer")
        qk, v, ffn = plan.qk_rows[j], plan.v_rows[j], plan.ffn[j]
        if axis == QUERY:
            return self.ix(qk), (len(qk), self.qk_scale) if self.qk_scale != 1.0 else None
        if axis == KEY:
            return self.ix(qk), None
        if axis == VALUE:
            return self.ix(v), None
        if axis == QKV:
            rows = list(qk) + [width + i for i in qk] + [2 * width + i for i in v]
            if self.qk_scale != 1.0:
                scale = (len(qk), self.qk_scale)
            return self.ix(rows), scale
        if axis == FFN:
            return self.ix(ffn), None
        if axis == FFN_GATED:
            return self.ix(list(ffn) + [self.shape.ffn + i for i in ffn]), None
        raise ValueError(f"unknown axis kind {axis!r}")


def _module(root: nn.Module, path: str) -> nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def _copy_module(copier: _Copier, indexer: _Indexer, dst: nn.Module, src: nn.Module, axes: tuple,
                 j: int | None) -> None:
    """Copy ``src``'s weight (axes as given) and bias (the weight's first axis) into ``dst``."""
    index, scales = [], []
    for axis in axes:
        idx, scale = indexer.index(axis, j)
        index.append(idx)
        scales.append(scale)
    copier.tensor(dst.weight, src.weight, index, scales[0])
    if getattr(src, "bias", None) is not None and getattr(dst, "bias", None) is not None:
        copier.tensor(dst.bias, src.bias, index[:1], scales[0])


def _has_weight(module: nn.Module | None) -> bool:
    return module is not None and isinstance(getattr(module, "weight", None), torch.Tensor)


def shrink_model(model: nn.Module, plan: PrunePlan, where: str | None = None) -> nn.Module:
    """A new model of ``model``'s class holding the slices ``plan`` keeps (``model`` is left unchanged)."""
    src = source_parts(model, where)
    family = src.family
    rules = family.prune_rules(model.config)
    shared = None
    if plan.heads and all(h == plan.heads[0] for h in plan.heads):
        shared = list(plan.heads[0])
    config = pruned_config(model.config, plan, family)
    dtype = next(model.parameters()).dtype
    new = model.__class__(config).to(dtype).eval()
    indexer = _Indexer(plan, src.shape, shared)
    copier = _Copier()
    initialized: list[str] = []
    src_base, dst_base = family.base(model), family.base(new)
    for path, axes in rules.base.items():
        s, d = _module(src_base, path), _module(dst_base, path)
        if _has_weight(s) and _has_weight(d):
            _copy_module(copier, indexer, d, s, axes, None)
        elif d is not None and s is None and path.split(".")[0] in rules.droppable:
            setattr(dst_base, path.split(".")[0], None)  # the source has none (a base encoder without a pooler)
    dst_layers = family.layers(new)
    for j, (dst_layer, source_index) in enumerate(zip(dst_layers, plan.layers)):
        src_layer = src.layers[source_index]
        for path, axes in rules.layer.items():
            s, d = _module(src_layer, path), _module(dst_layer, path)
            if _has_weight(s) and _has_weight(d):
                _copy_module(copier, indexer, d, s, axes, j)
            elif _has_weight(d):  # the source layer has none here (ModernBERT's first attention norm)
                initialized.append(f"layer {j + 1} {path}")
                for p in d.parameters(recurse=False):
                    copier.done.add(id(p))
    if model is not src_base:
        for path, axes in rules.head.items():
            s, d = _module(model, path), _module(new, path)
            if _has_weight(s) and _has_weight(d):
                _copy_module(copier, indexer, d, s, axes, None)
    missing = [name for name, p in new.named_parameters() if id(p) not in copier.done]
    if missing:
        raise UserError(f"cannot prune {type(model).__name__}: no rule for weights {missing[:3]}", where,
                        f"prune a standard {family.name} encoder or sequence classifier")
    new.bertdistill_initialized = initialized
    return new
