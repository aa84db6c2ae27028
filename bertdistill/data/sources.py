"""Read local files or hub data sets into a canonical table: text_a, [text_b], [label], [group].

Task kinds: ``pair`` (text_a, text_b, label) for GLUE-style tasks, ``single`` (text, label) and
``ranking`` (query, passage, label, group) for web-QA relevance, where metrics are per query.
"""

from __future__ import annotations

import csv
import contextlib
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets.fingerprint import generate_random_fingerprint

from bertdistill.errors import UserError
from bertdistill.io import column_list
from bertdistill.io import file_sha256  # noqa: F401  (callers read it from here too)

TASK_KINDS = ("pair", "single", "ranking")

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
        return column_list(self.dataset, name)

    def fingerprint(self) -> dict[str, Any]:
        """Content hash of the texts (not the gold labels: teachers label text, not answers)."""
        hasher = ContentHasher()
        cols = [c for c in ("text_a", "text_b") if c in self.dataset.column_names]
        for batch in self.dataset.select_columns(cols).with_format("arrow").iter(batch_size=10_000):
            hasher.update(*(batch[c] for c in cols))
        return fingerprint_dict(hasher.hexdigest(), self.num_rows, self.spec, self.column_map)

    def subset(self, indices) -> "TaskData":
        return TaskData(self.spec, self.kind, self.dataset.select(list(indices)), self.label_names,
                        self.column_map, self.dropped)


class ContentHasher:
    """SHA-256 of the texts in blocks of 10k rows; the same digest however the rows arrive in batches.

    Within a block the texts are hashed column by column (all text_a, then all text_b), each followed
    by 0x1f, and every block ends with 0x1e. The layout is part of every stored fingerprint: keep it.
    """

    BLOCK_ROWS = 10_000

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: list[tuple] = []  # slices of the current, unfinished block
        self._pending_rows = 0

    def update(self, *columns) -> None:
        """Add rows; ``columns`` are the text_a [, text_b] Arrow arrays of one batch."""
        n, start = len(columns[0]), 0
        while start < n:
            take = min(self.BLOCK_ROWS - self._pending_rows, n - start)
            self._pending.append(tuple(c.slice(start, take) for c in columns))
            self._pending_rows += take
            start += take
            if self._pending_rows == self.BLOCK_ROWS:
                self._hash_block(self._digest)
                self._pending, self._pending_rows = [], 0

    def hexdigest(self) -> str:
        digest = self._digest.copy()
        if self._pending_rows:
            self._hash_block(digest)
        return digest.hexdigest()

    def _hash_block(self, digest) -> None:
        for k in range(len(self._pending[0])):
            for piece in self._pending:
                for text in piece[k].to_pylist():
                    digest.update(text.encode("utf-8"))
                    digest.update(b"\x1f")
        digest.update(b"\x1e")


def fingerprint_dict(content_sha256: str, rows: int, spec: DataSpec, column_map: dict[str, str]) -> dict[str, Any]:
    return {"content_sha256": content_sha256, "rows": rows, "source": spec.describe(), "columns": dict(column_map)}


def load_task_data(spec: DataSpec, label_names: list[str] | None = None,
                   require_labels: bool = False, keep_dropped: bool = False) -> TaskData:
    """Load ``spec`` into canonical columns, in memory.

    ``label_names`` (e.g. from a model or the training set) fixes the label order; values outside it
    are a user error. ``require_labels`` makes a missing label column an error. ``keep_dropped`` keeps
    the rows whose label is in the drop list, with a missing (null) label, so row i is input row i;
    ``dropped`` then counts them.
    """
    stream = CanonicalStream(spec, label_names, require_labels, keep_dropped)
    out = pa.Table.from_batches(list(stream), schema=stream.schema)
    stream.finish()
    if stream.has_labels:
        ids = pc.index_in(out.column("label"), value_set=pa.array(stream.label_names, type=pa.string()))
        out = out.set_column(out.schema.get_field_index("label"), "label", ids.cast(pa.int64()))
    # An explicit fingerprint: without one, datasets hashes the whole table (a copy as large as the data).
    dataset = datasets.Dataset(out, fingerprint=generate_random_fingerprint())
    data = TaskData(spec, stream.kind, dataset, stream.label_names, stream.column_map, stream.dropped)
    if stream.kind == "ranking":
        groups = data.dataset.data.column("group")
        if pc.count_distinct(groups).as_py() == len(groups):
            raise one_candidate_per_group(spec.describe())
    return data


MISSING_LABELS = ["nan", "null"]
"""Label values (any case) that mean "no value": a NaN float label, or a missing value written out."""


def check_classes(data: TaskData, what: str = "training data") -> None:
    """Training data needs at least two classes present; one class trains a classifier that cannot be wrong."""
    if not data.has_labels:
        return
    counts = pc.value_counts(data.dataset.data.column("label").combine_chunks().drop_null()).to_pylist()
    if len(counts) < 2:
        only = data.label_names[counts[0]["values"]] if counts else "?"
        raise UserError(f"the {what} has one class only (all {data.num_rows} rows are {only!r})", data.spec.describe(),
                        "train on data with at least two classes (check --label-column, --limit and the file's "
                        "sort order)")


def one_candidate_per_group(where: str) -> UserError:
    return UserError("ranking data has one candidate per group, so nothing is ranked", where,
                     "name the query-id column with --group-column, or use --task pair")


class CanonicalStream:
    """The rows of ``spec`` as canonical record batches (text_a, [text_b], [label], [group]), batch by batch.

    Column choice and row checks happen as the batches pass, so a caller that writes them out keeps
    only one source batch in memory. Labels stay strings here: with no fixed label names, the names
    are known only at the end (``finish``); with fixed names, every value is checked on the way.
    """

    def __init__(self, spec: DataSpec, label_names: list[str] | None = None, require_labels: bool = False,
                 keep_dropped: bool = False):
        self.spec = spec
        self.keep_dropped = keep_dropped
        self.where = where = spec.describe()
        if spec.task is not None and spec.task not in TASK_KINDS:
            raise UserError(f"unknown task kind {spec.task!r}", where, f"use one of {', '.join(TASK_KINDS)}")
        schema, batches = _read_source(spec)
        first = next(batches, None)
        if first is None:
            raise UserError("no data rows (the file is empty or holds only a header)", where,
                            "point to a file with at least one example")
        self._source = itertools.chain([first], batches)
        names = list(schema.names)

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
        self.kind = kind
        self.column_map = {k: v for k, v in (("text_a", text_a), ("text_b", text_b), ("group", group_col),
                                             ("label", label_col)) if v}
        self.schema = pa.schema([(k, pa.string()) for k in self.column_map])
        self._fixed_names = list(label_names or spec.label_names or []) or None
        self._seen_labels: set[str] = set()
        self._first_row: dict[str, int] = {}  # label value → first row (1-based, after dropping) holding it
        self._column_names = names
        self.label_names: list[str] = list(self._fixed_names or [])
        self.source_rows = 0  # rows read (numbers text errors)
        self.checked_rows = 0  # rows read after dropping (numbers label errors), past --limit too
        self.rows = 0  # rows yielded
        self.dropped = 0

    @property
    def has_labels(self) -> bool:
        return "label" in self.column_map

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        limit = self.spec.limit
        for batch in self._source:
            # Rows past --limit are still read and checked: the label names come from the whole file.
            out = self._canonical(batch)
            self.source_rows += batch.num_rows
            self.checked_rows += out.num_rows
            if limit is not None:
                out = out.slice(0, max(0, limit - self.rows))
            self.rows += out.num_rows
            if out.num_rows:
                yield out

    def finish(self) -> None:
        """After the last batch: fix the label names (when not given) and refuse empty results."""
        if self.rows == 0:
            raise UserError("no rows left after dropping", self.where, "check --drop-labels and --limit")
        if self.has_labels and not self._fixed_names:
            self._check_label_set()
            self.label_names = _infer_label_names(self._seen_labels)

    def _check_label_set(self) -> None:
        """Junk label sets: a header row read as data, and one number written two ways (1 / 1.0)."""
        rows = self._first_row
        for value in sorted(self._seen_labels, key=lambda v: rows.get(v, 0)):
            if value in self._column_names:
                raise UserError(f"row {rows.get(value, '?')} has label {value!r}, the name of a column: a header "
                                "row was read as data", self.where,
                                "drop --columns (the file has a header), or remove that row")
        by_number: dict[float, list[str]] = {}
        for value in self._seen_labels:
            with contextlib.suppress(ValueError):
                by_number.setdefault(float(value), []).append(value)
        for forms in by_number.values():
            if len(forms) > 1:
                forms = sorted(forms, key=lambda v: rows.get(v, 0))
                shown = ", ".join(f"{v!r} (row {rows.get(v, '?')})" for v in forms)
                raise UserError(f"labels {shown} are one number written in different forms", self.where,
                                "write every label the same way (e.g. 1, not 1.0), or fix the label names with "
                                "--label-names")

    def _canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        columns = {k: _as_text(batch, src, self.where, self.source_rows)
                   for k, src in self.column_map.items() if k != "label"}
        if self.has_labels:
            # Arrow compute throughout: no Python object per row, so memory stays flat on large corpora.
            src = self.column_map["label"]
            raw = _label_strings(batch.column(src), batch.schema.field(src), self.where)
            if self.spec.drop_labels:
                keep = pc.invert(pc.is_in(raw, value_set=pa.array(self.spec.drop_labels, type=pa.string())))
                dropped = len(raw) - pc.sum(keep).as_py() if len(raw) else 0
                if dropped:
                    self.dropped += dropped
                    if self.keep_dropped:  # kept, unlabeled: row ids stay the input's
                        raw = pc.if_else(keep, raw, pa.scalar(None, pa.string()))
                    else:
                        columns = {k: v.filter(keep) for k, v in columns.items()}
                        raw = raw.filter(keep)
            empty = _first_true(pc.equal(raw, ""))
            if empty is not None:
                raise UserError(f"row {self.checked_rows + empty + 1} has an empty label in column {src!r}", self.where,
                                "fill it in, or pass --unlabeled to ignore labels")
            missing = _first_true(pc.is_in(pc.utf8_lower(raw), value_set=pa.array(MISSING_LABELS, type=pa.string())))
            if missing is not None:
                raise UserError(f"row {self.checked_rows + missing + 1} has the missing-value label "
                                f"{raw[missing].as_py()!r} in column {src!r}", self.where,
                                "fill in the label, remove the row, or pass --unlabeled to ignore labels")
            if self._fixed_names:
                known = pa.array(self._fixed_names, type=pa.string())
                bad = _first_true(pc.and_(pc.is_null(pc.index_in(raw, value_set=known)), pc.is_valid(raw)))
                if bad is not None:
                    raise UserError(f"row {self.checked_rows + bad + 1} has label {raw[bad].as_py()!r}, which is "
                                    f"not one of {self._fixed_names}", self.where,
                                    "fix the row, drop it, or set the label names with --label-names")
            else:
                for value in pc.unique(raw.drop_null()).to_pylist():
                    if value not in self._seen_labels:
                        self._seen_labels.add(value)
                        if len(self._first_row) < 10_000:
                            self._first_row[value] = self.checked_rows + pc.index(raw, value).as_py() + 1
            columns["label"] = raw
        return pa.RecordBatch.from_arrays(list(columns.values()), schema=self.schema)


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


def _label_strings(col: pa.Array, source_field: pa.Field, where: str) -> pa.Array:
    """Label values as trimmed strings ("" where missing); integer-valued floats print as integers."""
    meta = source_field.metadata or {}
    if meta.get(b"class_names"):  # hub ClassLabel: ints to names; -1 means unlabeled
        names = pa.array(meta[b"class_names"].decode().split("\x1f") + ["-"], type=pa.string())
        ids = pc.if_else(pc.less(pc.fill_null(col, -1), 0), len(names) - 1, pc.fill_null(col, -1))
        return pc.take(names, ids)
    problem = _typed_problem(source_field, col.type, "label")
    if problem:
        raise UserError(problem, where, "name the label column with --label-column (a label is a class name, a "
                                        "whole number or true/false), or pass --unlabeled")
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
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


def _is_text_type(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return (pa.types.is_string(type_) or pa.types.is_large_string(type_)
            or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(type_)))


def _typed_problem(source_field: pa.Field, type_: pa.DataType, role: str) -> str | None:
    """Why a column of this type cannot be a text (``role`` "text") or label column, or None.

    A text column holds strings; a label column strings, integers, whole-or-not numbers or booleans.
    Lists, structs, maps and binary data are neither (their printed form is no text and no class).
    """
    column = source_field.name
    kinds = (source_field.metadata or {}).get(JSON_KINDS)
    if kinds:  # a JSON key of mixed or nested values: name the first line of each kind
        seen = dict(part.split(":", 1) for part in kinds.decode().split(";"))
        allowed = {"text"} if role == "text" else {"text", "number", "boolean"}
        bad = [k for k in seen if k not in allowed]
        if bad:
            others = ", ".join(f"{k} from {w}" for k, w in seen.items() if k not in bad)
            return (f"{seen[bad[0]]}: key {column!r} holds a JSON {bad[0]} where a {role} column needs "
                    f"{'text' if role == 'text' else 'a class name or number'}" + (f" ({others})" if others else ""))
        return None
    if role == "text":
        if _is_text_type(type_) or pa.types.is_null(type_):
            return None
        return f"column {column!r} holds values of type {type_}, not text"
    if (_is_text_type(type_) or pa.types.is_integer(type_) or pa.types.is_floating(type_)
            or pa.types.is_boolean(type_) or pa.types.is_null(type_)):
        return None
    return f"column {column!r} holds values of type {type_}, which are no class labels"


def _as_text(batch: pa.RecordBatch, column: str, where: str, offset: int) -> pa.Array:
    """A text column as strings; ``offset`` is the number of source rows before this batch."""
    col = batch.column(column)
    problem = _typed_problem(batch.schema.field(column), col.type, "text")
    if problem:
        raise UserError(problem, where, "name the text columns with --text-a/--text-b (a text column holds "
                                        "strings: join lists and convert numbers before training)")
    if pa.types.is_null(col.type):
        col = pa.nulls(len(col), pa.string())
    if col.null_count:
        first = _first_true(col.is_null())
        raise UserError(f"row {offset + first + 1} has no value in column {column!r}", where,
                        "fill in the missing text or drop the row")
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
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


def _read_source(spec: DataSpec) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The source's schema and its rows as record batches, read as they are consumed."""
    if spec.path:
        path = Path(spec.path)
        if not path.exists():
            raise UserError("file not found", str(path), "check the path")
        if path.is_dir():
            raise UserError("is a folder, not a data file", str(path), f"point to a {formats_help()} file")
        if spec.delimiter:
            return _read_delimited(path, spec.delimiter, spec.columns)
        fmt = file_format(path)
        if fmt is None:
            raise UserError(f"unknown file type {path.suffix.lower()!r}", str(path), f"use {formats_help()}")
        return fmt.read(path, spec)
    if spec.dataset:
        return _dataset_batches(_read_hub(spec))
    raise UserError("no data given", None, "pass --data FILE, or --dataset NAME for a hub data set")


def _read_hub(spec: DataSpec) -> datasets.Dataset:
    try:
        return datasets.load_dataset(spec.dataset, spec.subset, split=spec.split or "train")
    except Exception as exc:  # the hub raises many kinds; all mean the same to the user
        raise UserError(f"could not load hub data set ({type(exc).__name__}: {str(exc)[:200]})",
                        spec.describe(), "check the name/subset/split and the network, or use a local file") from None


def _dataset_batches(ds: datasets.Dataset) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Record batches of a loaded ``datasets`` split, with ClassLabel names kept in the field metadata.

    The split's cache files are read with plain reads rather than through its memory map, so the
    pages of a large corpus do not stay resident while it is consumed.
    """
    fields = []
    for f in ds.data.schema:
        feat = ds.features.get(f.name)
        if isinstance(feat, datasets.ClassLabel):  # keep the names so integer labels map back to them
            f = f.with_metadata({b"class_names": "\x1f".join(feat.names).encode()})
        fields.append(f)
    schema = pa.schema(fields)
    # A freshly loaded split is exactly its cache files, in order (no index mapping, no replayed edits).
    files = [c["filename"] for c in ds.cache_files] if ds._indices is None else []

    def batches() -> Iterator[pa.RecordBatch]:
        if not files:  # in memory: the table itself
            for batch in ds.with_format("arrow")[:].to_batches():
                yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
            return
        rows = 0
        for filename in files:
            with pa.OSFile(filename) as fh:
                for batch in pa.ipc.open_stream(fh):
                    rows += batch.num_rows
                    yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
        if rows != len(ds):
            raise RuntimeError(f"cache files hold {rows} rows, the split {len(ds)}: {files}")

    return schema, batches()


def _utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line with its line end) of a UTF-8 file, without a leading byte-order mark; a byte
    that is not UTF-8 is a one-line error naming the line."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"line {lineno} is not valid UTF-8 (byte {exc.start})", str(path),
                                "re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
            yield lineno, (line.lstrip("\ufeff") if lineno == 1 else line)  # MRPC's header starts with a BOM


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) of a UTF-8 text file, without the line end or a leading byte-order mark,
    skipping blank lines; a byte that is not UTF-8 is a one-line error naming the line."""
    for lineno, line in _utf8_lines(path):
        line = line.rstrip("\r\n")
        if line.strip():
            yield lineno, line


# -- delimited files ---------------------------------------------------------------------------------
# Tab-separated files are split verbatim, one record per line: GLUE's files hold unbalanced quote
# characters that are text, not quoting. Any other delimiter (CSV) follows RFC 4180: a quoted field may
# hold the delimiter, doubled quotes and line breaks, so a record can span several lines.

CSV_FIELD_LIMIT = 16 * 1024 * 1024
"""Longest field a CSV record may hold (characters); more is almost always a quote never closed."""


class _LineFeed:
    """Lines for ``csv.reader`` that remember the number of the last line handed out."""

    def __init__(self, lines: Iterator[tuple[int, str]]):
        self._lines = lines
        self.lineno = 0

    def __iter__(self) -> "_LineFeed":
        return self

    def __next__(self) -> str:
        self.lineno, line = next(self._lines)
        return line


def iter_delimited(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the record's first line, fields), skipping blank lines."""
    if delimiter == "\t":
        for lineno, line in text_lines(path):
            yield lineno, line.split("\t")
        return
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    feed = _LineFeed(_utf8_lines(path))
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    while True:
        start = feed.lineno + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if "unexpected end of data" in message:
                what = f"line {start} opens a quoted field that is never closed (the file ends inside it)"
            elif "field larger than field limit" in message:
                what = (f"line {start} starts a field longer than {CSV_FIELD_LIMIT:,} characters "
                        f"(a quoted field never closed?)")
            else:
                what = f"line {feed.lineno} is not valid CSV ({message})"
            raise UserError(what, str(path), "close or double the quote characters (RFC 4180: a field with "
                                             "quotes, delimiters or line breaks is enclosed in \"...\", and a quote "
                                             "inside it is written \"\")") from None
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        yield start, fields


def _read_delimited(path: Path, delimiter: str,
                    columns: list[str] | None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    rows = iter_delimited(path, delimiter)
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

    def batches() -> Iterator[pa.RecordBatch]:
        chunk: list[list[str]] = [[] for _ in range(width)]
        for lineno, fields in rows:
            if len(fields) != width:
                raise UserError(f"line {lineno} has {len(fields)} fields, expected {width}", str(path),
                                "fix the ragged row, or give the column list with --columns if the file has no header")
            for col, value in zip(chunk, fields):
                col.append(value)
            if len(chunk[0]) >= _CHUNK_ROWS:
                yield _batch(chunk, header)
                chunk = [[] for _ in range(width)]
        if chunk[0]:
            yield _batch(chunk, header)

    return pa.schema([(h, pa.string()) for h in header]), batches()


# -- JSON Lines and JSON arrays ----------------------------------------------------------------------
# One object per line (JSON Lines), or a file holding one array of objects (.json). Every value is kept
# with its JSON type; a key whose values are not all of one kind (or are lists/objects) becomes a string
# column. The field metadata says which kinds a key holds and where each first appears, so that a text or
# label column can refuse them with the line number (``_typed_problem``), while unused keys never matter.
# Every JSON field carries that metadata, so a refusal always names the line.

JSON_KINDS = b"bertdistill_json_kinds"
"""Field metadata of a JSON key: the kinds of its values with where each first appears, e.g. ``text:line 1``."""


_KINDS = {str: "text", bool: "boolean", int: "number", float: "number", list: "list", dict: "object"}


def _json_kind(value: Any) -> str | None:
    return None if value is None else _KINDS[type(value)]


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"key {twice!r} appears twice in one object")
    return out


def _json_decoder():
    """One decoder for a whole file (json.loads with options builds one per call): strict JSON, no NaN or
    Infinity, no key twice in an object."""
    import json

    return json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


def _json_value(decoder, text: str, path: Path, where: str) -> Any:
    import json

    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno})", str(path),
                        "write one JSON object per line (JSON Lines)") from None
    except (ValueError, RecursionError) as exc:
        problem = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise UserError(f"{where} is not valid JSON ({problem})", str(path),
                        "write one JSON object per line (JSON Lines)") from None


def _json_records(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, record) of a JSON Lines file, or of a .json file holding one array of objects."""
    lines = _utf8_lines(path)
    first = None
    for lineno, line in lines:
        if line.strip():
            first = (lineno, line)
            break
    if first is None:
        return
    if first[1].lstrip().startswith("["):  # one JSON array (a .json export), read whole
        text = "\n" * (first[0] - 1) + first[1] + "".join(line for _, line in lines)
        import json

        try:
            records = _json_decoder().decode(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"line {exc.lineno} is not valid JSON ({exc.msg} at column {exc.colno})", str(path),
                            "write a JSON array of objects, or one object per line") from None
        except (ValueError, RecursionError) as exc:
            raise UserError(f"not valid JSON ({exc if isinstance(exc, ValueError) else 'nested too deeply'})",
                            str(path), "write a JSON array of objects, or one object per line") from None
        for k, record in enumerate(records, 1):
            if not isinstance(record, dict):
                raise UserError(f"record {k} of the array is a JSON {_json_kind(record) or 'null'}, not an object",
                                str(path), "write every record as an object of column: value")
            yield f"record {k}", record
        return
    decoder = _json_decoder()
    for lineno, line in itertools.chain([first], lines):
        if not line.strip():
            continue
        record = _json_value(decoder, line, path, f"line {lineno}")
        if not isinstance(record, dict):
            raise UserError(f"line {lineno} is a JSON {_json_kind(record) or 'null'}, not an object", str(path),
                            "write one object of column: value per line (JSON Lines)")
        yield f"line {lineno}", record


def _read_json(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    records = _json_records(path)
    first_chunk = list(itertools.islice(records, _CHUNK_ROWS))
    # The columns are the keys of the first chunk of records, in order of first appearance.
    names = list(dict.fromkeys(key for _, record in first_chunk for key in record))
    kinds: dict[str, dict[str, str]] = {name: {} for name in names}  # key → {kind: where it first appears}

    def batches() -> Iterator[pa.RecordBatch]:
        chunk = first_chunk
        while chunk:
            columns = {name: [record.get(name) for _, record in chunk] for name in names}
            for name, values in columns.items():
                seen = kinds[name]
                for kind in {_KINDS[type(v)] for v in values if v is not None} - seen.keys():
                    # where this kind first appears in the chunk (the rare case: scanned once per new kind)
                    seen[kind] = next(w for (w, _), v in zip(chunk, values) if _json_kind(v) == kind)
            arrays = [_json_column(columns[n], kinds[n]) for n in names]
            yield pa.RecordBatch.from_arrays(arrays, schema=pa.schema(
                [_json_field(n, a.type, kinds[n]) for n, a in zip(names, arrays)]))
            chunk = list(itertools.islice(records, _CHUNK_ROWS))

    return pa.schema([(n, pa.string()) for n in names]), batches()


def _json_field(name: str, type_: pa.DataType, kinds: dict[str, str]) -> pa.Field:
    if not kinds:
        return pa.field(name, type_)
    return pa.field(name, type_, metadata={JSON_KINDS: ";".join(f"{k}:{w}" for k, w in kinds.items()).encode()})


def _json_column(values: list, kinds: dict[str, str]) -> pa.Array:
    """A key's values of one batch as an Arrow array (``kinds``: every kind seen so far in the file)."""
    import json

    only = next(iter(kinds)) if len(kinds) == 1 else None
    if only == "text" or not kinds:
        return pa.array(values, type=pa.string())
    if only == "boolean":
        return pa.array(values, type=pa.bool_())
    if only == "number":
        # Whole numbers as int64 when they fit (labels 0/1 stay 0/1); otherwise doubles.
        if all(v is None or (isinstance(v, int) and -2**63 <= v < 2**63) for v in values):
            return pa.array(values, type=pa.int64())
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    # Mixed or nested: kept as text; a text or label column refuses it (_typed_problem).
    return pa.array([None if v is None else v if isinstance(v, str) else _number_text(v)
                     if _json_kind(v) == "number" else json.dumps(v, ensure_ascii=False) for v in values],
                    type=pa.string())


def _number_text(value: float | int) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


# -- parquet ---------------------------------------------------------------------------------------

def _read_parquet(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.parquet as pq

    fix = "check that the file is a complete parquet file (re-export it)"
    try:
        parquet = pq.ParquetFile(str(path))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UserError(f"not a readable parquet file ({_first_line(exc)})", str(path), fix) from None

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        iterator = parquet.iter_batches(batch_size=_CHUNK_ROWS)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise UserError(f"rows after row {rows} cannot be read ({_first_line(exc)})", str(path), fix) from None
            rows += batch.num_rows
            yield batch

    return schema, batches()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _batch(chunk: list[list[str]], header: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(c, type=pa.string()) for c in chunk], names=header)


def spec_with(spec: DataSpec, **changes: Any) -> DataSpec:
    """A copy of ``spec`` with some fields changed (e.g. the eval file sharing the column mapping)."""
    from dataclasses import replace

    return replace(spec, **changes)


# ---------------------------------------------------------------------------------------------
# File formats: a suffix → its reader. A new format is one reader and one entry here.


@dataclass(frozen=True)
class FileFormat:
    """Files a reader takes, by suffix (lower case, with the dot)."""

    suffixes: tuple[str, ...]
    read: Callable[[Path, DataSpec], tuple[pa.Schema, Iterator[pa.RecordBatch]]]
    delimiter: str | None = None
    """Delimited text: the field separator (bertdistill.data.texts reads such files line by line too)."""
    note: str = ""
    """Shown after the suffixes in help and error lines, e.g. ``(tab)``."""


FORMATS: tuple[FileFormat, ...] = (
    FileFormat((".tsv", ".txt"), lambda path, spec: _read_delimited(path, "\t", spec.columns), "\t", "(tab)"),
    FileFormat((".csv",), lambda path, spec: _read_delimited(path, ",", spec.columns), ","),
    FileFormat((".jsonl", ".json"), lambda path, spec: _read_json(path)),
    FileFormat((".parquet",), lambda path, spec: _read_parquet(path)),
)


def file_format(path: str | Path) -> FileFormat | None:
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def delimiter_of(path: str | Path) -> str | None:
    """The field separator of a delimited text file, by its suffix (None for other formats)."""
    fmt = file_format(path)
    return None if fmt is None else fmt.delimiter


def formats_help() -> str:
    """The readable file types, for help and error lines: ``.tsv/.txt (tab), .csv, .jsonl/.json or .parquet``."""
    names = [("/".join(f.suffixes) + (f" {f.note}" if f.note else "")) for f in FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
