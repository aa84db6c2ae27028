"""Encoded rows and the padded batches every inference path feeds a model (label, predict, bench, export).

Rows are tokenized in chunks into one compact int32 array per row and input (a tokenizer's full
output for a large shard — Python ints, offsets, token strings — would cost hundreds of MB), and
padded on demand into int64 batches: in length-sorted order for scoring (less padding; callers put
results back by index), or in the order asked for (timing, parity on generated inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from bertdistill.data.tokenize import MODEL_INPUTS, encode_texts, sorted_batches

Batch = dict[str, np.ndarray]
"""Model inputs of one batch: int64 arrays (rows, tokens), attention mask 0 on padding."""


@dataclass
class EncodedRows:
    """Token arrays of many rows: ``tokens[input][row]`` (int32) and the length of each row."""

    tokens: dict[str, list[np.ndarray]]
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    def padded(self, idx: Sequence[int], pad_token_id: int, length: int | None = None) -> Batch:
        """Rows ``idx`` padded to their longest (or to ``length``), as int64 arrays."""
        width = int(self.lengths[list(idx)].max()) if length is None else length
        out = {}
        for key, rows in self.tokens.items():
            arr = np.full((len(idx), width), pad_token_id if key == "input_ids" else 0, dtype=np.int64)
            for j, i in enumerate(idx):
                arr[j, :self.lengths[i]] = rows[i]
            out[key] = arr
        return out

    def sorted_batches(self, batch_size: int, pad_token_id: int) -> Iterator[tuple[list[int], Batch]]:
        """(row indices, padded batch) in decreasing length order."""
        for idx in sorted_batches(self.lengths, batch_size):
            yield idx, self.padded(idx, pad_token_id)


def encode_rows(tokenizer, text_a: Sequence[str], text_b: Sequence[str] | None, max_length: int,
                input_names: Sequence[str] = MODEL_INPUTS, chunk: int = 1_000) -> EncodedRows:
    """Tokenize (pairs truncated longest-first to ``max_length``), keeping only ``input_names``."""
    tokens: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(text_a), chunk):
        enc = encode_texts(tokenizer, text_a[start:start + chunk],
                           None if text_b is None else text_b[start:start + chunk], max_length, input_names)
        for key, rows in enc.items():
            if key in input_names:
                tokens.setdefault(key, []).extend(np.asarray(r, dtype=np.int32) for r in rows)
        del enc
    lengths = np.fromiter((len(r) for r in tokens.get("input_ids", [])), dtype=np.int64, count=len(text_a))
    return EncodedRows(tokens, lengths)


def tokenize_batch(tokenizer, text_a: list[str], text_b: list[str] | None, max_length: int,
                   pad_to: int | None = None) -> Batch:
    """One batch in the given order, padded to its longest example (or truncated and padded to ``pad_to``)."""
    rows = encode_rows(tokenizer, text_a, text_b, max_length if pad_to is None else pad_to)
    return rows.padded(range(len(rows)), tokenizer.pad_token_id or 0, length=pad_to)
