"""Text sources for corpus building: ``FILE[:COLUMN[,COLUMN...]]`` read as a stream of texts, and the
normalization that exclusion and deduplication compare on.

A source names a file and, optionally, which of its columns hold the texts:

* ``FILE:COLUMN`` names a column of a file with a header (.tsv/.txt tab-separated, .csv) or a field
  of .jsonl/.json/.parquet records; ``FILE:sentence1,sentence2`` takes both.
* ``FILE:N`` (numbers) picks the N-th field (from 1) of every line of a headerless delimited file
  (.txt/.tsv tab-separated, .csv), e.g. ``WikiQA-train.txt:2`` for WikiQA's sentences.
* ``FILE`` alone: a ``.txt`` file is one text per line (a line with a tab is refused, but an
  excluded ``.txt`` contributes every field that is not a number); in other files the usual column
  names are tried (the ones ``--text-a`` / ``--text-b`` detection uses): queries take the first-text
  column (question, query, sentence1, ...), passages the second-text column (passage, sentence,
  sentence2, ...) or else the first, excluded files both.

Files are read batch by batch through :class:`bertdistill.data.sources.CanonicalStream`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bertdistill.data.sources import CanonicalStream, DataSpec, delimiter_of, formats_help
from bertdistill.errors import UserError

ROLES = ("query", "passage", "exclude")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")
_NON_WORD = re.compile(r"[\W_]+")


def normalize_text(text: str) -> str:
    """Lowercase, collapse whitespace and strip punctuation (and spaces) at both ends."""
    text = " ".join(text.lower().split())
    start, end = 0, len(text)
    while start < end and _edge(text[start]):
        start += 1
    while end > start and _edge(text[end - 1]):
        end -= 1
    return text[start:end]


def text_key(text: str) -> str:
    """What exclusion and deduplication compare: the normalized text without any space or punctuation
    inside either, so tokenized and raw copies of a sentence match ("it 's here ." = "It's here")."""
    return _NON_WORD.sub("", normalize_text(text))


def _edge(ch: str) -> bool:
    return ch == " " or unicodedata.category(ch).startswith("P")


@dataclass
class TextSource:
    """A file and the columns whose texts it contributes (None: the default for its role)."""

    path: str
    columns: list[str] | None = None

    def describe(self) -> str:
        return self.path + (":" + ",".join(self.columns) if self.columns else "")

    @property
    def numbered(self) -> bool:
        """Fields picked by number (a headerless delimited file)."""
        return bool(self.columns) and all(c.isdigit() for c in self.columns)


def parse_text_source(text: str, option: str = "--passages") -> TextSource:
    """``FILE`` or ``FILE:COLUMN[,COLUMN...]``; a path that exists as given is never split."""
    text = str(text)
    if not text.strip():
        raise UserError(f"empty {option} value", None, f"write {option} FILE or {option} FILE:COLUMN")
    if os.path.exists(text) or ":" not in text:
        return TextSource(text)
    path, _, cols = text.rpartition(":")
    columns = [c.strip() for c in cols.split(",")]
    if not path or not all(columns):
        raise UserError(f"cannot read {text!r} as FILE:COLUMN", None,
                        f"write {option} FILE or {option} FILE:COLUMN[,COLUMN]")
    return TextSource(path, columns)


def iter_texts(source: TextSource, role: str) -> Iterator[str]:
    """The non-empty texts of ``source`` for ``role`` (query, passage or exclude), in file order.

    Refuses (``UserError``) an unreadable file, a missing column, and a source with no usable text
    (every value empty or a number, e.g. a label column) - the last only once the file is read.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    path = Path(source.path)
    _check_readable(path)
    delimiter = delimiter_of(path)
    if source.columns and not source.numbered and any(c.isdigit() for c in source.columns):
        raise UserError("columns mix names and field numbers", source.describe(),
                        "use names (file with a header) or numbers (headerless file), not both")
    if delimiter and (source.numbered or (not source.columns and path.suffix.lower() == ".txt")):
        texts = _iter_lines(source, role, delimiter)
    else:
        texts = _iter_columns(source, role)
    usable = 0
    for text in texts:
        if not text.strip():
            continue
        if not usable and _NUMBER.fullmatch(text.strip()):
            yield text  # a number among texts is kept; a column of numbers only is refused below
            continue
        usable += 1
        yield text
    if usable == 0:
        raise UserError(f"no usable text in {_what_columns(source)} (every value is empty or a number)",
                        source.describe(), "pick a text column with FILE:COLUMN")


def _what_columns(source: TextSource) -> str:
    if source.columns:
        return ("column " if len(source.columns) == 1 else "columns ") + ", ".join(source.columns)
    return "the file"


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise UserError("file not found", str(path), "check the path (pick columns with FILE:COLUMN)")
    if path.is_dir():
        raise UserError("is a folder, not a file", str(path), f"point to a {formats_help()} file")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror or type(exc).__name__})", str(path),
                        "check the file's permissions") from None


def _iter_lines(source: TextSource, role: str, delimiter: str) -> Iterator[str]:
    """Lines of a headerless file: whole lines (.txt), or 1-based delimited fields (``FILE:N``)."""
    fields: list[int] | None = None
    if source.columns:
        if any(int(c) < 1 for c in source.columns):
            raise UserError("field numbers start at 1", source.describe(), "write FILE:1 for the first field")
        fields = [int(c) - 1 for c in source.columns]
    from bertdistill.data.sources import iter_delimited, text_lines

    if fields is not None:  # records as the data reader reads them (CSV: quoted fields may span lines)
        for lineno, parts in iter_delimited(Path(source.path), delimiter):
            if max(fields) >= len(parts):
                raise UserError(f"line {lineno} has {len(parts)} fields, field {max(fields) + 1} was asked for",
                                source.describe(), "pick an existing field number")
            for k in fields:
                yield parts[k]
        return
    for lineno, line in text_lines(Path(source.path)):
        if "\t" in line:
            if role != "exclude":
                raise UserError(f"line {lineno} holds tabs: this is a tab-separated file, not one text per line",
                                source.describe(),
                                "pick a field with FILE:N (e.g. FILE:2), or a column FILE:NAME if it has a header")
            for part in line.split("\t"):
                if not _NUMBER.fullmatch(part.strip()):
                    yield part
        else:
            yield line


def _iter_columns(source: TextSource, role: str) -> Iterator[str]:
    """Texts of a data file (.tsv/.csv/.jsonl/.json/.parquet), column by column."""
    if source.columns:
        for column in source.columns:
            stream = _stream(DataSpec(path=source.path, text_a=column, task="single", unlabeled=True), source)
            yield from _texts(stream, ["text_a"])
        return
    stream = _stream(DataSpec(path=source.path, unlabeled=True), source)
    has_b = "text_b" in stream.column_map
    keys = {"query": ["text_a"], "passage": ["text_b" if has_b else "text_a"],
            "exclude": ["text_a", "text_b"] if has_b else ["text_a"]}[role]
    yield from _texts(stream, keys)


def _stream(spec: DataSpec, source: TextSource) -> CanonicalStream:
    try:
        return CanonicalStream(spec)
    except UserError as exc:
        # The reader speaks of --text-a; here columns are picked after the file name.
        fix = (exc.fix or "").replace("use --text-a with", "write FILE:COLUMN with") \
            .replace("name one with --text-a", "name one as FILE:COLUMN")
        what = exc.what.replace("no column found for --text-a", "no text column found")
        raise UserError(what, source.describe() if exc.where == source.path else exc.where, fix) from None


def _texts(stream: CanonicalStream, keys: list[str]) -> Iterator[str]:
    for batch in stream:
        for key in keys:
            yield from batch.column(key).to_pylist()
