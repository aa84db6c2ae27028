"""Console output: rich tables and progress bars (stderr-safe, plain when not a terminal)."""

from __future__ import annotations

import json
from typing import Any, Iterable

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_summary(summary: dict[str, Any], title: str = "data") -> None:
    table = Table(title=f"{title}: {summary.get('source', '')}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if key == "source":
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        table.add_row(key, str(value))
    console.print(table)


def progress(*extra: str, transient: bool = False) -> Progress:
    """A progress bar with count, rate fields given as ``extra`` task fields, elapsed time and ETA."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(f"{name}={{task.fields[{name}]}}") for name in extra]
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    return Progress(*columns, console=err_console, transient=transient)


def print_table(rows: Iterable[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col not in ("model", "name") else "left")
    for row in rows:
        table.add_row(*[_fmt(row.get(col)) for col in columns])
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
