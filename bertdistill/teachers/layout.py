"""The on-disk layout of a label store, shared by its writer (``teachers.writer``) and reader (``teachers.store``).

A store directory::

    meta.json            format, version, num_rows, label_names, max_length, data fingerprint,
                         teachers [{name, path, weights_sha256, tokenizer, num_layers, hidden_size,
                         stored_layers, metrics}], shards [{name, start, rows}], config
    shards/shard-00000/  a ``datasets`` Arrow directory (save_to_disk): columns
                         row (int64), logits_<t> (float32[C]) and, when layers are stored,
                         cls_<t> (float16[len(stored_layers), hidden_size]) for teacher index t
    .complete            completion marker; a store without it is unfinished

While it is written the store is ``<output>.partial/`` with ``progress.json`` (the resume key) and
shards saved under ``shards/.shard-NNNNN.tmp-<pid>`` then renamed, so a shard directory that exists
is complete. Layers are numbered like ``hidden_states``: 1..num_layers (0 would be the embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import datasets

STORE_FORMAT = "bertdistill-label-store"
STORE_VERSION = 1
META_FILE = "meta.json"
SHARDS_DIR = "shards"
PROGRESS_FILE = "progress.json"
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class ShardSpan:
    """Shard ``index`` holds rows ``start``..``end`` (end excluded)."""

    index: int
    start: int
    end: int

    @property
    def rows(self) -> int:
        return self.end - self.start

    @property
    def name(self) -> str:
        return shard_name(self.index)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_plan(num_rows: int, shard_rows: int) -> list[ShardSpan]:
    """Consecutive shards of ``shard_rows`` rows (the last one shorter)."""
    return [ShardSpan(i, start, min(start + shard_rows, num_rows))
            for i, start in enumerate(range(0, num_rows, shard_rows))]


def partial_dir(output: str | Path) -> Path:
    """Where the store at ``output`` is built until it is complete."""
    output = Path(output)
    return output.with_name(output.name + PARTIAL_SUFFIX)


def store_meta(num_rows: int, plan: Sequence[ShardSpan], fields: dict[str, Any]) -> dict[str, Any]:
    """meta.json: format, version and row count, the caller's ``fields``, then the shard list."""
    return {"format": STORE_FORMAT, "version": STORE_VERSION, "num_rows": num_rows, **fields,
            "shards": [{"name": s.name, "start": s.start, "rows": s.rows} for s in plan]}


def shard_features(num_labels: int, hidden_shapes: Sequence[tuple[int, int] | None]) -> datasets.Features:
    """Arrow schema of a shard: row, logits_<t> and optional cls_<t> per teacher."""
    feats: dict[str, Any] = {"row": datasets.Value("int64")}
    for t, shape in enumerate(hidden_shapes):
        feats[f"logits_{t}"] = datasets.Sequence(datasets.Value("float32"), length=num_labels)
        if shape is not None:
            feats[f"cls_{t}"] = datasets.Array2D(shape=tuple(shape), dtype="float16")
    return datasets.Features(feats)
