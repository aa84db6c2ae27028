"""The data side of a run: tokenized rows and the padded batches each step and evaluation reads.

``TrainSet`` holds the student's inputs (and, for online teachers that tokenize differently, their own
inputs of the same rows), the ``row`` index into a label store and the labels; its batches are
length-grouped (or whole query groups for the ranking terms) and reproducible from seed + epoch.
``EvalSet`` is held-out rows with what is known about them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bertdistill.data.tokenize import MODEL_INPUTS, length_grouped_batches, pad_batch, query_grouped_batches
from bertdistill.errors import UserError
from bertdistill.io import column_array


@dataclass
class TrainSet:
    """Tokenized training rows (model inputs, ``row`` = index into the label store, optional ``label``)."""

    dataset: object
    pad_token_id: int
    teachers: object = None
    """A teacher source whose ``fetch(rows)`` adds per-row teacher targets to each batch (label stores)."""
    by_group: bool = False
    """Batches of whole query groups (ranking terms) instead of length-grouped batches."""
    teacher_pads: dict[str, int] | None = None
    """Teachers whose own tokenization of the rows is in ``teacher:NAME:INPUT`` columns → their pad id
    (default: the teacher source's ``own_inputs``); a batch carries them as ``teacher_inputs[NAME]``."""

    def __post_init__(self):
        self.lengths = column_array(self.dataset, "length")
        if self.teacher_pads is None:
            self.teacher_pads = dict(getattr(self.teachers, "own_inputs", None) or {})
        self._teacher_columns = {name: [c for c in self.dataset.column_names if c.startswith(f"teacher:{name}:")]
                                 for name in self.teacher_pads}
        missing = [name for name, cols in self._teacher_columns.items() if not cols]
        if missing:
            raise ValueError(f"no tokenized rows for teacher(s) {missing} in the training set")
        self._columns = [c for c in (*MODEL_INPUTS, "label", "row", "group") if c in self.dataset.column_names]
        self._all_columns = self._columns + [c for cols in self._teacher_columns.values() for c in cols]
        self.groups = column_array(self.dataset, "group") if "group" in self.dataset.column_names else None
        if self.by_group and self.groups is None:
            raise UserError("the ranking loss terms need query groups, but the training rows have none", None,
                            "give ranking data with a group (query id) column (--group-column)")
        self._view = self.dataset.select_columns(self._all_columns)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self, batch_size: int, seed: int) -> list[list[int]]:
        """One epoch's training batches, reproducible from ``seed`` (seed + epoch)."""
        if self.by_group:
            return query_grouped_batches(self.groups, batch_size, seed)
        return length_grouped_batches(self.lengths, batch_size, seed)

    def batch(self, indices: list[int]) -> dict:
        block = self._view[indices]
        features = [{k: block[k][i] for k in self._columns} for i in range(len(indices))]
        out = pad_batch(features, self.pad_token_id)
        if self._teacher_columns:
            out["teacher_inputs"] = {
                name: pad_batch([{c.rsplit(":", 1)[1]: block[c][i] for c in cols} for i in range(len(indices))],
                                self.teacher_pads[name])
                for name, cols in self._teacher_columns.items()}
        if self.teachers is not None:
            out.update(self.teachers.fetch(out["row"].numpy()))
        return out


@dataclass
class EvalSet:
    """Held-out rows with what is known about them: gold labels and/or the teachers' logits."""

    data: TrainSet
    kind: str
    label_names: list[str]
    labels: np.ndarray | None = None
    groups: list | None = None
    teacher_logits: list[np.ndarray] | None = None
    name: str = "eval"
    """``dev`` for rows held out of the training data."""
