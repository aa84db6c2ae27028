"""The on-disk layout of a label store, shared by its writer (``teachers.writer``) and reader (``teachers.store``).

A store directory::

    meta.json            format, version, num_rows, label_names, max_length, data fingerprint,
                         teachers [{name, path, weights_sha256, tokenizer, num_layers, hidden_size,
                         stored_layers, metrics}], shards [{name, start, rows}], config
    shards/shard-00000/  a ``datasets`` Arrow directory (save_to_disk) plus ``.checksums.json``: columns
                         row (int64), logits_<t> (float32[C]) and, when layers are stored,
                         cls_<t> (float16[len(stored_layers), hidden_size]) for teacher index t
    .complete            completion marker; a store without it is unfinished

Each shard's entry in meta.json carries ``files``: {file name: {size, sha256}} of the shard's files
(the same as the shard's ``.checksums.json``, written with it). The reader checks on open that the
shard folders on disk are exactly those listed, that the rows add up to ``num_rows`` in order, and
that every file has its size and sha256 (measured on 20k rows: +0.06 s for logits only, +0.5 s for
the 185 MB of a store with 6 [CLS] layers of width 768); a resumed ``label`` run adopts a
finished shard only when its checksums match. Stores written before checksums existed (no
``files``) still open, with the row checks only.

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


CHECKSUMS_FILE = ".checksums.json"


def store_meta(num_rows: int, plan: Sequence[ShardSpan], fields: dict[str, Any],
               checksums: Sequence[dict | None] | None = None) -> dict[str, Any]:
    """meta.json: format, version and row count, the caller's ``fields``, then the shard list (with each
    shard's file checksums when given)."""
    shards = []
    for k, s in enumerate(plan):
        entry: dict[str, Any] = {"name": s.name, "start": s.start, "rows": s.rows}
        if checksums is not None and checksums[k] is not None:
            entry["files"] = checksums[k]
        shards.append(entry)
    return {"format": STORE_FORMAT, "version": STORE_VERSION, "num_rows": num_rows, **fields, "shards": shards}


def shard_checksums(shard_dir: str | Path) -> dict[str, dict[str, Any]]:
    """{file name: {size, sha256}} of a shard's files (hidden files, the checksum file among them, left out)."""
    import hashlib

    out = {}
    for path in sorted(Path(shard_dir).iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        out[path.name] = {"size": path.stat().st_size, "sha256": digest.hexdigest()}
    return out


def shard_problem(shard_dir: str | Path, expected: dict[str, dict[str, Any]], full: bool = True) -> str | None:
    """What is wrong with a shard's files against ``expected`` checksums (None when they match).

    Sizes and the file list are checked first (a stat per file); ``full`` also compares sha256.
    """
    shard_dir = Path(shard_dir)
    if not shard_dir.is_dir():
        return "is missing"
    present = {p.name for p in shard_dir.iterdir() if not p.name.startswith(".") and p.is_file()}
    if present != set(expected):
        gone, extra = sorted(set(expected) - present), sorted(present - set(expected))
        return f"files differ from meta.json (missing {gone or 'none'}, unexpected {extra or 'none'})"
    for name, info in expected.items():
        if (shard_dir / name).stat().st_size != info.get("size"):
            return f"file {name} has {(shard_dir / name).stat().st_size} bytes, meta.json says {info.get('size')}"
    if full:
        actual = shard_checksums(shard_dir)
        for name, info in expected.items():
            if actual[name]["sha256"] != info.get("sha256"):
                return f"file {name} fails its checksum (changed or damaged)"
    return None


def shard_features(num_labels: int, hidden_shapes: Sequence[tuple[int, int] | None]) -> datasets.Features:
    """Arrow schema of a shard: row, logits_<t> and optional cls_<t> per teacher."""
    feats: dict[str, Any] = {"row": datasets.Value("int64")}
    for t, shape in enumerate(hidden_shapes):
        feats[f"logits_{t}"] = datasets.Sequence(datasets.Value("float32"), length=num_labels)
        if shape is not None:
            feats[f"cls_{t}"] = datasets.Array2D(shape=tuple(shape), dtype="float16")
    return datasets.Features(feats)
