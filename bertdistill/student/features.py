"""What a forward pass hands to the loss terms: logits plus only the internal states they asked for.

Students and online teachers go through the same ``forward_features``. Layers are numbered like
``hidden_states``: 0 is the embeddings, 1..L the encoder layers. Query/key/value vectors (MiniLM's
relations) are captured with forward hooks on the projections the model's family adapter names
(``bertdistill.families``), so they cost nothing when not asked for.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from bertdistill.families import family_of


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


def use_eager_attention(model: nn.Module) -> None:
    """Attention probabilities are only returned by the eager implementation (SDPA gives none)."""
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")


@contextlib.contextmanager
def capture_qkv(model: nn.Module, layers: frozenset[int]):
    """Yield a dict that fills with layer → [query, key, value] outputs (each (B, T, W)) during the forward
    pass; where the family fuses them (one [q; k; v] linear), its output is split in three. A projection's
    first call in the pass is the tokens' (DeBERTa calls its query/key projections again on the relative
    position embeddings)."""
    family = family_of(model, "the query/key/value terms (minilm_attention, minilm_value)")
    captured: dict[int, list] = {layer: [None, None, None] for layer in layers}
    all_layers = family.layers(model)
    handles = []
    for layer in layers:
        parts = family.layer_parts(all_layers[layer - 1])
        if parts.qkv is not None:
            def fused(_module, _inputs, output, layer=layer):
                if captured[layer][0] is None:
                    captured[layer][:] = list(output.chunk(3, dim=-1))
            handles.append(parts.qkv.register_forward_hook(fused))
            continue
        for slot, linear in enumerate((parts.query, parts.key, parts.value)):
            def hook(_module, _inputs, output, layer=layer, slot=slot):
                if captured[layer][slot] is None:
                    captured[layer][slot] = output
            handles.append(linear.register_forward_hook(hook))
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
