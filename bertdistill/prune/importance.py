"""Importance scores of a model's layers, heads, head dimensions, FFN neurons and hidden dims, in one pass.

Where the attention output projection, the FFN down projection, the LayerNorms and the query/key/value
projections are comes from the model's family adapter (``bertdistill.families``), so every supported
family is scored the same way.

One forward and backward pass over the calibration set, with the weights frozen, gives every score:

* heads (Michel et al., 2019): a mask ``m`` of ones multiplies each head's context vector before the
  attention output projection; score = Σ_examples |∂L/∂m_h|. The mask has one entry per example and
  head, so the sum of absolute values is over examples (signs do not cancel across a batch);
* FFN neurons (first-order Taylor): the same with a mask on the FFN activations, i.e.
  Σ_examples |Σ_tokens a·∂L/∂a|;
* hidden dims (Minitron's activation magnitude): for every LayerNorm output (embeddings and those of
  each layer), the per-example mean of |h| over real tokens, aggregated over examples by the L2 norm;
  a dim's score sums those of the embedding LayerNorm and the LayerNorms of the kept layers;
* blocks (layers): 1 − cos(input, output) of each layer, averaged over real tokens and examples;
* head dimensions, when the head size shrinks: Q/K dim j scores Σ_examples mean|q_j|·mean|k_j|, V dim j
  scores Σ_examples mean|v_j| times the norm of the output projection's column j.

The loss L (summed over examples) is the cross-entropy to target probabilities (a teacher's or a label
store's soft predictions; its gradient is that of KL(target ‖ model)), to gold labels, or to the model's
own argmax predictions; a base encoder without a head uses the L2 norm of its mean-pooled last layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from bertdistill.prune.shrink import PrunePlan, SourceParts

OBJECTIVES = ("teacher_kl", "store_kl", "gold_ce", "self_ce", "output_norm")


@dataclass
class ImportanceScores:
    """Accumulated scores of the source model (layer axis: source layers, 0-based)."""

    heads: np.ndarray
    """(L, A) head importance."""
    ffn: np.ndarray
    """(L, F) FFN neuron importance."""
    hidden_embeddings: np.ndarray
    """(H,) activation magnitude of the embedding LayerNorm."""
    hidden_layers: np.ndarray
    """(L, H) activation magnitude summed over each layer's LayerNorms."""
    blocks: np.ndarray
    """(L,) block importance 1 − cos(input, output)."""
    qk_dims: np.ndarray | None = None
    """(L, A·d) Q/K dimension scores (only when the head size shrinks)."""
    v_dims: np.ndarray | None = None
    """(L, A·d) V dimension scores (only when the head size shrinks)."""
    examples: int = 0
    tokens: int = 0
    objective: str = ""
    loss: float = 0.0
    extra: dict = field(default_factory=dict)

    def hidden(self, layers: Iterable[int]) -> np.ndarray:
        """Hidden-dim scores for a model keeping source ``layers`` (0-based)."""
        return self.hidden_embeddings + self.hidden_layers[list(layers)].sum(0)


def _masked_mean_abs(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, T, D) → (B, D): mean of |x| over the real tokens of each example."""
    return (x.detach().abs() * valid[..., None]).sum(1) / valid.sum(1).clamp(min=1)[:, None]


def objective_loss(objective: str, output, batch: dict[str, torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
    """The loss whose gradients score heads and neurons, summed over the batch's examples."""
    if objective == "output_norm":
        hidden = output.last_hidden_state
        pooled = (hidden * valid[..., None]).sum(1) / valid.sum(1).clamp(min=1)[:, None]
        return pooled.norm(dim=-1).sum()
    log_probs = torch.log_softmax(output.logits.float(), dim=-1)
    if objective in ("teacher_kl", "store_kl"):
        return -(batch["target_probs"] * log_probs).sum()
    if objective == "gold_ce":
        return -log_probs.gather(1, batch["labels"][:, None]).sum()
    if objective == "self_ce":
        return -log_probs.gather(1, log_probs.detach().argmax(-1, keepdim=True)).sum()
    raise ValueError(f"unknown objective {objective!r}")


def collect_scores(model: torch.nn.Module, parts: SourceParts, batches: Iterable[dict[str, torch.Tensor]],
                   objective: str, head_dims: bool = False,
                   on_batch: Callable[[int], None] | None = None) -> ImportanceScores:
    """Run ``batches`` (model inputs plus ``target_probs`` or ``labels`` when the objective needs them)."""
    family = parts.family
    n_layers, n_heads, d = len(parts.layers), parts.heads, parts.head_size
    width = n_heads * d
    ffn_size = parts.shape.ffn
    hidden_size = parts.shape.hidden
    layer_parts = [family.layer_parts(layer) for layer in parts.layers]
    norms_per_layer = max(1, max(len(p.norms) for p in layer_parts))
    heads = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    ffn = torch.zeros(n_layers, ffn_size, dtype=torch.float64)
    emb_sq = torch.zeros(hidden_size, dtype=torch.float64)
    layer_sq = torch.zeros(n_layers, norms_per_layer, hidden_size, dtype=torch.float64)
    blocks = torch.zeros(n_layers, dtype=torch.float64)
    qk = torch.zeros(n_layers, width, dtype=torch.float64) if head_dims else None
    v = torch.zeros(n_layers, width, dtype=torch.float64) if head_dims else None
    state: dict = {}
    hooks = []
    device = next(model.parameters()).device  # masks live with the model; sums are kept on the CPU

    def head_mask_hook(i):
        def hook(_module, args):
            (x,) = args[:1]
            b, t, _ = x.shape
            masked = x.view(b, t, n_heads, d) * state["head_masks"][i][:, None, :, None].to(x.dtype)
            return (masked.view(b, t, n_heads * d),) + tuple(args[1:])
        return hook

    def ffn_mask_hook(i):
        def hook(_module, args):
            (x,) = args[:1]
            return (x * state["ffn_masks"][i][:, None, :].to(x.dtype),) + tuple(args[1:])
        return hook

    def norm_hook(slot):
        def hook(_module, _args, out):
            mean = _masked_mean_abs(out, state["valid"]).double()
            if slot is None:
                emb_sq.add_((mean ** 2).sum(0).cpu())
            else:
                layer_sq[slot].add_((mean ** 2).sum(0).cpu())
        return hook

    def dim_hook(i, names):
        def hook(_module, _args, out):
            dims = state.setdefault("dims", {})
            if (i, names[0]) in dims:  # a second call is not the tokens' (DeBERTa's relative positions)
                return
            chunks = out.chunk(len(names), dim=-1) if len(names) > 1 else (out,)
            for name, chunk in zip(names, chunks):
                dims[(i, name)] = _masked_mean_abs(chunk, state["valid"]).double().cpu()
        return hook

    try:
        hooks.append(family.embedding_output(model).register_forward_hook(norm_hook(None)))
        for i, layer in enumerate(layer_parts):
            hooks.append(layer.attention_output.register_forward_pre_hook(head_mask_hook(i)))
            hooks.append(layer.ffn_output.register_forward_pre_hook(ffn_mask_hook(i)))
            for k, norm in enumerate(layer.norms):
                hooks.append(norm.register_forward_hook(norm_hook((i, k))))
            if head_dims:
                if layer.qkv is not None:
                    hooks.append(layer.qkv.register_forward_hook(dim_hook(i, ("query", "key", "value"))))
                else:
                    for name in ("query", "key", "value"):
                        hooks.append(getattr(layer, name).register_forward_hook(dim_hook(i, (name,))))
        requires = {p: p.requires_grad for p in model.parameters()}
        for p in requires:
            p.requires_grad_(False)
        model.eval()
        examples = tokens = 0
        total_loss = 0.0
        try:
            for batch in batches:
                inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
                valid = inputs["attention_mask"].to(torch.float32)
                b = valid.shape[0]
                state["valid"] = valid
                state["head_masks"] = [torch.ones(b, n_heads, device=device, requires_grad=True)
                                       for _ in range(n_layers)]
                state["ffn_masks"] = [torch.ones(b, ffn_size, device=device, requires_grad=True)
                                      for _ in range(n_layers)]
                state["dims"] = {}
                output = model(**inputs, output_hidden_states=True)
                loss = objective_loss(objective, output, batch, valid)
                grads = torch.autograd.grad(loss, state["head_masks"] + state["ffn_masks"])
                for i in range(n_layers):
                    heads[i] += grads[i].detach().abs().sum(0).double().cpu()
                    ffn[i] += grads[n_layers + i].detach().abs().sum(0).double().cpu()
                with torch.no_grad():
                    hs = output.hidden_states
                    for i in range(n_layers):
                        cos = torch.nn.functional.cosine_similarity(hs[i].float(), hs[i + 1].float(), dim=-1)
                        per_example = ((1 - cos) * valid).sum(1) / valid.sum(1).clamp(min=1)
                        blocks[i] += per_example.double().sum().cpu()
                    if head_dims:
                        for i in range(n_layers):
                            dims = state["dims"]
                            qk[i] += (dims[(i, "query")] * dims[(i, "key")]).sum(0)
                            v[i] += dims[(i, "value")].sum(0)
                examples += b
                tokens += int(valid.sum().item())
                total_loss += float(loss.detach())
                if on_batch is not None:
                    on_batch(b)
        finally:
            for p, flag in requires.items():
                p.requires_grad_(flag)
    finally:
        for h in hooks:
            h.remove()
        state.clear()
    if head_dims:
        for i, layer in enumerate(layer_parts):
            v[i] *= layer.attention_output.weight.detach().double().norm(dim=0).cpu()
    return ImportanceScores(
        heads=heads.numpy(), ffn=ffn.numpy(), hidden_embeddings=emb_sq.sqrt().numpy(),
        hidden_layers=layer_sq.sqrt().sum(1).numpy(), blocks=(blocks / max(examples, 1)).numpy(),
        qk_dims=None if qk is None else qk.numpy(), v_dims=None if v is None else v.numpy(),
        examples=examples, tokens=tokens, objective=objective, loss=total_loss / max(examples, 1))


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest scores, in increasing index order (ties keep the lower index)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return sorted(int(i) for i in order)


def make_plan(scores: ImportanceScores, layers: list[int], hidden: int, heads: int, ffn: int,
              source_head_size: int, shared_heads: bool = False) -> PrunePlan:
    """Keep the top-scored parts: ``layers`` are 0-based source layers already chosen. ``shared_heads``: every
    layer keeps the same heads, those with the largest score summed over the kept layers (MPNet's relative
    position bias is one per-head table for all layers)."""
    head_size = hidden // heads
    hid = top_k(scores.hidden(layers), hidden)
    common = top_k(scores.heads[list(layers)].sum(0), heads) if shared_heads else None
    kept_heads, qk_rows, v_rows, ffn_rows = [], [], [], []
    for layer in layers:
        chosen = common if common is not None else top_k(scores.heads[layer], heads)
        kept_heads.append(chosen)
        qk_l, v_l = [], []
        for h in chosen:
            start = h * source_head_size
            if head_size == source_head_size:
                dims_qk = dims_v = list(range(source_head_size))
            else:
                dims_qk = top_k(scores.qk_dims[layer, start:start + source_head_size], head_size)
                dims_v = top_k(scores.v_dims[layer, start:start + source_head_size], head_size)
            qk_l += [start + j for j in dims_qk]
            v_l += [start + j for j in dims_v]
        qk_rows.append(qk_l)
        v_rows.append(v_l)
        ffn_rows.append(top_k(scores.ffn[layer], ffn))
    return PrunePlan(layers=list(layers), hidden=hid, heads=kept_heads, qk_rows=qk_rows, v_rows=v_rows,
                     ffn=ffn_rows, head_size=head_size, source_head_size=source_head_size)


def importance_layers(blocks: np.ndarray, k: int) -> list[int]:
    """The ``k`` layers (0-based, in source order) with the largest block importance."""
    return top_k(blocks, k)
