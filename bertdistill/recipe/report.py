"""The end of a recipe: ``report.md`` — teachers, students (mean ± std over seeds), every backend benched,
the targets met or missed, and the wall time of every step; the bench's speed–quality PNG is linked."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from bertdistill.io import atomic_write_text, read_json
from bertdistill.recipe.plan import Plan

REPORT_FILE = "report.md"


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} (n={len(values)})"


def _dev_metrics(folder: Path) -> dict[str, float]:
    try:
        record = read_json(folder / "training_record.json")
    except Exception:  # noqa: BLE001 - a folder without a record reports no metrics
        return {}
    report = (record.get("summary") or {}).get("dev_report") or {}
    student = report.get("student") or {}
    return {k: v for k, v in student.items() if k != "step" and isinstance(v, (int, float))}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def student_summary(plan: Plan) -> dict[str, str]:
    """Each dev metric of the stage-2 students: mean ± std over the seeds."""
    folders = [s.output for s in plan.steps if s.role == "student"]
    per = [_dev_metrics(f) for f in folders]
    keys = list(dict.fromkeys(k for m in per for k in m))
    return {k: mean_std([m.get(k) for m in per]) for k in keys}


def _bench(plan: Plan) -> dict[str, Any] | None:
    step = next((s for s in plan.steps if s.kind == "bench"), None)
    if step is None or not step.output.is_file():
        return None
    return read_json(step.output)


def targets_lines(plan: Plan, bench: dict[str, Any]) -> list[str]:
    """The verdict (``bench.verdict``): the teacher at its fastest backend and its best metric over its backends,
    then each student at its fastest with the recipe's targets met or missed."""
    from bertdistill.bench.verdict import verdict_lines

    t = plan.recipe.targets
    students = [m["name"] for m in bench.get("models", []) if m["name"].startswith("student")]
    return verdict_lines(bench, t.retention, t.speedup, students)


def final_lines(plan: Plan, seconds: float) -> list[str]:
    """What ``distill`` prints last: the verdict when the recipe benched, and this run's wall time."""
    bench = _bench(plan)
    lines = [""] + targets_lines(plan, bench) if bench is not None else []
    minutes, rest = divmod(round(seconds), 60)
    return lines + [f"wall time of this run: {minutes} min {rest} s"]


def write_report(plan: Plan, outcomes) -> Path:
    recipe = plan.recipe
    lines = [f"# Distillation report: {plan.root}", "",
             f"Made by `bertdistill distill`; max length {recipe.max_length}, mixed precision "
             f"{recipe.mixed_precision or 'default'}, seeds {recipe.seeds}.", "", "## Teachers", ""]
    rows = []
    for name, path in plan.teachers.items():
        trained = any(s.name == f"teacher {name}" for s in plan.steps)
        metrics = _dev_metrics(Path(path)) if trained else {}
        rows.append([name, str(path), "fine-tuned here" if trained else "given",
                     ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "–"])
    lines += _table(["teacher", "folder", "origin", "dev metrics"], rows)
    lines += ["", "## Students (stage 2, dev set)", ""]
    students = [s for s in plan.steps if s.role == "student"]
    rows = [[str(s.seed), str(s.output), ", ".join(f"{k} {v:.4f}" for k, v in _dev_metrics(s.output).items()) or "–"]
            for s in students]
    lines += _table(["seed", "folder", "dev metrics"], rows)
    summary = student_summary(plan)
    if summary:
        lines += ["", "Mean ± std over the seeds: " + "; ".join(f"{k} {v}" for k, v in summary.items())]
    bench = _bench(plan)
    if bench is not None:
        metric = bench.get("main_metric")
        lines += ["", f"## Bench (test set, {metric})", ""]
        rows = [[m["name"], m["backend"], f"{m['metrics'].get(metric, float('nan')):.4f}",
                 " / ".join(f"{v:.1f}" for v in m.get("throughput_ex_s", {}).values()),
                 f"{m['speedup_vs_baseline']:.2f}" if m.get("speedup_vs_baseline") else "–"]
                for m in bench.get("models", [])]
        lines += _table(["model", "backend", metric, "examples/s (per batch size)", "speedup"], rows)
        by_backend: dict[str, list[float]] = {}
        for m in bench.get("models", []):
            if m["name"].startswith("student"):
                by_backend.setdefault(m["backend"], []).append(m["metrics"].get(metric))
        if len(students) > 1:
            lines += ["", "Students per backend, mean ± std over the seeds: "
                      + "; ".join(f"{b} {mean_std(v)}" for b, v in by_backend.items())]
        lines += ["", "## Targets", ""] + (["- " + line for line in targets_lines(plan, bench)] or ["- none"])
        png = plan.root / "bench.png"
        if png.is_file():
            lines += ["", "![speed vs quality](bench.png)"]
    lines += ["", "## Steps", ""]
    lines += _table(["step", "status", "seconds", "output"],
                    [[o.name, o.status, f"{o.seconds:.1f}", o.output] for o in outcomes])
    lines += ["", f"Total wall time of the steps: {sum(o.seconds for o in outcomes):.1f} s "
                  "(a skipped step counts the time it took when it ran)."]
    path = plan.root / REPORT_FILE
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
