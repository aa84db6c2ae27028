"""Loss terms: small pure functions (tensors in, scalar out), combined by a weighted sum of named terms.

Every function computes in float32 (logits may come from bf16 autocast) and averages over the batch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F


def hard_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mean_b −log softmax(z_s)[y]"""
    return F.cross_entropy(logits.float(), labels.long())


def soft_kl_probs(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · mean_b KL(p_t ‖ softmax(z_s/T)) for given teacher probabilities p_t"""
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    p = teacher_probs.float()
    kl = (torch.xlogy(p, p) - p * log_q).sum(dim=-1)
    return temperature ** 2 * kl.mean()


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · mean_b KL(softmax(z_t/T) ‖ softmax(z_s/T))"""
    return soft_kl_probs(student_logits, F.softmax(teacher_logits.float() / temperature, dim=-1), temperature)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """mean_{b,c} (z_s − z_t)²"""
    return F.mse_loss(student_logits.float(), teacher_logits.float())


def averaged_teacher_probs(teacher_logits: Sequence[torch.Tensor], temperature: float,
                           weights: Sequence[float] | None = None) -> torch.Tensor:
    """Σ_k w_k softmax(z_k/T) / Σ_k w_k (one target from several teachers)"""
    w = normalized_weights(len(teacher_logits), weights)
    return sum(wk * F.softmax(z.float() / temperature, dim=-1) for wk, z in zip(w, teacher_logits))


def averaged_teacher_logits(teacher_logits: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """Σ_k w_k z_k / Σ_k w_k (the MSE target from several teachers)"""
    w = normalized_weights(len(teacher_logits), weights)
    return sum(wk * z.float() for wk, z in zip(w, teacher_logits))


def pkd_loss(student_cls: torch.Tensor, teacher_cls: torch.Tensor) -> torch.Tensor:
    """mean_{b,l} ‖h_s/‖h_s‖ − h_t/‖h_t‖‖² over [CLS] states shaped (B, layers, H)"""
    s = F.normalize(student_cls.float(), p=2, dim=-1)
    t = F.normalize(teacher_cls.float(), p=2, dim=-1)
    return (s - t).pow(2).sum(dim=-1).mean()


def weighted_sum(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ_name weights[name] · terms[name] (terms with weight 0 are skipped)"""
    total = None
    for name, value in terms.items():
        w = weights.get(name, 0.0)
        if w == 0:
            continue
        total = w * value if total is None else total + w * value
    if total is None:
        raise ValueError("no loss term has a non-zero weight")
    return total


def normalized_weights(n: int, weights: Sequence[float] | None) -> list[float]:
    """w_k / Σ_j w_j (uniform 1/n when no weights are given)."""
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} teachers")
    s = sum(w)
    return [x / s for x in w]


def _token_mask(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(B, T) float mask of real tokens (all ones when no mask is given)."""
    if mask is None:
        return torch.ones(like.shape[:2], dtype=torch.float32, device=like.device)
    return mask.float()


def hidden_mse(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_{b,t} m_bt ‖h_s − h_t‖² / (H · Σ_{b,t} m_bt) over all tokens (TinyBERT; h_s already projected)"""
    m = _token_mask(mask, student_hidden)
    diff = (student_hidden.float() - teacher_hidden.float()).pow(2).sum(-1)
    return (diff * m).sum() / (m.sum().clamp_min(1) * student_hidden.shape[-1])


def attention_mse(student_attn: torch.Tensor, teacher_attn: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_{b,a,i,j} m_bi m_bj (A_s − A_t)² / (heads · Σ_b (Σ_i m_bi)²) over attention maps (B, heads, T, T)"""
    m = _token_mask(mask, student_attn[:, 0])
    pair = m[:, None, :, None] * m[:, None, None, :]
    diff = (student_attn.float() - teacher_attn.float()).pow(2) * pair
    return diff.sum() / (pair.sum().clamp_min(1) * student_attn.shape[1])


def relation_log_probs(x: torch.Tensor, y: torch.Tensor, heads: int,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """log softmax_j(x_r,i · y_r,j / √d_r) per relation head r, x and y (B, T, H) split into `heads` parts of d_r = H/heads"""
    batch, length, width = x.shape
    if width % heads:
        raise ValueError(f"width {width} is not divisible by {heads} relation heads")
    d = width // heads
    xr = x.float().view(batch, length, heads, d).transpose(1, 2)
    yr = y.float().view(batch, length, heads, d).transpose(1, 2)
    scores = xr @ yr.transpose(-1, -2) / d ** 0.5
    if mask is not None:
        scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def relation_kl(student_log_probs: torch.Tensor, teacher_log_probs: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """mean over real query tokens i and heads r of KL(P_t[r,i] ‖ P_s[r,i]) = Σ_j P_t (log P_t − log P_s) (MiniLM)"""
    p = teacher_log_probs.exp()
    kl = (p * (teacher_log_probs - student_log_probs)).sum(-1)  # (B, heads, T)
    m = _token_mask(mask, kl[:, 0])[:, None, :].expand_as(kl)
    return (kl * m).sum() / m.sum().clamp_min(1)


# -- one relevance score per candidate (score heads, ranking terms) ------------------------------------------

def pointwise_bce(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """mean_b −[y log σ(s) + (1−y) log(1−σ(s))] for scores s (B,) and 0/1 relevance y"""
    return F.binary_cross_entropy_with_logits(scores.float(), relevant.float())


def score_kl(student_scores: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · mean_b KL(Bern(p_t) ‖ Bern(σ(s/T))), p_t = σ(t/T) (the 2-class KL of logit differences)"""
    log_q1 = F.logsigmoid(student_scores.float() / temperature)
    log_q0 = F.logsigmoid(-student_scores.float() / temperature)
    p = teacher_probs.float()
    kl = torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p) - p * log_q1 - (1 - p) * log_q0
    return temperature ** 2 * kl.mean()


def _group_masks(groups: torch.Tensor) -> torch.Tensor:
    """(Q, B) boolean membership of each row in each distinct query of the batch."""
    ids = torch.unique(groups)
    return groups[None, :] == ids[:, None]


def _masked_log_softmax(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """log softmax of ``values`` (B,) within each query's row of ``masks`` (Q, B); 0 outside the query."""
    filled = values[None, :].expand(masks.shape).masked_fill(~masks, float("-inf"))
    return torch.log_softmax(filled, dim=-1).masked_fill(~masks, 0.0)


def _zero(like: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph (a batch with no query to score still backpropagates)."""
    return like.float().sum() * 0.0


def listwise_kd(student_scores: torch.Tensor, teacher_scores: torch.Tensor, groups: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """T² · mean_q KL(softmax(t_q/T) ‖ softmax(s_q/T)) over the candidates of each query q with ≥ 2 in the batch"""
    masks = _group_masks(groups)
    masks = masks[masks.sum(-1) >= 2]
    if len(masks) == 0:
        return _zero(student_scores)
    log_q = _masked_log_softmax(student_scores.float() / temperature, masks)
    log_p = _masked_log_softmax(teacher_scores.float() / temperature, masks)
    kl = (log_p.exp() * (log_p - log_q)).masked_fill(~masks, 0.0).sum(-1)
    return temperature ** 2 * kl.mean()


def margin_mse(student_scores: torch.Tensor, teacher_scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """mean over pairs (i, j) of one query with t_i > t_j of ((s_i − s_j) − (t_i − t_j))² (Margin-MSE)"""
    s, t = student_scores.float(), teacher_scores.float()
    pairs = (groups[:, None] == groups[None, :]) & (t[:, None] > t[None, :])
    if not pairs.any():
        return _zero(s)
    diff = (s[:, None] - s[None, :]) - (t[:, None] - t[None, :])
    return diff[pairs].pow(2).mean()


def listwise_ce(scores: torch.Tensor, relevant: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """mean_q −Σ_{i∈q} (y_i / Σ_{j∈q} y_j) log softmax(s_q)_i over queries q with a relevant candidate"""
    masks = _group_masks(groups)
    y = relevant.float()[None, :] * masks
    keep = y.sum(-1) > 0
    if not keep.any():
        return _zero(scores)
    masks, y = masks[keep], y[keep]
    log_p = _masked_log_softmax(scores.float(), masks)
    return (-(y / y.sum(-1, keepdim=True)) * log_p).sum(-1).mean()
