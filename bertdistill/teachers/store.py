"""Reading label stores: teacher outputs computed once by ``bertdistill label`` and read by every student.

The layout is described in ``bertdistill.teachers.layout``; stores are written by ``bertdistill.teachers.writer``.
Readers name a teacher's columns only through ``LabelStore.logits_column``/``cls_column``: version 2 stores
name them by teacher (logits_<name>), version 1 stores by teacher index (logits_<t>).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import datasets
import numpy as np

from bertdistill.errors import UserError
from bertdistill.io import column_array, is_complete, read_json
from bertdistill.teachers.layout import (CHECKSUMS_FILE, META_FILE, ROOT_STATE, SHARDS_DIR, STORE_FORMAT,
                                         STORE_VERSION, root_dataset_problem, shard_problem)
from bertdistill.teachers.writer import write_label_store  # noqa: F401  (importable from here, as before)


class LabelStore:
    """A finished label store, memory-mapped."""

    def __init__(self, path: Path, meta: dict, dataset: datasets.Dataset):
        self.path = path
        self.meta = meta
        self.dataset = dataset
        self._logits_cache: dict[int, np.ndarray] = {}

    # -- opening and checking ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "LabelStore":
        path = Path(path)
        where = str(path)
        if not path.exists():
            raise UserError("label store not found", where, "create it with bertdistill label")
        if not (path / META_FILE).is_file():
            raise UserError("not a label store (no meta.json)", where, "create it with bertdistill label")
        if not is_complete(path):
            raise UserError("label store is unfinished (interrupted run?)", where,
                            "run the same bertdistill label command again to finish it")
        meta = read_json(path / META_FILE)
        if meta.get("format") != STORE_FORMAT:
            raise UserError("not a bertdistill label store", where, "create it with bertdistill label")
        version = meta.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise UserError(f"meta.json's version is {version!r}, not a store version", where,
                            "re-create the store with bertdistill label --overwrite")
        if version > STORE_VERSION:
            raise UserError(f"label store version {version} is newer than this bertdistill",
                            where, "upgrade bertdistill")
        fix = "re-create the store with bertdistill label --overwrite"
        shards = meta.get("shards")
        if not isinstance(shards, list) or not shards or not isinstance(meta.get("num_rows"), int):
            raise UserError("meta.json has no shard list or row count", where, fix)
        names = [s.get("name") for s in shards]
        on_disk = sorted(p.name for p in (path / SHARDS_DIR).iterdir()
                         if not p.name.startswith(".")) if (path / SHARDS_DIR).is_dir() else []
        if sorted(names) != on_disk:
            listed, present = set(names), set(on_disk)
            raise UserError(f"shard folders differ from meta.json's shard list (not listed: "
                            f"{sorted(present - listed) or 'none'}, missing: {sorted(listed - present) or 'none'}, "
                            f"listed twice: {len(names) - len(listed)})", where, fix)
        start = 0
        for shard in shards:
            if shard.get("start") != start:
                raise UserError(f"shard {shard.get('name')} starts at row {shard.get('start')}, expected {start} "
                                "(meta.json's shard list was edited?)", where, fix)
            start += int(shard.get("rows", 0))
        if start != meta["num_rows"] or meta.get("data", {}).get("rows", start) != start:
            raise UserError(f"meta.json's shards hold {start} rows, its row count says {meta['num_rows']} "
                            f"(data: {meta.get('data', {}).get('rows')})", where, fix)
        parts = []
        for shard in shards:
            # Every shard's files are checked against meta.json's checksums; a shard without them is refused
            # (not skipped), so the check cannot be switched off by editing meta.json.
            shard_path = path / SHARDS_DIR / shard["name"]
            files = shard.get("files")
            if not isinstance(files, dict) or not files or not all(isinstance(f, dict) for f in files.values()):
                raise UserError(f"meta.json lists no checksums for shard {shard['name']} (removed from it, or a "
                                "store written before bertdistill checked them), so its files cannot be trusted",
                                where, fix)
            own = _own_checksums(shard_path)
            if own is not None and own != files:
                raise UserError(f"meta.json's checksums for shard {shard['name']} differ from the ones saved with "
                                "the shard (meta.json was edited?)", where, fix)
            problem = shard_problem(shard_path, files)
            if problem:
                raise UserError(f"shard {shard['name']} is damaged: {problem}", where, fix)
            try:
                part = datasets.Dataset.load_from_disk(str(shard_path))
            except Exception as exc:
                raise UserError(f"shard {shard['name']} is missing or damaged ({type(exc).__name__})", where,
                                "re-create the store with bertdistill label --overwrite") from None
            if len(part) != shard["rows"]:
                raise UserError(f"shard {shard['name']} has {len(part)} rows, meta.json says {shard['rows']}",
                                where, "the store is truncated; re-create it with bertdistill label --overwrite")
            parts.append(part)
        if version >= 2 or (path / ROOT_STATE).exists():  # the root is a Dataset too: it must read the same shards
            problem = root_dataset_problem(path, names)
            if problem:
                raise UserError(f"label store is damaged: {problem}", where, fix)
        dataset = datasets.concatenate_datasets(parts) if len(parts) != 1 else parts[0]
        if len(dataset) != meta["num_rows"]:
            raise UserError(f"store has {len(dataset)} rows, meta.json says {meta['num_rows']}", where,
                            "the store is truncated; re-create it with bertdistill label --overwrite")
        store = cls(path, meta, dataset.with_format("numpy"))
        missing = [store.logits_column(t) for t in range(len(store.teacher_names))
                   if store.logits_column(t) not in dataset.column_names]
        if missing:
            raise UserError(f"the shards have no column {missing[0]!r} for teacher(s) in meta.json "
                            f"(columns: {', '.join(dataset.column_names)})", where, fix)
        rows = column_array(store.dataset, "row")
        if not np.array_equal(rows, np.arange(len(rows))):
            raise UserError("store rows are out of order or missing", where,
                            "re-create it with bertdistill label --overwrite")
        return store

    @property
    def num_rows(self) -> int:
        return int(self.meta["num_rows"])

    @property
    def label_names(self) -> list[str]:
        return list(self.meta["label_names"])

    @property
    def teachers(self) -> list[dict]:
        return list(self.meta["teachers"])

    @property
    def teacher_names(self) -> list[str]:
        return [t["name"] for t in self.meta["teachers"]]

    def teacher_index(self, teacher: int | str) -> int:
        if isinstance(teacher, int):
            return teacher
        names = self.teacher_names
        if teacher not in names:
            raise UserError(f"teacher {teacher!r} is not in the label store", str(self.path),
                            f"use one of: {', '.join(names)}")
        return names.index(teacher)

    def logits_column(self, teacher: int | str) -> str:
        """The name of ``teacher``'s logits column in ``dataset`` (by name in version 2 stores, by index before)."""
        t = self.teacher_index(teacher)
        columns = self.teachers[t].get("columns")
        return columns["logits"] if columns else f"logits_{t}"

    def cls_column(self, teacher: int | str) -> str | None:
        """The name of ``teacher``'s [CLS] states column in ``dataset`` (None when it stored no layers)."""
        t = self.teacher_index(teacher)
        columns = self.teachers[t].get("columns")
        name = columns.get("cls") if columns else f"cls_{t}"
        return name if name in self.dataset.column_names else None

    def to_dataset(self) -> datasets.Dataset:
        """The whole store as one ``datasets.Dataset`` (memory-mapped, no copy): row, then logits_<name> and
        cls_<name> per teacher, whatever the store's version (for version 2 stores the same as
        ``datasets.load_from_disk(store)``)."""
        from bertdistill.teachers.layout import cls_column, logits_column

        rename = {}
        for name in self.teacher_names:
            rename[self.logits_column(name)] = logits_column(name)
            if self.cls_column(name):
                rename[self.cls_column(name)] = cls_column(name)
        plain = self.dataset.with_format(None)
        rename = {old: new for old, new in rename.items() if old != new}
        if not rename:
            return plain
        # In two steps: index and teacher names may overlap (a teacher called "1"), which one
        # rename_columns refuses. Renaming copies no data (the table stays memory-mapped).
        temporary = {old: f"__bertdistill_{k}" for k, old in enumerate(rename)}
        return plain.rename_columns(temporary).rename_columns({temporary[old]: new for old, new in rename.items()})

    def check_data(self, data, what: str = "training data") -> None:
        """Refuse a store made from other data (content hash, row count) or with other labels."""
        fp = data.fingerprint()
        stored = self.meta.get("data", {})
        if stored.get("rows") != fp["rows"] or stored.get("content_sha256") != fp["content_sha256"]:
            raise UserError(
                f"label store was made from other data ({stored.get('source')}, {stored.get('rows')} rows) "
                f"than the {what} ({fp['source']}, {fp['rows']} rows)", str(self.path),
                "label this data with bertdistill label, or pass the data the store was made from")
        if data.label_names and self.label_names and list(data.label_names) != self.label_names:
            raise UserError(f"label store labels {self.label_names} differ from the data's {data.label_names}",
                            str(self.path), "set the data's label order with --label-names")

    # -- reading ----------------------------------------------------------------------------
    def logits(self, teacher: int | str) -> np.ndarray:
        """(N, C) float32 logits of one teacher; NaN or inf is a user error."""
        t = self.teacher_index(teacher)
        if t not in self._logits_cache:
            arr = column_array(self.dataset, self.logits_column(t), np.float32)
            if not np.isfinite(arr).all():
                bad = int(np.argwhere(~np.isfinite(arr))[0][0])
                raise UserError(f"teacher {self.teacher_names[t]!r} has NaN/inf logits at row {bad}",
                                str(self.path), "re-create the store (a teacher diverged or the file is damaged)")
            self._logits_cache[t] = arr
        return self._logits_cache[t]

    def stored_layers(self, teacher: int | str) -> list[int]:
        return list(self.teachers[self.teacher_index(teacher)].get("stored_layers") or [])

    def require_layers(self, teacher: int | str, layers: Sequence[int]) -> None:
        have = self.stored_layers(teacher)
        missing = [layer for layer in layers if layer not in have]
        if missing:
            name = self.teacher_names[self.teacher_index(teacher)]
            raise UserError(f"teacher {name!r} has no stored [CLS] states for layers {missing} "
                            f"(stored: {have or 'none'})", str(self.path),
                            "re-label with --hidden-layers covering them (e.g. --hidden-layers all)")

    def hidden(self, teacher: int | str, rows: Sequence[int], layers: Sequence[int]) -> np.ndarray:
        """(B, len(layers), H) float32 [CLS] states of ``rows`` at teacher ``layers``."""
        t = self.teacher_index(teacher)
        self.require_layers(t, layers)
        have = self.stored_layers(t)
        pick = [have.index(layer) for layer in layers]
        block = np.asarray(self.dataset[list(rows)][self.cls_column(t)], dtype=np.float32)
        return block[:, pick, :]


def _own_checksums(shard_path: Path) -> dict | None:
    """The checksums saved with a shard when it was written (None when the file is not there)."""
    import json

    try:
        return json.loads((shard_path / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: differs from meta.json's, so the store is refused
