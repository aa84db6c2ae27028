"""What a forward pass hands to the loss terms: logits plus only the internal states they asked for.

Students and online teachers go through the same ``forward_features``. Layers are numbered like
``hidden_states``: 0 is the embeddings, 1..L the encoder layers. Query/key/value vectors (MiniLM's
relations) are captured with forward hooks on a BERT-layout layer's ``attention.self.{query,key,value}``
linears, so they cost nothing when not asked for.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from bertdistill.errors import UserError


@dataclass(frozen=True)
class FeatureRequest:
    """Internal states a forward pass must return (besides logits)."""

    hidden: frozenset[int] = frozenset()
    """hidden_states indices (0 = embeddings) whose all-token states are kept ([CLS] states are read from them)."""
    attentions: frozenset[int] = frozenset()
    """1-based layers whose attention probabilities are kept (needs eager attention)."""
    qkv: frozenset[int] = frozenset()
    """1-based layers whose query, key and value projections are kept."""

    def __or__(self, other: "FeatureRequest") -> "FeatureRequest":
        return FeatureRequest(self.hidden | other.hidden, self.attentions | other.attentions, self.qkv | other.qkv)

    def __bool__(self) -> bool:
        return bool(self.hidden or self.attentions or self.qkv)


NOTHING = FeatureRequest()


@dataclass
class Features:
    """One model's outputs on a batch: logits and the requested states, keyed by layer."""

    logits: torch.Tensor
    """Student: (heads, B, C); a teacher: (B, C)."""
    hidden: dict[int, torch.Tensor] = field(default_factory=dict)
    """layer → (B, T, H)."""
    cls: dict[int, torch.Tensor] = field(default_factory=dict)
    """layer → (B, H), for [CLS] states that come without the other tokens (a label store)."""
    attentions: dict[int, torch.Tensor] = field(default_factory=dict)
    """layer → (B, heads, T, T) attention probabilities."""
    qkv: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    """layer → (query, key, value), each (B, T, H)."""
    mask: torch.Tensor | None = None
    """(B, T) attention mask of the batch."""

    def cls_state(self, layer: int) -> torch.Tensor:
        if layer in self.cls:
            return self.cls[layer]
        return self.hidden[layer][:, 0]


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's layer list of a BERT-layout model (``base_model.encoder.layer``)."""
    layers = getattr(getattr(getattr(model, "base_model", model), "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise UserError(f"{type(model).__name__} is not BERT-layout (no encoder.layer list)", None,
                        "use a BERT-family model for terms on attentions or query/key/value states")
    return layers


def self_attention(model: nn.Module, layer: int) -> nn.Module:
    """The self-attention block (with ``query``, ``key``, ``value`` linears) of 1-based ``layer``."""
    block = getattr(getattr(encoder_layers(model)[layer - 1], "attention", None), "self", None)
    if block is None or not all(isinstance(getattr(block, n, None), nn.Linear) for n in ("query", "key", "value")):
        raise UserError(f"layer {layer} of {type(model).__name__} has no query/key/value linears", None,
                        "use a BERT-family model for the MiniLM terms")
    return block


def use_eager_attention(model: nn.Module) -> None:
    """Attention probabilities are only returned by the eager implementation (SDPA gives none)."""
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")


@contextlib.contextmanager
def capture_qkv(model: nn.Module, layers: frozenset[int]):
    """Yield a dict that fills with layer → [query, key, value] outputs during the forward pass."""
    captured: dict[int, list] = {layer: [None, None, None] for layer in layers}
    handles = []
    for layer in layers:
        block = self_attention(model, layer)
        for slot, name in enumerate(("query", "key", "value")):
            def hook(_module, _inputs, output, layer=layer, slot=slot):
                captured[layer][slot] = output
            handles.append(getattr(block, name).register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def forward_features(model: nn.Module, inputs: dict, request: FeatureRequest = NOTHING):
    """(the model's HF output, Features without logits filled) for a sequence classifier and ``request``."""
    with capture_qkv(model, request.qkv) if request.qkv else contextlib.nullcontext({}) as captured:
        out = model(**inputs, output_hidden_states=bool(request.hidden),
                    output_attentions=bool(request.attentions), return_dict=True)
    features = Features(logits=out.logits, mask=inputs.get("attention_mask"))
    if request.hidden:
        features.hidden = {i: out.hidden_states[i] for i in sorted(request.hidden)}
    if request.attentions:
        if not out.attentions:
            raise RuntimeError("the model returned no attentions; call use_eager_attention on it first")
        features.attentions = {i: out.attentions[i - 1] for i in sorted(request.attentions)}
    if request.qkv:
        features.qkv = {i: tuple(v) for i, v in captured.items()}
    return out, features
