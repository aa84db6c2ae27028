"""Tokenization of (pairs of) texts with truncation, dynamic padding and length-grouped batching."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from bertdistill.data.sources import TaskData
from bertdistill.errors import UserError
from bertdistill.families.base import ALL_INPUTS as MODEL_INPUTS  # every input a model may read, in order


def check_max_length(tokenizer, config, max_length: int) -> None:
    """Refuse a max length the model cannot embed (position embeddings) or that is not positive."""
    if max_length < 8:
        raise UserError(f"--max-length {max_length} is too small", None, "use at least 8 (128 is typical)")
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise UserError(f"--max-length {max_length} is above the model's {limit} positions", None,
                        f"use --max-length {limit} or less")


def encode_texts(tokenizer, text_a: Sequence[str], text_b: Sequence[str] | None, max_length: int,
                 input_names: Sequence[str] = MODEL_INPUTS) -> dict:
    """Tokenize without padding; pairs are truncated longest-first to ``max_length``. Only ``input_names``
    are kept: token types only for a model that reads them (``bertdistill.families.input_names``)."""
    enc = tokenizer(list(text_a), list(text_b) if text_b is not None else None, truncation=True,
                    max_length=max_length, padding=False,
                    return_token_type_ids="token_type_ids" in input_names)
    return {k: enc[k] for k in MODEL_INPUTS if k in enc and k in input_names}


def encode_task(tokenizer, data: TaskData, max_length: int, batch_size: int = 2_000,
                input_names: Sequence[str] = MODEL_INPUTS):
    """Tokenized ``datasets.Dataset`` with model inputs, ``length`` and (if labeled) ``label``."""

    def _encode(batch: dict[str, list]) -> dict:
        enc = encode_texts(tokenizer, list(batch["text_a"]),
                           list(batch["text_b"]) if "text_b" in batch else None, max_length, input_names)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    drop = [c for c in ("text_a", "text_b", "group") if c in data.dataset.column_names]
    return data.dataset.map(_encode, batched=True, batch_size=batch_size, remove_columns=drop,
                            desc=None, load_from_cache_file=False)


def pad_batch(features: list[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad model inputs to the longest example; stack every other field as a tensor."""
    longest = max(len(f["input_ids"]) for f in features)
    out: dict[str, torch.Tensor] = {}
    for key in MODEL_INPUTS:
        if key not in features[0]:
            continue
        pad = pad_token_id if key == "input_ids" else 0
        out[key] = torch.tensor([list(f[key]) + [pad] * (longest - len(f[key])) for f in features],
                                dtype=torch.long)
    for key in features[0]:
        if key in MODEL_INPUTS or key == "length":
            continue
        values = [f[key] for f in features]
        out[key] = torch.as_tensor(np.asarray(values))
    return out


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int,
                           mega_factor: int = 50) -> list[list[int]]:
    """Shuffled batches of similar-length examples (less padding), reproducible from ``seed``.

    Indices are shuffled, cut into mega-batches of ``batch_size * mega_factor``, each sorted by
    length, cut into batches, and the batch order is shuffled again.
    """
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1", None, "use --batch-size 1 or more")
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    mega = batch_size * mega_factor
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        block = order[start:start + mega]
        block = block[np.argsort(-lengths[block], kind="stable")]
        batches.extend(block[i:i + batch_size].tolist() for i in range(0, len(block), batch_size))
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def query_grouped_batches(groups: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of whole query groups, packed up to ``batch_size`` rows, reproducible from ``seed``.

    Queries are visited in a seeded random order; a query with more candidates than a batch is shuffled
    and cut into lists of at most ``batch_size``. Each list goes into the current batch when it fits,
    else it starts the next one, so no query is split across batches unless it is larger than a batch.
    """
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1", None, "use --batch-size 1 or more")
    rng = np.random.default_rng(seed)
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]]) if len(order) else np.array([], int)
    members = np.split(order, starts[1:]) if len(order) else []
    lists: list[np.ndarray] = []
    for q in rng.permutation(len(members)):
        rows = members[q]
        if len(rows) > batch_size:
            rows = rng.permutation(rows)
            lists.extend(rows[i:i + batch_size] for i in range(0, len(rows), batch_size))
        else:
            lists.append(rows)
    batches: list[list[int]] = []
    current: list[int] = []
    for rows in lists:
        if current and len(current) + len(rows) > batch_size:
            batches.append(current)
            current = []
        current.extend(int(i) for i in rows)
    if current:
        batches.append(current)
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Inference batches in decreasing length order; callers put results back by index."""
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1", None, "use --batch-size 1 or more")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
