"""Task metrics: accuracy, F1, and per-query MAP and MRR for ranking data.

Ranking follows the WikiQA convention: queries without any correct candidate are left out of MAP
and MRR (they have no rank to score); the number left out is reported.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

POSITIVE_NAMES = ("1", "true", "yes", "positive", "relevant", "entailment", "paraphrase")


def positive_label_index(label_names: Sequence[str]) -> int:
    """Index of the 'relevant' class for binary tasks (e.g. "1", "entailment"); 1 by default."""
    for i, name in enumerate(label_names):
        if str(name).lower() in POSITIVE_NAMES:
            return i
    return 1 if len(label_names) > 1 else 0


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def probabilities(logits: np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """(n, labels) probabilities: softmax of class logits; for one score logit, σ(s) for the relevant label."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] != 1:
        return softmax(logits)
    if len(label_names) != 2:
        raise ValueError(f"a score (1 logit) needs 2 labels, got {list(label_names)}")
    pos = positive_label_index(label_names)
    p = sigmoid(logits[:, 0])
    out = np.empty((len(p), 2))
    out[:, pos], out[:, 1 - pos] = p, 1 - p
    return out


def predicted_ids(logits: np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """Predicted label ids: argmax of class logits; for a score, the relevant label when s > 0."""
    logits = np.asarray(logits)
    if logits.shape[-1] != 1:
        return logits.argmax(axis=-1)
    pos = positive_label_index(label_names)
    return np.where(logits[:, 0] > 0, pos, 1 - pos)


def relevance_scores(logits: np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """What ranks candidates: the score of a 1-logit head, else z_pos − z_other (monotone in P(positive))."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        return logits[:, 0]
    pos = positive_label_index(label_names)
    if logits.shape[-1] == 2:
        return logits[:, pos] - logits[:, 1 - pos]
    return softmax(logits)[:, pos]


def _check_lengths(labels: np.ndarray, preds: np.ndarray) -> None:
    # numpy would broadcast or compare element-wise to False; a silent wrong score is worse.
    if len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels but {len(preds)} predictions")


def accuracy(labels: Sequence[int], preds: Sequence[int]) -> float:
    """Fraction of predictions equal to the gold label."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    _check_lengths(labels, preds)
    return float((labels == preds).mean()) if len(labels) else 0.0


def f1_binary(labels: Sequence[int], preds: Sequence[int], positive: int = 1) -> float:
    """F1 = 2PR/(P+R) of the positive class."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    _check_lengths(labels, preds)
    tp = int(((preds == positive) & (labels == positive)).sum())
    fp = int(((preds == positive) & (labels != positive)).sum())
    fn = int(((preds != positive) & (labels == positive)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def f1_macro(labels: Sequence[int], preds: Sequence[int], num_labels: int) -> float:
    """Mean over classes of the per-class F1."""
    return float(np.mean([f1_binary(labels, preds, c) for c in range(num_labels)]))


def average_precision(relevant_sorted: Sequence[bool]) -> float:
    """Mean of precision@k over the ranks k of the relevant candidates."""
    hits, total = 0, 0.0
    for k, rel in enumerate(relevant_sorted, 1):
        if rel:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


def reciprocal_rank(relevant_sorted: Sequence[bool]) -> float:
    """1 / rank of the first relevant candidate."""
    for k, rel in enumerate(relevant_sorted, 1):
        if rel:
            return 1.0 / k
    return 0.0


def map_mrr(groups: Sequence, labels: Sequence[int], scores: Sequence[float], positive: int = 1) -> dict:
    """MAP and MRR over queries with at least one relevant candidate (ties keep input order)."""
    if not len(groups) == len(labels) == len(scores):  # a silent truncation would be a wrong score
        raise ValueError(f"{len(groups)} groups, {len(labels)} labels, {len(scores)} scores")
    n = len(labels)
    if n == 0:
        return {"map": 0.0, "mrr": 0.0, "queries_scored": 0, "queries_without_positive": 0}
    # Vectorized (a few arrays of n numbers, no Python object per row): label runs score millions of rows.
    codes = _group_codes(groups)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((np.arange(n), -scores, codes))  # by group, best score first, ties in input order
    relevant = (np.asarray(labels) == positive)[order]
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, sizes) + 1  # 1-based rank within the query
    cumulative = np.cumsum(relevant)
    hits_at = cumulative - np.repeat(cumulative[starts] - relevant[starts], sizes)  # relevant at ranks <= k
    hits = np.add.reduceat(relevant.astype(np.int64), starts)
    precision_sum = np.add.reduceat(np.where(relevant, hits_at / rank, 0.0), starts)
    first_hit_rank = np.minimum.reduceat(np.where(relevant, rank, n + 1), starts)
    scored = hits > 0
    aps = precision_sum[scored] / hits[scored]
    rrs = 1.0 / first_hit_rank[scored]
    return {"map": float(aps.mean()) if len(aps) else 0.0, "mrr": float(rrs.mean()) if len(rrs) else 0.0,
            "queries_scored": int(scored.sum()), "queries_without_positive": int((~scored).sum())}


def _group_codes(groups: Sequence) -> np.ndarray:
    """Groups as integer codes (any hashable ids: strings, numbers)."""
    try:
        array = np.asarray(groups)
    except ValueError:  # ragged tuples and the like
        array = None
    if array is not None and array.ndim == 1 and array.dtype.kind in "iu":
        return array
    if array is not None and array.ndim == 1 and array.dtype.kind in "USfb":
        return np.unique(array, return_inverse=True)[1].reshape(-1)
    index: dict = {}  # other Python objects: numpy cannot sort them, a dict can number them
    return np.fromiter((index.setdefault(g, len(index)) for g in groups), dtype=np.int64, count=len(groups))


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64)
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    return (first_rank + (counts - 1) / 2.0)[inverse.reshape(-1)]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's ρ: the Pearson correlation of the (tie-averaged) ranks of a and b; 0 if either is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    _check_lengths(ra, rb)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def compute_metrics(kind: str, label_names: Sequence[str], labels: Sequence[int], logits: np.ndarray,
                    groups: Sequence | None = None) -> dict:
    """All metrics of a task kind from logits: accuracy, F1 (binary or macro), MAP/MRR for ranking."""
    logits = np.asarray(logits, dtype=np.float64)
    preds = predicted_ids(logits, label_names)
    out = {"accuracy": accuracy(labels, preds)}
    if len(label_names) == 2:
        out["f1"] = f1_binary(labels, preds, positive_label_index(label_names))
    else:
        out["f1_macro"] = f1_macro(labels, preds, len(label_names))
    if kind == "ranking" and groups is not None:
        pos = positive_label_index(label_names)
        scores = relevance_scores(logits, label_names) if logits.shape[-1] == 1 else softmax(logits)[:, pos]
        out.update(map_mrr(groups, labels, scores, pos))
    return out


def main_metric(kind: str, label_names: Sequence[str]) -> str:
    """The metric a task is judged by: MAP for ranking, accuracy otherwise (as GLUE's RTE/QNLI/SST-2)."""
    if kind == "ranking":
        return "map"
    return "accuracy"
