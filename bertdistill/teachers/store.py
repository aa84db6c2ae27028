"""Label stores: teacher outputs computed once by ``bertdistill label`` and read by every student.

Layout of a store directory::

    meta.json            format, version, num_rows, label_names, max_length, data fingerprint,
                         teachers [{name, path, weights_sha256, tokenizer, num_layers, hidden_size,
                         stored_layers, metrics}], shards [{name, start, rows}], config
    shards/shard-00000/  a ``datasets`` Arrow directory (save_to_disk): columns
                         row (int64), logits_<t> (float32[C]) and, when layers are stored,
                         cls_<t> (float16[len(stored_layers), hidden_size]) for teacher index t
    .complete            completion marker; a store without it is unfinished

Layers are numbered like ``hidden_states``: 1..num_layers (0 would be the embeddings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import datasets
import numpy as np

from bertdistill.errors import UserError
from bertdistill.io import is_complete, read_json

STORE_FORMAT = "bertdistill-label-store"
STORE_VERSION = 1
META_FILE = "meta.json"
SHARDS_DIR = "shards"


def shard_features(num_labels: int, hidden_shapes: Sequence[tuple[int, int] | None]) -> datasets.Features:
    """Arrow schema of a shard: row, logits_<t> and optional cls_<t> per teacher."""
    feats: dict[str, Any] = {"row": datasets.Value("int64")}
    for t, shape in enumerate(hidden_shapes):
        feats[f"logits_{t}"] = datasets.Sequence(datasets.Value("float32"), length=num_labels)
        if shape is not None:
            feats[f"cls_{t}"] = datasets.Array2D(shape=tuple(shape), dtype="float16")
    return datasets.Features(feats)


def shard_dataset(rows: np.ndarray, logits: Sequence[np.ndarray], hidden: Sequence[np.ndarray | None]) -> datasets.Dataset:
    """One shard as a Dataset: ``logits[t]`` is (n, C) and ``hidden[t]`` is (n, L, H) or None.

    Arrow arrays are built straight from the numpy buffers: going through Python lists (as
    ``Dataset.from_dict`` does for Array2D) costs ~10 objects per float and hundreds of MB per shard.
    """
    import pyarrow as pa

    num_labels = logits[0].shape[1]
    shapes = [None if h is None else (h.shape[1], h.shape[2]) for h in hidden]
    features = shard_features(num_labels, shapes)
    n = len(rows)
    columns: dict[str, Any] = {"row": pa.array(np.asarray(rows, dtype=np.int64))}
    for t, (lg, hd) in enumerate(zip(logits, hidden)):
        flat = pa.array(np.ascontiguousarray(lg, dtype=np.float32).reshape(-1))
        columns[f"logits_{t}"] = pa.FixedSizeListArray.from_arrays(flat, num_labels)
        if hd is not None:
            layers, width = hd.shape[1], hd.shape[2]
            values = pa.array(np.ascontiguousarray(hd, dtype=np.float16).reshape(-1))
            inner = pa.ListArray.from_arrays(np.arange(0, n * layers * width + 1, width, dtype=np.int32), values)
            outer = pa.ListArray.from_arrays(np.arange(0, n * layers + 1, layers, dtype=np.int32), inner)
            ext = features[f"cls_{t}"]()  # the Array2D extension type
            columns[f"cls_{t}"] = pa.ExtensionArray.from_storage(ext, outer.cast(ext.storage_type))
    table = pa.table(columns).cast(features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))


def write_label_store(path: str | Path, meta: dict, logits: Sequence[np.ndarray],
                      hidden: Sequence[np.ndarray | None], overwrite: bool = False,
                      shard_rows: int = 50_000) -> Path:
    """Write a whole store at once (atomic). ``meta`` needs label_names, teachers, data, max_length."""
    from bertdistill.io import atomic_dir, write_json

    n = logits[0].shape[0]
    with atomic_dir(path, overwrite=overwrite) as tmp:
        shards = []
        for start in range(0, n, shard_rows):
            end = min(start + shard_rows, n)
            name = f"shard-{len(shards):05d}"
            shard_dataset(np.arange(start, end), [lg[start:end] for lg in logits],
                          [None if h is None else h[start:end] for h in hidden]).save_to_disk(
                str(tmp / SHARDS_DIR / name))
            shards.append({"name": name, "start": start, "rows": end - start})
        full = {"format": STORE_FORMAT, "version": STORE_VERSION, "num_rows": n, **meta, "shards": shards}
        write_json(tmp / META_FILE, full)
    return Path(path)


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
        if meta.get("version", 0) > STORE_VERSION:
            raise UserError(f"label store version {meta.get('version')} is newer than this bertdistill",
                            where, "upgrade bertdistill")
        parts = []
        for shard in meta["shards"]:
            shard_path = path / SHARDS_DIR / shard["name"]
            try:
                part = datasets.Dataset.load_from_disk(str(shard_path))
            except Exception as exc:
                raise UserError(f"shard {shard['name']} is missing or damaged ({type(exc).__name__})", where,
                                "re-create the store with bertdistill label --overwrite") from None
            if len(part) != shard["rows"]:
                raise UserError(f"shard {shard['name']} has {len(part)} rows, meta.json says {shard['rows']}",
                                where, "the store is truncated; re-create it with bertdistill label --overwrite")
            parts.append(part)
        dataset = datasets.concatenate_datasets(parts) if len(parts) != 1 else parts[0]
        if len(dataset) != meta["num_rows"]:
            raise UserError(f"store has {len(dataset)} rows, meta.json says {meta['num_rows']}", where,
                            "the store is truncated; re-create it with bertdistill label --overwrite")
        store = cls(path, meta, dataset.with_format("numpy"))
        rows = np.asarray(store.dataset["row"])
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
            arr = np.asarray(self.dataset[f"logits_{t}"], dtype=np.float32)
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
        block = np.asarray(self.dataset[list(rows)][f"cls_{t}"], dtype=np.float32)
        return block[:, pick, :]
