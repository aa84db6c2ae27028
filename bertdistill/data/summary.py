"""``bertdistill data``: what a data set holds, before hours are spent on it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from bertdistill.data.sources import TaskData
from bertdistill.data.tokenize import encode_texts
from bertdistill.metrics import positive_label_index

PERCENTILES = (50, 90, 95, 99, 100)


def summarize(data: TaskData, tokenizer=None, max_length: int = 512, sample: int | None = None) -> dict[str, Any]:
    """Rows, label distribution, token-length percentiles (with a tokenizer), groups for ranking."""
    out: dict[str, Any] = {
        "source": data.spec.describe(),
        "kind": data.kind,
        "rows": data.num_rows,
        "columns": data.column_map,
        "dropped_rows": data.dropped,
        "label_names": data.label_names,
    }
    labels = data.column("label") if data.has_labels else None
    if labels is not None:
        counts = Counter(labels)
        out["label_counts"] = {data.label_names[i]: counts.get(i, 0) for i in range(len(data.label_names))}
    if data.has_groups:
        groups = data.column("group")
        sizes = Counter(groups)
        out["groups"] = len(sizes)
        out["candidates_per_group"] = {"mean": float(np.mean(list(sizes.values()))),
                                       "max": int(max(sizes.values()))}
        if data.has_labels:
            positive = positive_label_index(data.label_names)
            with_pos = {g for g, y in zip(groups, labels) if y == positive}
            out["groups_with_positive"] = len(with_pos)
    if tokenizer is not None:
        rows = data.dataset if sample is None else data.dataset.select(range(min(sample, data.num_rows)))
        lengths: list[int] = []
        for start in range(0, len(rows), 2_000):
            batch = rows[start:start + 2_000]
            enc = encode_texts(tokenizer, batch["text_a"], batch.get("text_b"), max_length)
            lengths.extend(len(x) for x in enc["input_ids"])
        arr = np.asarray(lengths)
        out["token_length"] = {f"p{p}": int(np.percentile(arr, p)) for p in PERCENTILES}
        out["token_length"]["truncated_at_max_length"] = int((arr >= max_length).sum())
        out["max_length"] = max_length
    return out

