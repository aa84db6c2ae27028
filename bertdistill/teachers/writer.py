"""The one writer of label stores (layout in ``bertdistill.teachers.layout``).

A store is built in ``<output>.partial/`` shard by shard, each shard saved under a temporary name and
renamed. ``progress.json`` holds the resume key: a rerun with the same key keeps the finished shards,
another key refuses the partial directory unless ``overwrite``. ``publish`` writes meta.json and the
completion marker and renames the directory to ``<output>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import datasets
import numpy as np

from bertdistill.errors import UserError
from bertdistill.io import check_output_dir, publish_dir, read_json, to_jsonable, write_json
from bertdistill.teachers.layout import (CHECKSUMS_FILE, META_FILE, PROGRESS_FILE, SHARDS_DIR, ShardSpan, cls_column,
                                         logits_column, partial_dir, shard_checksums, shard_features, shard_plan,
                                         shard_problem, store_meta, write_root_dataset)


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(to_jsonable(key), sort_keys=True).encode()).hexdigest()


class StoreWriter:
    """Writes the label store at ``output`` through its partial directory; ``teachers`` names the
    teachers in order (their columns are logits_<name>, cls_<name>)."""

    def __init__(self, output: str | Path, teachers: Sequence[str]):
        self.output = Path(output)
        self.work = partial_dir(self.output)
        self.teachers = list(teachers)

    def start(self, key: dict, overwrite: bool) -> None:
        """Create the partial directory, or continue one made with the same ``key``."""
        digest = key_digest(key)
        if self.work.exists() and not self.matches(key):
            if not overwrite:
                raise UserError("an unfinished label store made by a different command is here", str(self.work),
                                "rerun the original command to finish it, or pass --overwrite to discard it")
            shutil.rmtree(self.work)
        shards = self.work / SHARDS_DIR
        shards.mkdir(parents=True, exist_ok=True)
        for leftover in shards.glob(".shard-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # a shard a killed run was still writing
        if not (self.work / PROGRESS_FILE).is_file():
            write_json(self.work / PROGRESS_FILE, {"key_sha256": digest, "key": key})

    def matches(self, key: dict) -> bool:
        """Whether the partial directory was started with ``key``."""
        progress = self.work / PROGRESS_FILE
        if not progress.is_file():
            return False
        with contextlib.suppress(UserError, KeyError, TypeError):
            return read_json(progress)["key_sha256"] == key_digest(key)
        return False

    def has_shard(self, span: ShardSpan) -> bool:
        """Whether shard ``span`` is written whole, passes its checksums and has this store's columns (a
        damaged shard, or one an older bertdistill wrote with index-named columns, is labeled again)."""
        path = self.work / SHARDS_DIR / span.name
        if not path.is_dir():
            return False
        checksums = self.shard_checksums(span)
        if checksums is not None and shard_problem(path, checksums) is not None:
            return False
        try:
            shard = datasets.Dataset.load_from_disk(str(path))
        except Exception:
            return False
        return len(shard) == span.rows and all(logits_column(t) in shard.column_names for t in self.teachers)

    def shard_checksums(self, span: ShardSpan) -> dict | None:
        """The checksums saved with shard ``span`` (None for a shard written before checksums existed)."""
        with contextlib.suppress(OSError, ValueError):
            return json.loads((self.work / SHARDS_DIR / span.name / CHECKSUMS_FILE).read_text(encoding="utf-8"))
        return None

    def write_shard(self, span: ShardSpan, logits: Sequence[np.ndarray], hidden: Sequence[np.ndarray | None]) -> None:
        """Save shard ``span`` (``logits[t]`` (n, C), ``hidden[t]`` (n, L, H) or None) under a temporary name, then rename it."""
        shard = shard_dataset(np.arange(span.start, span.end), logits, hidden, self.teachers)
        final = self.work / SHARDS_DIR / span.name
        tmp = self.work / SHARDS_DIR / f".{span.name}.tmp-{os.getpid()}"
        shard.save_to_disk(str(tmp))
        (tmp / CHECKSUMS_FILE).write_text(json.dumps(shard_checksums(tmp)) + "\n", encoding="utf-8")
        if final.exists():  # a damaged copy found on resume
            shutil.rmtree(final)
        os.replace(tmp, final)

    def check_shards(self, plan: Sequence[ShardSpan]) -> None:
        """A shard of ``plan`` missing after labeling is a user error."""
        for span in plan:
            if not self.has_shard(span):
                raise UserError(f"shard {span.name} is missing after labeling", str(self.work),
                                "run the same command again to label it")

    def read_column(self, plan: Sequence[ShardSpan], column: str, dtype=np.float32) -> np.ndarray:
        """``column`` of every shard of ``plan``, in row order (a missing shard is a user error). One shard is
        open at a time and its values are copied out: keeping every shard's memory map open would make
        resident memory grow with the rows (the pages each map touches count)."""
        self.check_shards(plan)
        parts = []
        for span in plan:
            shard = datasets.Dataset.load_from_disk(str(self.work / SHARDS_DIR / span.name)).with_format("numpy")
            parts.append(np.array(shard[column], dtype=dtype, copy=True))
            del shard
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def publish(self, num_rows: int, plan: Sequence[ShardSpan], fields: dict[str, Any]) -> Path:
        """Write meta.json (each teacher's entry gains its ``columns``), the root's dataset files and the
        completion marker, and rename the partial directory to the output."""
        checksums = [self.shard_checksums(span) for span in plan]
        present = datasets.Dataset.load_from_disk(str(self.work / SHARDS_DIR / plan[0].name)).column_names
        teachers = [{**info, "columns": {"logits": logits_column(name),
                                         "cls": cls_column(name) if cls_column(name) in present else None}}
                    for info, name in zip(fields["teachers"], self.teachers, strict=True)]
        write_root_dataset(self.work, [span.name for span in plan])
        write_json(self.work / META_FILE, store_meta(num_rows, plan, {**fields, "teachers": teachers}, checksums))
        publish_dir(self.work, self.output)
        # Removed only now: a run killed before the rename can still be resumed by the same command.
        (self.output / PROGRESS_FILE).unlink(missing_ok=True)
        return self.output

    def discard(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def shard_dataset(rows: np.ndarray, logits: Sequence[np.ndarray], hidden: Sequence[np.ndarray | None],
                  teachers: Sequence[str]) -> datasets.Dataset:
    """One shard as a Dataset: ``logits[t]`` is (n, C) and ``hidden[t]`` is (n, L, H) or None for the
    teacher called ``teachers[t]``.

    Arrow arrays are built straight from the numpy buffers: going through Python lists (as
    ``Dataset.from_dict`` does for Array2D) costs ~10 objects per float and hundreds of MB per shard.
    """
    import pyarrow as pa

    num_labels = logits[0].shape[1]
    shapes = [None if h is None else (h.shape[1], h.shape[2]) for h in hidden]
    features = shard_features(num_labels, shapes, teachers)
    n = len(rows)
    columns: dict[str, Any] = {"row": pa.array(np.asarray(rows, dtype=np.int64))}
    for name, lg, hd in zip(teachers, logits, hidden, strict=True):
        flat = pa.array(np.ascontiguousarray(lg, dtype=np.float32).reshape(-1))
        columns[logits_column(name)] = pa.FixedSizeListArray.from_arrays(flat, num_labels)
        if hd is not None:
            layers, width = hd.shape[1], hd.shape[2]
            values = pa.array(np.ascontiguousarray(hd, dtype=np.float16).reshape(-1))
            inner = pa.ListArray.from_arrays(np.arange(0, n * layers * width + 1, width, dtype=np.int32), values)
            outer = pa.ListArray.from_arrays(np.arange(0, n * layers + 1, layers, dtype=np.int32), inner)
            ext = features[cls_column(name)]()  # the Array2D extension type
            columns[cls_column(name)] = pa.ExtensionArray.from_storage(ext, outer.cast(ext.storage_type))
    table = pa.table(columns).cast(features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))


def write_label_store(path: str | Path, meta: dict, logits: Sequence[np.ndarray],
                      hidden: Sequence[np.ndarray | None], overwrite: bool = False,
                      shard_rows: int = 50_000) -> Path:
    """Write a whole store at once from outputs in memory. ``meta`` needs label_names, teachers (each with
    its name), data, max_length."""
    path = check_output_dir(path, overwrite)
    n = logits[0].shape[0]
    plan = shard_plan(n, shard_rows)
    writer = StoreWriter(path, [t["name"] for t in meta["teachers"]])
    try:
        writer.start({"meta": meta}, overwrite=True)
        for span in plan:
            writer.write_shard(span, [lg[span.start:span.end] for lg in logits],
                               [None if h is None else h[span.start:span.end] for h in hidden])
        return writer.publish(n, plan, meta)
    except BaseException:
        writer.discard()
        raise
