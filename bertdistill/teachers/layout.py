"""The on-disk layout of a label store, shared by its writer (``teachers.writer``) and reader (``teachers.store``).

A store directory::

    meta.json            format, version, num_rows, label_names, max_length, data fingerprint,
                         teachers [{name, path, weights_sha256, tokenizer, num_layers, hidden_size,
                         stored_layers, metrics, columns {logits, cls}}], shards [{name, start, rows}], config
    shards/shard-00000/  a ``datasets`` Arrow directory (save_to_disk) plus ``.checksums.json``: columns
                         row (int64), logits_<name> (float32[C]) and, when layers are stored,
                         cls_<name> (float16[len(stored_layers), hidden_size]) for the teacher called name
    dataset_info.json    the root as one ``datasets`` Dataset: ``datasets.load_from_disk(store)`` reads
    state.json           every shard's Arrow file in order (relative paths into shards/; no data copied)
    .complete            completion marker; a store without it is unfinished

Version 1 stores (written before version 2) name the columns by teacher index (logits_<t>, cls_<t>),
have no ``columns`` per teacher and no root dataset files: ``LabelStore`` reads both through
``logits_column``/``cls_column``, and ``LabelStore.to_dataset()`` gives either as one Dataset with
teacher-named columns.

Each shard's entry in meta.json carries ``files``: {file name: {size, sha256}} of the shard's files
(the same as the shard's ``.checksums.json``, written with it). The reader checks on open that the
shard folders on disk are exactly those listed, that the rows add up to ``num_rows`` in order, and
that every file has its size and sha256 (measured on 20k rows: +0.06 s for logits only, +0.5 s for
the 185 MB of a store with 6 [CLS] layers of width 768); a resumed ``label`` run adopts a
finished shard only when its checksums match. A shard without ``files`` in meta.json is refused (the
checks cannot be switched off by editing meta.json; stores written before checksums existed must be
labeled again), and so is one whose ``files`` differ from the shard's own ``.checksums.json``.

While it is written the store is ``<output>.partial/`` with ``progress.json`` (the resume key) and
shards saved under ``shards/.shard-NNNNN.tmp-<pid>`` then renamed, so a shard directory that exists
is complete. Layers are numbered like ``hidden_states``: 1..num_layers (0 would be the embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import datasets

from bertdistill.io import file_sha256

STORE_FORMAT = "bertdistill-label-store"
STORE_VERSION = 2
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
    out = {}
    for path in sorted(Path(shard_dir).iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        out[path.name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
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


def logits_column(teacher: str) -> str:
    """The column of the teacher called ``teacher``'s logits (stores of version 2 on)."""
    return f"logits_{teacher}"


def cls_column(teacher: str) -> str:
    """The column of the teacher called ``teacher``'s stored [CLS] states (stores of version 2 on)."""
    return f"cls_{teacher}"


def shard_features(num_labels: int, hidden_shapes: Sequence[tuple[int, int] | None],
                   teachers: Sequence[str]) -> datasets.Features:
    """Arrow schema of a shard: row, logits_<name> and optional cls_<name> per teacher."""
    feats: dict[str, Any] = {"row": datasets.Value("int64")}
    for name, shape in zip(teachers, hidden_shapes, strict=True):
        feats[logits_column(name)] = datasets.Sequence(datasets.Value("float32"), length=num_labels)
        if shape is not None:
            feats[cls_column(name)] = datasets.Array2D(shape=tuple(shape), dtype="float16")
    return datasets.Features(feats)


ROOT_STATE = "state.json"  # datasets' file names (datasets.config.DATASET_STATE_JSON_FILENAME, ...)
ROOT_INFO = "dataset_info.json"


def root_state(store: str | Path, shard_names: Sequence[str]) -> dict[str, Any]:
    """The root's state.json: the shards' own state with every shard's Arrow files, in order, as paths
    relative to the root (``datasets.load_from_disk`` joins them to the directory it is given)."""
    import hashlib
    import json

    store = Path(store)
    states = [json.loads((store / SHARDS_DIR / name / ROOT_STATE).read_text(encoding="utf-8")) for name in shard_names]
    files = [{"filename": f"{SHARDS_DIR}/{name}/{f['filename']}"}
             for name, state in zip(shard_names, states) for f in state["_data_files"]]
    fingerprint = hashlib.sha256("".join(s["_fingerprint"] for s in states).encode()).hexdigest()[:16]
    return {**states[0], "_data_files": files, "_fingerprint": fingerprint, "_split": None}


def write_root_dataset(store: str | Path, shard_names: Sequence[str]) -> None:
    """Make the store root loadable with ``datasets.load_from_disk``: its state.json lists the shards'
    Arrow files and its dataset_info.json is the shards' (they share one schema)."""
    import json

    store = Path(store)
    state = root_state(store, shard_names)
    info = (store / SHARDS_DIR / shard_names[0] / ROOT_INFO).read_text(encoding="utf-8")
    (store / ROOT_INFO).write_text(info, encoding="utf-8")
    (store / ROOT_STATE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def root_dataset_problem(store: str | Path, shard_names: Sequence[str]) -> str | None:
    """What is wrong with the root's dataset files (None when they list exactly the shards' Arrow files)."""
    import json

    store = Path(store)
    try:
        listed = json.loads((store / ROOT_STATE).read_text(encoding="utf-8"))["_data_files"]
        (store / ROOT_INFO).stat()
        want = root_state(store, shard_names)["_data_files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its root {ROOT_STATE} or {ROOT_INFO} is missing or damaged"
    if listed != want:
        return f"its root {ROOT_STATE} does not list the shards' Arrow files (edited?)"
    return None
