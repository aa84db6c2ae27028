"""Task metrics: accuracy, F1, and per-query MAP and MRR for ranking data.

Ranking follows the WikiQA convention: queries without any correct candidate are left out of MAP
and MRR (they have no rank to score); the number left out is reported.
"""

from __future__ import annotations

from collections import defaultdict
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


def _groups(groups: Sequence, labels: Sequence[int], scores: Sequence[float], positive: int):
    by_group: dict = defaultdict(list)
    for g, y, s in zip(groups, labels, scores):
        by_group[g].append((float(s), int(y) == positive))
    return by_group


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
    if not len(groups) == len(labels) == len(scores):  # zip() would silently drop the tail
        raise ValueError(f"{len(groups)} groups, {len(labels)} labels, {len(scores)} scores")
    aps, rrs, skipped = [], [], 0
    for items in _groups(groups, labels, scores, positive).values():
        if not any(rel for _, rel in items):
            skipped += 1
            continue
        order = sorted(range(len(items)), key=lambda i: -items[i][0])  # stable: ties keep order
        ranked = [items[i][1] for i in order]
        aps.append(average_precision(ranked))
        rrs.append(reciprocal_rank(ranked))
    return {"map": float(np.mean(aps)) if aps else 0.0, "mrr": float(np.mean(rrs)) if rrs else 0.0,
            "queries_scored": len(aps), "queries_without_positive": skipped}


def compute_metrics(kind: str, label_names: Sequence[str], labels: Sequence[int], logits: np.ndarray,
                    groups: Sequence | None = None) -> dict:
    """All metrics of a task kind from logits: accuracy, F1 (binary or macro), MAP/MRR for ranking."""
    logits = np.asarray(logits, dtype=np.float64)
    preds = logits.argmax(axis=-1)
    out = {"accuracy": accuracy(labels, preds)}
    if len(label_names) == 2:
        out["f1"] = f1_binary(labels, preds, positive_label_index(label_names))
    else:
        out["f1_macro"] = f1_macro(labels, preds, len(label_names))
    if kind == "ranking" and groups is not None:
        pos = positive_label_index(label_names)
        out.update(map_mrr(groups, labels, softmax(logits)[:, pos], pos))
    return out


def main_metric(kind: str, label_names: Sequence[str]) -> str:
    """The metric a task is judged by: MAP for ranking, accuracy otherwise (as GLUE's RTE/QNLI/SST-2)."""
    if kind == "ranking":
        return "map"
    return "accuracy"
