"""Read local files or hub data sets into a canonical table: text_a, [text_b], [label], [group].

Task kinds: ``pair`` (text_a, text_b, label) for GLUE-style tasks, ``single`` (text, label) and
``ranking`` (query, passage, label, group) for web-QA relevance, where metrics are per query.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets.fingerprint import generate_random_fingerprint

from bertdistill.errors import UserError

TASK_KINDS = ("pair", "single", "ranking")
DELIMITED = {".tsv": "\t", ".txt": "\t", ".csv": ","}
JSON_LIKE = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}

# Column names tried, in order, when the user does not name a column.
TEXT_A_NAMES = ("text_a", "question", "query", "sentence1", "premise", "#1 String", "Question",
                "sentence", "text")
TEXT_B_NAMES = ("text_b", "passage", "sentence2", "hypothesis", "#2 String", "Sentence", "sentence", "answer")
LABEL_NAMES = ("label", "Label", "gold_label", "Quality", "labels")
_CHUNK_ROWS = 20_000

datasets.disable_progress_bars()


@dataclass
class DataSpec:
    """Where a data set comes from and how its columns map onto the task."""

    path: str | None = None
    """Local file: .tsv/.txt (tab), .csv, .jsonl/.json or .parquet."""
    dataset: str | None = None
    """Hub data set name (online users), e.g. ``glue``; used when ``path`` is not given."""
    subset: str | None = None
    split: str | None = None
    columns: list[str] | None = None
    """Column names of a headerless delimited file, in order."""
    text_a: str | None = None
    text_b: str | None = None
    label_column: str | None = None
    group_column: str | None = None
    task: str | None = None
    """pair, single or ranking; inferred when not given."""
    label_names: list[str] | None = None
    """Fixed label order (id i is label_names[i]); inferred from the data when not given."""
    drop_labels: list[str] = field(default_factory=lambda: ["-"])
    """Label values whose rows are dropped (SNLI's "-" means no annotator consensus)."""
    unlabeled: bool = False
    """Ignore any label column (stage-1 corpora, test sets without gold labels)."""
    delimiter: str | None = None
    limit: int | None = None
    """Keep only the first N rows (after dropping)."""

    def describe(self) -> str:
        if self.path:
            return str(self.path)
        parts = [p for p in (self.dataset, self.subset) if p]
        return "/".join(parts) + (f"[{self.split}]" if self.split else "")


@dataclass
class TaskData:
    """A data set in canonical form, with the label names that travel with every artifact."""

    spec: DataSpec
    kind: str
    dataset: datasets.Dataset
    label_names: list[str]
    column_map: dict[str, str]
    dropped: int = 0

    @property
    def num_rows(self) -> int:
        return len(self.dataset)

    @property
    def has_labels(self) -> bool:
        return "label" in self.dataset.column_names

    @property
    def has_text_b(self) -> bool:
        return "text_b" in self.dataset.column_names

    @property
    def has_groups(self) -> bool:
        return "group" in self.dataset.column_names

    def column(self, name: str) -> list:
        return list(self.dataset[name])

    def fingerprint(self) -> dict[str, Any]:
        """Content hash of the texts (not the gold labels: teachers label text, not answers)."""
        digest = hashlib.sha256()
        cols = [c for c in ("text_a", "text_b") if c in self.dataset.column_names]
        for batch in self.dataset.select_columns(cols).with_format("arrow").iter(batch_size=10_000):
            for col in cols:
                for text in batch[col].to_pylist():
                    digest.update(text.encode("utf-8"))
                    digest.update(b"\x1f")
            digest.update(b"\x1e")
        return {"content_sha256": digest.hexdigest(), "rows": self.num_rows,
                "source": self.spec.describe(), "columns": dict(self.column_map)}

    def subset(self, indices) -> "TaskData":
        return TaskData(self.spec, self.kind, self.dataset.select(list(indices)), self.label_names,
                        self.column_map, self.dropped)


def load_task_data(spec: DataSpec, label_names: list[str] | None = None,
                   require_labels: bool = False) -> TaskData:
    """Load ``spec`` into canonical columns.

    ``label_names`` (e.g. from a model or the training set) fixes the label order; values outside it
    are a user error. ``require_labels`` makes a missing label column an error.
    """
    where = spec.describe()
    if spec.task is not None and spec.task not in TASK_KINDS:
        raise UserError(f"unknown task kind {spec.task!r}", where, f"use one of {', '.join(TASK_KINDS)}")
    table = _read_source(spec)
    names = list(table.column_names)
    if table.num_rows == 0:
        raise UserError("no data rows (the file is empty or holds only a header)", where,
                        "point to a file with at least one example")

    text_a = _pick(spec.text_a, TEXT_A_NAMES, names, "--text-a", where, required=True)
    text_b = _pick(spec.text_b, TEXT_B_NAMES, [n for n in names if n != text_a], "--text-b", where)
    if spec.task == "single":
        text_b = None
    label_col = None
    if not spec.unlabeled:
        label_col = _pick(spec.label_column, LABEL_NAMES, names, "--label-column", where,
                          required=require_labels)
    kind = spec.task or ("ranking" if spec.group_column else "pair" if text_b else "single")
    if kind in ("pair", "ranking") and not text_b:
        raise UserError(f"a {kind} task needs a second text column", where,
                        f"name it with --text-b (columns: {', '.join(names)})")
    group_col = None
    if kind == "ranking":
        group_col = spec.group_column or text_a
        if group_col not in names:
            raise UserError(f"group column {group_col!r} not found", where,
                            f"use --group-column with one of: {', '.join(names)}")

    columns: dict[str, pa.Array] = {"text_a": _as_text(table, text_a, where)}
    column_map = {"text_a": text_a}
    if text_b:
        columns["text_b"] = _as_text(table, text_b, where)
        column_map["text_b"] = text_b
    if group_col:
        columns["group"] = _as_text(table, group_col, where)
        column_map["group"] = group_col

    dropped = 0
    label_out: list[str] = []
    if label_col:
        # Arrow compute throughout: no Python object per row, so memory stays flat on large corpora.
        raw = _label_strings(table, label_col)
        if spec.drop_labels:
            keep = pc.invert(pc.is_in(raw, value_set=pa.array(spec.drop_labels, type=pa.string())))
            dropped = len(raw) - pc.sum(keep).as_py() if len(raw) else 0
            if dropped:
                columns = {k: v.filter(keep) for k, v in columns.items()}
                raw = raw.filter(keep)
        empty = _first_true(pc.equal(raw, ""))
        if empty is not None:
            raise UserError(f"row {empty + 1} has an empty label in column {label_col!r}", where,
                            "fill it in, or pass --unlabeled to ignore labels")
        names_fixed = label_names or spec.label_names
        label_out = list(names_fixed) if names_fixed else _infer_label_names(pc.unique(raw).to_pylist())
        ids = pc.index_in(raw, value_set=pa.array(label_out, type=pa.string()))
        bad = _first_true(pc.is_null(ids))
        if bad is not None:
            raise UserError(f"row {bad + 1} has label {raw[bad].as_py()!r}, which is not one of {label_out}",
                            where, "fix the row, drop it, or set the label names with --label-names")
        columns["label"] = ids.cast(pa.int64())
        column_map["label"] = label_col
    else:
        label_out = list(label_names or spec.label_names or [])

    out = pa.table(columns)
    if spec.limit is not None:
        out = out.slice(0, spec.limit)
    if out.num_rows == 0:
        raise UserError("no rows left after dropping", where, "check --drop-labels and --limit")
    # An explicit fingerprint: without one, datasets hashes the whole table (a copy as large as the data).
    dataset = datasets.Dataset(out, fingerprint=generate_random_fingerprint())
    data = TaskData(spec, kind, dataset, label_out, column_map, dropped)
    if kind == "ranking":
        _check_ranking(data, where)
    return data


def _check_ranking(data: TaskData, where: str) -> None:
    groups = data.dataset.data.column("group")
    if pc.count_distinct(groups).as_py() == len(groups):
        raise UserError("ranking data has one candidate per group, so nothing is ranked", where,
                        "name the query-id column with --group-column, or use --task pair")


def _infer_label_names(values: list[str]) -> list[str]:
    unique = set(values)
    if all(_is_int(v) for v in unique):
        return [str(v) for v in sorted(int(v) for v in unique)]
    return sorted(unique)


def _is_int(value: str) -> bool:
    try:
        int(value)
        return True
    except ValueError:
        return False


def _label_strings(table: pa.Table, column: str) -> pa.Array:
    """Label values as trimmed strings ("" where missing); integer-valued floats print as integers."""
    col = table.column(column).combine_chunks()
    meta = table.schema.field(column).metadata or {}
    if meta.get(b"class_names"):  # hub ClassLabel: ints to names; -1 means unlabeled
        names = pa.array(meta[b"class_names"].decode().split("\x1f") + ["-"], type=pa.string())
        ids = pc.if_else(pc.less(pc.fill_null(col, -1), 0), len(names) - 1, pc.fill_null(col, -1))
        return pc.take(names, ids)
    if pa.types.is_floating(col.type):
        whole = pc.all(pc.equal(pc.floor(col), col)).as_py()
        if whole is not False:
            col = col.cast(pa.int64())
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(col.cast(pa.string()), ""))


def _first_true(mask: pa.Array) -> int | None:
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index


def _as_text(table: pa.Table, column: str, where: str) -> pa.Array:
    col = table.column(column).combine_chunks()
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pa.array(["" if v is None else str(v) for v in col.to_pylist()], type=pa.string())
    elif col.null_count:
        first = col.is_null().to_pylist().index(True)
        raise UserError(f"row {first + 1} has no value in column {column!r}", where,
                        "fill in the missing text or drop the row")
    return col.cast(pa.string())


def _pick(given: str | None, candidates: tuple[str, ...], names: list[str], option: str, where: str,
          required: bool = False) -> str | None:
    if given is not None:
        if given not in names:
            raise UserError(f"column {given!r} not found", where,
                            f"use {option} with one of: {', '.join(names)}")
        return given
    for cand in candidates:
        if cand in names:
            return cand
    if required:
        raise UserError(f"no column found for {option}", where,
                        f"name one with {option} (columns: {', '.join(names)})")
    return None


# ---------------------------------------------------------------------------------------------
# Reading sources into an Arrow table


def _read_source(spec: DataSpec) -> pa.Table:
    if spec.path:
        path = Path(spec.path)
        if not path.exists():
            raise UserError("file not found", str(path), "check the path")
        if path.is_dir():
            raise UserError("is a folder, not a data file", str(path),
                            "point to a .tsv/.csv/.jsonl/.json/.parquet file")
        suffix = path.suffix.lower()
        if suffix in DELIMITED or spec.delimiter:
            return _read_delimited(path, spec.delimiter or DELIMITED.get(suffix, "\t"), spec.columns)
        if suffix in JSON_LIKE:
            return _read_with_datasets(path, JSON_LIKE[suffix])
        raise UserError(f"unknown file type {suffix!r}", str(path),
                        "use .tsv, .txt (tab-separated), .csv, .jsonl, .json or .parquet")
    if spec.dataset:
        return _read_hub(spec)
    raise UserError("no data given", None, "pass --data FILE, or --dataset NAME for a hub data set")


def _read_hub(spec: DataSpec) -> pa.Table:
    try:
        ds = datasets.load_dataset(spec.dataset, spec.subset, split=spec.split or "train")
    except Exception as exc:  # the hub raises many kinds; all mean the same to the user
        raise UserError(f"could not load hub data set ({type(exc).__name__}: {str(exc)[:200]})",
                        spec.describe(), "check the name/subset/split and the network, or use a local file") from None
    table = ds.data.table if hasattr(ds.data, "table") else ds.with_format("arrow")[:]
    # Keep ClassLabel names so integer labels map back to names.
    fields = []
    for f in table.schema:
        feat = ds.features.get(f.name)
        if isinstance(feat, datasets.ClassLabel):
            f = f.with_metadata({b"class_names": "\x1f".join(feat.names).encode()})
        fields.append(f)
    return table.cast(pa.schema(fields))


def _read_with_datasets(path: Path, builder: str) -> pa.Table:
    if builder == "json":
        _check_utf8(path)
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"could not read {builder} file ({msg})", str(path),
                        "check that every line/record is valid") from None
    return ds.with_format("arrow")[:]


def _check_utf8(path: Path) -> None:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"line {lineno} is not valid UTF-8 (byte {exc.start})", str(path),
                                "re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def _iter_delimited(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields). Tabs: split verbatim (GLUE files have unbalanced quotes)."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"line {lineno} is not valid UTF-8 (byte {exc.start})", str(path),
                                "re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
            if lineno == 1:
                line = line.lstrip("\ufeff")  # MRPC's header starts with a byte-order mark
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if delimiter == "\t":
                yield lineno, line.split("\t")
            else:
                yield lineno, next(csv.reader([line], delimiter=delimiter))


def _read_delimited(path: Path, delimiter: str, columns: list[str] | None) -> pa.Table:
    rows = _iter_delimited(path, delimiter)
    if columns:
        header = list(columns)
    else:
        first = next(rows, None)
        if first is None:
            raise UserError("file is empty", str(path), "point to a file with a header and data rows")
        header = [h.strip() for h in first[1]]
        dup = next((h for h in header if header.count(h) > 1), None)
        if dup is not None:
            raise UserError(f"header names column {dup!r} twice", str(path), "rename one of them")
    width = len(header)
    batches: list[pa.RecordBatch] = []
    chunk: list[list[str]] = [[] for _ in range(width)]
    for lineno, fields in rows:
        if len(fields) != width:
            raise UserError(f"line {lineno} has {len(fields)} fields, expected {width}", str(path),
                            "fix the ragged row, or give the column list with --columns if the file has no header")
        for col, value in zip(chunk, fields):
            col.append(value)
        if len(chunk[0]) >= _CHUNK_ROWS:
            batches.append(_batch(chunk, header))
            chunk = [[] for _ in range(width)]
    if chunk[0] or not batches:
        batches.append(_batch(chunk, header))
    return pa.Table.from_batches(batches)


def _batch(chunk: list[list[str]], header: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(c, type=pa.string()) for c in chunk], names=header)


def spec_with(spec: DataSpec, **changes: Any) -> DataSpec:
    """A copy of ``spec`` with some fields changed (e.g. the eval file sharing the column mapping)."""
    from dataclasses import replace

    return replace(spec, **changes)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
