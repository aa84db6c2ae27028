"""What a layout adapter says about one model family: where its parts are, what it takes as input, its shape.

Every place that must know a model's module tree (the MiniLM terms' query/key/value hooks, pruning,
copying layers into a student, ONNX export's inputs, FLOPs) asks the model's ``Family`` instead of
assuming BERT. A family is a subclass of ``Family`` in its own module of ``bertdistill.families``,
registered by the ``model_type`` values of its configs; the class attributes below describe the BERT
layout and a family overrides only what differs.

Paths are dotted module paths: ``layers_path`` and the ``base`` pruning rules are relative to the base
model (``model.base_model``), the per-layer paths to one encoder layer, the ``head`` rules to the task
model (a sequence classifier).

Pruning rules name, for each module, what indexes each axis of its ``weight`` (a bias follows the
weight's first axis): ``HIDDEN`` (the kept residual dimensions), ``QUERY``/``KEY``/``VALUE`` (the kept
heads' kept dimensions; query rows are rescaled when the head size shrinks), ``QKV`` (a fused
[query; key; value] projection), ``FFN`` (kept FFN neurons), ``FFN_GATED`` (a fused [up; gate]
projection), ``HEADS`` (a per-head table shared by all layers) or ``None`` (kept whole).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from torch import nn

from bertdistill.errors import UserError

HIDDEN, QUERY, KEY, VALUE, QKV, FFN, FFN_GATED, HEADS = (
    "hidden", "query", "key", "value", "qkv", "ffn", "ffn_gated", "heads")
"""What indexes an axis of a weight in the pruning rules."""

INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS = "input_ids", "attention_mask", "token_type_ids"
ALL_INPUTS = (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)
"""Model inputs the toolkit may feed, in the order exported graphs list them."""


@dataclass(frozen=True)
class Shape:
    """The dimensions a student or a pruned model is described by."""

    layers: int
    hidden: int
    heads: int
    head_size: int
    ffn: int

    @property
    def attention_width(self) -> int:
        return self.heads * self.head_size


@dataclass
class LayerParts:
    """The modules of one encoder layer that hooks read or mask."""

    attention_output: nn.Linear
    """Its input is the heads' concatenated context (B, T, heads·head_size): head masks go there."""
    ffn_output: nn.Linear
    """Its input is the FFN's activations (B, T, F): neuron masks go there."""
    norms: list[nn.Module]
    """Modules whose outputs are hidden-wide (the layer's LayerNorms): hidden dims are scored on them."""
    query: nn.Linear | None = None
    key: nn.Linear | None = None
    value: nn.Linear | None = None
    qkv: nn.Linear | None = None
    """A fused [query; key; value] projection (ModernBERT's ``Wqkv``) instead of three linears."""


@dataclass
class PruneRules:
    """Axis rules per module path (see the module docstring)."""

    base: dict[str, tuple] = field(default_factory=dict)
    layer: dict[str, tuple] = field(default_factory=dict)
    head: dict[str, tuple] = field(default_factory=dict)
    droppable: tuple[str, ...] = ()
    """Base-model modules that may be missing in a source (then removed from the pruned model too)."""


@dataclass(frozen=True)
class FlopsDims:
    """What the analytic FLOPs count needs beyond the shape (``bertdistill.flops``)."""

    gated_ffn: bool = False
    """The FFN's up projection is 2F wide (value and gate)."""
    embedding_projection: int = 0
    """Width E of embeddings projected up to the hidden size (2·E·H per token), 0 without."""
    relative_span: int = 0
    """Disentangled attention (DeBERTa): relative positions 2k scored per query, per position term."""
    relative_terms: int = 0
    """How many position terms (c2p, p2c) use them."""
    head_dense: bool = True
    """A hidden→hidden dense layer (pooler or classification head) before the classifier."""


class Family:
    """A layout adapter. Class attributes describe BERT; a family module overrides what differs."""

    name: ClassVar[str] = ""
    """Short name shown to users (``bert``, ``roberta`` ...)."""
    model_types: ClassVar[tuple[str, ...]] = ()
    """``config.model_type`` values this adapter handles."""
    layers_path: ClassVar[str] = "encoder.layer"
    query: ClassVar[str | None] = "attention.self.query"
    key: ClassVar[str | None] = "attention.self.key"
    value: ClassVar[str | None] = "attention.self.value"
    qkv: ClassVar[str | None] = None
    attention_output: ClassVar[str] = "attention.output.dense"
    ffn_input: ClassVar[str] = "intermediate.dense"
    ffn_output: ClassVar[str] = "output.dense"
    gated_ffn: ClassVar[bool] = False
    norms: ClassVar[tuple[str, ...]] = ("attention.output.LayerNorm", "output.LayerNorm")
    embedding_norm: ClassVar[str] = "embeddings.LayerNorm"
    """Base-model module whose output is the embeddings' hidden-wide output."""
    config_keys: ClassVar[dict[str, str]] = {"layers": "num_hidden_layers", "hidden": "hidden_size",
                                             "heads": "num_attention_heads", "ffn": "intermediate_size"}
    token_types: ClassVar[bool] = True
    """The model reads ``token_type_ids`` (when its config has more than one type)."""
    whole_heads: ClassVar[str | None] = None
    """Why heads cannot be narrowed (rotary positions), or None: pruning then keeps the head size."""
    shared_heads: ClassVar[str | None] = None
    """Why every layer must keep the same heads (a per-head table shared by the layers), or None."""
    reorders_layers: ClassVar[bool] = True
    """Layers may be dropped or reordered (a student of chosen layers, pruning by layers)."""

    # -- shape ---------------------------------------------------------------------------------
    def shape(self, config) -> Shape:
        get = lambda key: int(getattr(config, self.config_keys[key]))  # noqa: E731
        hidden, heads = get("hidden"), get("heads")
        head_size = int(getattr(config, "attention_head_size", None) or getattr(config, "head_dim", None)
                        or hidden // heads)
        return Shape(layers=get("layers"), hidden=hidden, heads=heads, head_size=head_size, ffn=get("ffn"))

    def with_shape(self, config, layers: int | None = None, hidden: int | None = None, heads: int | None = None,
                   ffn: int | None = None, head_size: int | None = None):
        """A copy of ``config`` with the given dimensions (the others kept); ``head_size`` where the family
        stores one. Subclasses fix what depends on them (per-layer settings, embedding widths)."""
        new = config.__class__.from_dict(copy.deepcopy(config.to_dict()))
        old = self.shape(config)
        for key, value in (("layers", layers), ("hidden", hidden), ("heads", heads), ("ffn", ffn)):
            if value is not None:
                setattr(new, self.config_keys[key], int(value))
        size = head_size or (int(getattr(new, self.config_keys["hidden"])) // int(getattr(new, self.config_keys["heads"])))
        for key in ("attention_head_size", "head_dim"):
            if getattr(config, key, None) is not None:
                setattr(new, key, size)
        if layers is not None and layers != old.layers:
            self.set_layer_settings(new, config, None)
        return new

    def select_layers(self, config, layers: Sequence[int]):
        """A copy of ``config`` for a model keeping source ``layers`` (0-based, in order)."""
        new = self.with_shape(config, layers=len(layers))
        self.set_layer_settings(new, config, list(layers))
        return new

    def set_layer_settings(self, new, source, kept: list[int] | None) -> None:
        """Per-layer config lists (ModernBERT's ``layer_types``) of ``new``: those of the ``kept`` source
        layers (0-based), or, with None, rebuilt for its number of layers."""

    # -- inputs --------------------------------------------------------------------------------
    def input_names(self, config) -> tuple[str, ...]:
        """The inputs a model of this config reads: token types only where it has more than one."""
        names = [INPUT_IDS, ATTENTION_MASK]
        if self.token_types and int(getattr(config, "type_vocab_size", 0) or 0) > 1:
            names.append(TOKEN_TYPE_IDS)
        return tuple(names)

    # -- module tree ---------------------------------------------------------------------------
    def base(self, model: nn.Module) -> nn.Module:
        return getattr(model, "base_model", model)

    def layers(self, model: nn.Module) -> nn.ModuleList:
        layers = self.base(model).get_submodule(self.layers_path)
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(f"{self.layers_path} of {type(model).__name__} is not a layer list")
        return layers

    def layers_prefix(self, model: nn.Module) -> str:
        """The state-dict prefix of the layer list in ``model`` (``bert.encoder.layer``)."""
        target = self.layers(model)
        for name, module in model.named_modules():
            if module is target:
                return name
        raise TypeError(f"no layer list in {type(model).__name__}")

    def layer_parts(self, layer: nn.Module) -> LayerParts:
        get = lambda path: None if path is None else layer.get_submodule(path)  # noqa: E731
        return LayerParts(attention_output=get(self.attention_output), ffn_output=get(self.ffn_output),
                          norms=[m for m in (get(p) for p in self.norms) if _has_weight(m)],
                          query=get(self.query), key=get(self.key), value=get(self.value), qkv=get(self.qkv))

    def embedding_output(self, model: nn.Module) -> nn.Module:
        return self.base(model).get_submodule(self.embedding_norm)

    def output_linear_paths(self) -> tuple[str, ...]:
        """Where the final linear of a sequence classifier's head may be (task-model paths)."""
        return ("classifier",)

    # -- pruning -------------------------------------------------------------------------------
    def prune_rules(self, config) -> PruneRules:
        layer = {self.ffn_input: (FFN_GATED if self.gated_ffn else FFN, HIDDEN), self.ffn_output: (HIDDEN, FFN),
                 self.attention_output: (HIDDEN, VALUE)}
        if self.qkv:
            layer[self.qkv] = (QKV, HIDDEN)
        else:
            layer.update({self.query: (QUERY, HIDDEN), self.key: (KEY, HIDDEN), self.value: (VALUE, HIDDEN)})
        layer.update({norm: (HIDDEN,) for norm in self.norms})
        return PruneRules(base=self.embedding_rules(config), layer=layer, head=self.head_rules(config))

    def embedding_rules(self, config) -> dict[str, tuple]:
        rules = {"embeddings.word_embeddings": (None, HIDDEN), "embeddings.position_embeddings": (None, HIDDEN),
                 self.embedding_norm: (HIDDEN,)}
        if self.token_types:
            rules["embeddings.token_type_embeddings"] = (None, HIDDEN)
        return rules

    def head_rules(self, config) -> dict[str, tuple]:
        return {"classifier": (None, HIDDEN)}

    def check_prunable(self, model: nn.Module, where: str | None) -> None:
        """Refuse, in one line, a model of this family that pruning cannot cut exactly."""

    def check_width(self, config, hidden: int, where: str | None) -> None:
        """Refuse a hidden width the family cannot be cut to (``--hidden``)."""

    # -- FLOPs ---------------------------------------------------------------------------------
    def flops_dims(self, config) -> FlopsDims:
        return FlopsDims(gated_ffn=self.gated_ffn)

    # -- student layers ------------------------------------------------------------------------
    def copy_notes(self, layers: Sequence[int]) -> list[str]:
        """What copying source ``layers`` (1-based) into a student changes beyond the weights."""
        return []

    def copy_tolerated(self, key: str) -> bool:
        """A state-dict key (relative to a layer) that may be missing or unexpected when layers move."""
        return False

    def describe(self) -> dict[str, Any]:
        return {"family": self.name, "model_types": list(self.model_types)}


def _has_weight(module: nn.Module | None) -> bool:
    return module is not None and isinstance(getattr(module, "weight", None), nn.Parameter)


def check_module(model: nn.Module, family: Family, where: str | None) -> None:
    """The model's module tree is the family's: its layers and their parts are where the adapter says."""
    try:
        layers = family.layers(model)
        for layer in layers:
            parts = family.layer_parts(layer)
            linears = [parts.attention_output, parts.ffn_output] + (
                [parts.qkv] if family.qkv else [parts.query, parts.key, parts.value])
            if not all(isinstance(m, nn.Linear) for m in linears):
                raise TypeError("not linear")
    except (AttributeError, TypeError):
        raise UserError(f"{type(model).__name__} (model_type {getattr(model.config, 'model_type', None)!r}) does not "
                        f"have the {family.name} layout the adapter expects ({family.layers_path}[i]...)", where,
                        "use a standard Hugging Face model of this family, or add an adapter "
                        "(docs/ARCHITECTURE.md, 'A model family')") from None
