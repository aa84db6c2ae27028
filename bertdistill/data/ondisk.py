"""A data set kept on disk while it is used, for passes over corpora larger than memory (``label``).

The canonical rows are written once to an Arrow IPC file in a work folder and read back a range at a
time with plain file reads (not a memory map, whose touched pages would stay resident), so memory
holds one range of rows, not the data set. The content fingerprint is computed on the way in and
equals :meth:`TaskData.fingerprint` of the same data loaded in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bertdistill.data.sources import (ContentHasher, DataSpec, CanonicalStream, fingerprint_dict,
                                      one_candidate_per_group)

FILE_NAME = "rows.arrow"
BATCH_ROWS = 1024  # rows per stored record batch: the granularity of range reads


@dataclass
class OnDiskTaskData:
    """The canonical rows of ``spec`` in an Arrow file, with what ``label`` needs to know about them."""

    spec: DataSpec
    kind: str
    path: Path
    num_rows: int
    label_names: list[str]
    column_map: dict[str, str]
    dropped: int
    content_sha256: str
    group_codes: np.ndarray | None = None
    """Query group of each row as an integer code (ranking data), for per-query metrics."""
    _starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    @property
    def has_labels(self) -> bool:
        return "label" in self.column_map

    @property
    def has_text_b(self) -> bool:
        return "text_b" in self.column_map

    @property
    def has_groups(self) -> bool:
        return self.group_codes is not None

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint_dict(self.content_sha256, self.num_rows, self.spec, self.column_map)

    def rows(self, start: int, end: int, columns: list[str] | None = None) -> dict[str, list]:
        """Rows ``start``..``end`` as lists per column (labels as ids)."""
        table = self._read(start, end, columns)
        out = {name: table.column(name).to_pylist() for name in table.column_names if name != "label"}
        if "label" in table.column_names:
            out["label"] = self._label_ids(table.column("label")).tolist()
        return out

    def labels(self) -> np.ndarray:
        """Every row's label id, read a range at a time."""
        parts = [self._label_ids(self._read(s, min(s + 100 * BATCH_ROWS, self.num_rows), ["label"]).column("label"))
                 for s in range(0, self.num_rows, 100 * BATCH_ROWS)]
        return np.concatenate(parts)

    def _label_ids(self, raw) -> np.ndarray:
        ids = pc.index_in(raw, value_set=pa.array(self.label_names, type=pa.string()))
        return ids.to_numpy(zero_copy_only=False).astype(np.int64)

    def _read(self, start: int, end: int, columns: list[str] | None) -> pa.Table:
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, end, side="left"))
        with pa.OSFile(str(self.path)) as fh:
            reader = pa.ipc.open_file(fh)
            batches = [reader.get_batch(i) for i in range(first, last)]
        table = pa.Table.from_batches(batches, schema=reader.schema)
        if columns is not None:
            table = table.select(columns)
        return table.slice(start - int(self._starts[first]), end - start)


def load_task_data_on_disk(spec: DataSpec, workdir: str | Path,
                           label_names: list[str] | None = None) -> OnDiskTaskData:
    """Load ``spec`` like :func:`load_task_data`, keeping the rows in ``workdir`` instead of memory."""
    stream = CanonicalStream(spec, label_names)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    path = Path(workdir) / FILE_NAME
    hasher = ContentHasher()
    texts = [c for c in ("text_a", "text_b") if c in stream.column_map]
    groups: dict[str, int] | None = {} if "group" in stream.column_map else None
    codes: list[np.ndarray] = []
    starts: list[int] = []
    rows = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, stream.schema) as writer:
        for batch in stream:
            hasher.update(*(batch.column(c) for c in texts))
            if groups is not None:
                codes.append(_group_codes(batch.column("group"), groups))
            for part in pa.Table.from_batches([batch]).to_batches(max_chunksize=BATCH_ROWS):
                starts.append(rows)
                rows += part.num_rows
                writer.write_batch(part)
    stream.finish()
    group_codes = np.concatenate(codes) if groups is not None else None
    if groups is not None and len(groups) == rows:
        raise one_candidate_per_group(spec.describe())
    return OnDiskTaskData(spec, stream.kind, path, rows, stream.label_names, stream.column_map, stream.dropped,
                          hasher.hexdigest(), group_codes, np.asarray(starts, dtype=np.int64))


def _group_codes(column: pa.Array, codes: dict[str, int]) -> np.ndarray:
    """Integer codes of a batch's groups, consistent across batches (memory grows with groups, not rows)."""
    encoded = pc.dictionary_encode(column)
    local = [codes.setdefault(g, len(codes)) for g in encoded.dictionary.to_pylist()]
    return np.asarray(local, dtype=np.int32)[encoded.indices.to_numpy(zero_copy_only=False)]
