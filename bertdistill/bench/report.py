"""Bench output: the rich table, a Markdown table for RESULTS.md, JSON, and the speed–quality plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bertdistill.bench.run import BenchResult, FastestBackend, ModelResult
from bertdistill.errors import UserError

METRIC_TITLES = {"accuracy": "acc", "f1": "F1", "f1_macro": "F1 (macro)", "map": "MAP", "mrr": "MRR"}


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _params(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.1f}M" if value >= 1e6 else f"{value / 1e3:.1f}K"


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}" if value < 1e7 else f"{value / 1e6:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def table_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """Column titles and formatted cells shared by the terminal and Markdown tables."""
    lat_bs = result.settings["batch_sizes"][0]
    top_bs = result.settings["batch_sizes"][-1]
    columns = ["model", "backend", "params", "GFLOPs/ex", "size MB"]
    columns += [METRIC_TITLES.get(m, m) for m in result.metric_names]
    columns += [f"p50 ms (b{lat_bs})", f"p95 ms (b{lat_bs})"]
    columns += [f"ex/s (b{b})" for b in result.settings["batch_sizes"]]
    columns += [f"speedup (b{top_bs})", f"{METRIC_TITLES.get(result.main_metric, result.main_metric)} retention"]
    rows = []
    for m in result.models:
        name = m.name + (" (baseline)" if m.is_baseline else "")
        cells = [name, m.backend, _params(m.params),
                 "-" if m.flops_per_example is None else f"{m.flops_per_example / 1e9:.3f}", _mb(m.size_bytes)]
        cells += [_num(m.metrics.get(k)) for k in result.metric_names]
        cells += [_num(m.latency_ms.get("p50"), 1), _num(m.latency_ms.get("p95"), 1)]
        cells += [_num(m.throughput_ex_s.get(str(b)), 1) for b in result.settings["batch_sizes"]]
        cells += [_ratio(m.speedup_vs_baseline),
                  "-" if m.retention_vs_baseline is None else f"{100 * m.retention_vs_baseline:.1f}%"]
        rows.append(cells)
    return columns, rows


def fastest_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """One line per model (rows with the same weights): its fastest backend against the baseline's fastest."""
    top_bs = result.settings["batch_sizes"][-1]
    title = METRIC_TITLES.get(result.main_metric, result.main_metric)
    columns = ["model (fastest row)", "backends timed", f"ex/s (b{top_bs})", title,
               f"× {result.baseline}'s fastest", "(paired median)", f"{title} retention",
               f"vs {result.baseline}'s best {title}", f"{title} spread over backends"]
    rows = []
    for f in result.fastest:
        rows.append([f.model, str(len(f.rows)), _num(f.throughput_ex_s, 1), _num(f.main_metric),
                     _ratio(f.speedup_vs_baseline_fastest), _ratio(f.speedup_paired_median),
                     "-" if f.retention_vs_baseline_fastest is None else f"{100 * f.retention_vs_baseline_fastest:.1f}%",
                     "-" if f.retention_vs_baseline_best is None else f"{100 * f.retention_vs_baseline_best:.1f}%",
                     _num(f.metric_spread)])
    return columns, rows


def caption(result: BenchResult) -> list[str]:
    d, s, mach = result.data, result.settings, result.machine
    synced = ", GPU synchronized around each call" if s.get("synchronized") else ""
    lengths = f"fixed length {s['seq_len']}" if s["seq_len"] else f"real lengths (max {s['max_length']})"
    lines = [f"data: {d['source']} ({d['kind']}, {d['rows']} rows, sha256 {d['fingerprint'][:12]})",
             f"machine: {mach['cpu']}, {s['threads']} threads, torch {mach['torch']}, "
             f"onnxruntime {mach['onnxruntime']}; {s['warmup']} warm-up + {s['repeats']} timed calls per "
             f"model and batch size, interleaved{synced}; {lengths}",
             f"device: {mach.get('device', 'cpu')} ({mach.get('device_name', mach['cpu'])})"]
    return lines + list(result.notes)


def print_result(result: BenchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    from bertdistill.ui import console

    if not console.is_terminal:
        # Piped output (logs, CI) would be squeezed to 80 columns and the figures cut off.
        console = Console(width=max(console.width, 220), highlight=False)
    columns, rows = table_rows(result)
    table = Table(title="bench", caption="\n".join(caption(result)), caption_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if result.fastest:
        columns, rows = fastest_rows(result)
        table = Table(title="each model at its fastest backend")
        for col in columns:
            table.add_column(col, justify="left" if col.startswith("model") else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def to_markdown(result: BenchResult) -> str:
    columns, rows = table_rows(result)
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if c in ("model", "backend") else "---:" for c in columns) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    if result.fastest:
        columns, rows = fastest_rows(result)
        lines += ["", "Each model at its fastest backend:", "",
                  "| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.append("")
    lines += [f"- {line}" for line in caption(result)]
    return "\n".join(lines) + "\n"


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib, which is not installed", "--plot",
                        "pip install 'bertdistill[plot]' (or leave out --plot)") from None


def write_plot(result: BenchResult, path: str | Path) -> None:
    """Speed–quality chart: throughput at the largest batch (x) against the main metric (y)."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from bertdistill.io import check_writable_parent

    path = Path(path)
    check_writable_parent(path)
    top_bs = result.settings["batch_sizes"][-1]
    metric = result.main_metric
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    try:
        points = [(m, m.throughput_ex_s.get(str(top_bs)), m.metrics.get(metric)) for m in result.models]
        points = [(m, x, y) for m, x, y in points if x is not None and y is not None and math.isfinite(x)]
        xs, ys = [x for _, x, _ in points], [y for _, _, y in points]
        x_span = (max(xs) - min(xs)) or 1.0 if xs else 1.0
        y_span = (max(ys) - min(ys)) or 1.0 if ys else 1.0
        for k, (m, x, y) in enumerate(points):
            ax.scatter([x], [y], s=40, marker="*" if m.is_baseline else "o", zorder=3)
            # Models that land on (almost) the same spot, e.g. fp32 and bf16 of one model: stack labels.
            close = sum(1 for _, x2, y2 in points[:k]
                        if abs(x2 - x) < 0.08 * x_span and abs(y2 - y) < 0.08 * y_span)
            ax.annotate(m.name, (x, y), textcoords="offset points", xytext=(6, 4 - 12 * close), fontsize=9)
        ax.set_xlabel(f"throughput at batch {top_bs} (examples/s, {result.settings['threads']} threads)")
        ax.set_ylabel(METRIC_TITLES.get(metric, metric))
        ax.set_title(f"speed vs quality — {Path(result.data['source']).name}")
        ax.grid(True, alpha=0.3)
        ax.margins(0.15)
        fig.tight_layout()
        # Write next to the target, then rename: a crash never leaves half a PNG.
        tmp = path.with_name(f".{path.name}.tmp-{id(fig)}.png")
        fig.savefig(tmp, format="png")
        tmp.replace(path)
    finally:
        plt.close(fig)


def write_outputs(result: BenchResult, json_path: str | Path | None = None,
                  markdown_path: str | Path | None = None, plot_path: str | Path | None = None) -> None:
    from bertdistill.io import atomic_write_text, mark_written, write_json

    if json_path:
        write_json(json_path, result.to_dict())
        mark_written(json_path, "bench")
    if markdown_path:
        atomic_write_text(markdown_path, to_markdown(result))
        mark_written(markdown_path, "bench")
    if plot_path:
        write_plot(result, plot_path)
        mark_written(plot_path, "bench")


def result_from_dict(data: dict[str, Any]) -> BenchResult:
    """Rebuild a result from its JSON (e.g. to re-render a table or plot without re-running)."""
    if data.get("schema") != "bertdistill.bench":
        raise UserError("not a bertdistill bench result", None, "pass a file written by bench --json")
    fields = dict(data)
    fields["models"] = [ModelResult(**m) for m in data["models"]]
    fields["fastest"] = [FastestBackend(**f) for f in data.get("fastest", [])]
    return BenchResult(**fields)
