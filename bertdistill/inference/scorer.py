"""A loaded model on one backend, and scoring many rows through length-sorted batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from bertdistill.data.sources import TaskData
from bertdistill.inference.batches import Batch, EncodedRows, encode_rows

Forward = Callable[[Batch, Sequence[int]], tuple[np.ndarray, "np.ndarray | None"]]
"""(batch, layers) → logits (n, C) float32 and, when layers are asked for, their [CLS] states
(n, len(layers), H) float16, else None. Layers are numbered like ``hidden_states`` (0 = embeddings)."""


@dataclass
class Scorer:
    """A model ready to compute logits (and, on backends that can, [CLS] states) for padded batches."""

    path: str
    backend: str
    tokenizer: Any
    label_names: list[str]
    config: Any
    input_names: tuple[str, ...]
    """Model inputs the model reads (DistilBERT, for one, takes no token_type_ids)."""
    forward: Forward
    torch_model: Any = None
    model_file: str | None = None
    """The one file the backend runs (an exported graph), when there is one; None for a model directory."""
    num_parameters: int | None = None
    device: str = "cpu"
    """Where it runs: ``cpu`` or ``cuda:N``."""

    def logits(self, batch: Batch) -> np.ndarray:
        return self.forward(batch, ())[0]

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def encode(self, text_a: Sequence[str], text_b: Sequence[str] | None, max_length: int) -> EncodedRows:
        return encode_rows(self.tokenizer, text_a, text_b, max_length, self.input_names)

    def size_on_disk(self) -> int:
        if self.model_file:
            return Path(self.model_file).stat().st_size
        p = Path(self.path)
        files = list(p.glob("*.safetensors")) or list(p.glob("*.bin"))
        return sum(f.stat().st_size for f in files)


def score_rows(scorer: Scorer, rows: EncodedRows, batch_size: int, layers: Sequence[int] = (),
               on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (n, C) float32 and [CLS] states of ``layers`` (n, L, H) float16 or None, in row order."""
    n = len(rows)
    logits: np.ndarray | None = None
    hidden: np.ndarray | None = None
    for idx, batch in rows.sorted_batches(batch_size, scorer.pad_token_id):
        lg, hd = scorer.forward(batch, layers)
        if logits is None:  # sized by what the model returns, which callers check against its labels
            logits = np.zeros((n, lg.shape[-1]), dtype=np.float32)
            hidden = None if hd is None else np.zeros((n, *hd.shape[1:]), dtype=np.float16)
        logits[idx] = lg
        if hidden is not None:
            hidden[idx] = hd
        if on_batch:
            on_batch(len(idx))
    if logits is None:  # no rows
        width = int(getattr(scorer.config, "hidden_size", 0) or 0)
        logits = np.zeros((0, len(scorer.label_names)), dtype=np.float32)
        hidden = np.zeros((0, len(layers), width), dtype=np.float16) if layers else None
    return logits, hidden


def predict_logits(scorer: Scorer, data: TaskData, max_length: int, batch_size: int,
                   on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Logits for every row, in the data's order, computed in length-sorted batches."""
    text_b = data.column("text_b") if data.has_text_b else None
    rows = scorer.encode(data.column("text_a"), text_b, max_length)
    return score_rows(scorer, rows, batch_size, on_batch=on_batch)[0]
