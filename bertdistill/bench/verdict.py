"""Does each student answer as well as the teacher, several times faster? A verdict from a bench's JSON that does
not hang on which backend wins a timing race:

* the teacher's metric is its best over all its backends (whichever of them was timed fastest);
* a student's metric is its lowest over the backends within ``CONTENDERS`` of its fastest throughput: any of
  those could have won the race, so the verdict holds for each;
* the speed is the paired median (per timed round, the same batch through the student's fastest and the
  teacher's fastest backend), which a shared machine's slow moments sway less than the ratio of mean
  throughputs (also given). Near a tie the speed ratio barely moves whichever backend won.

Used by ``distill``'s report and its last lines (the recipe's ``targets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection

CONTENDERS = 0.90
"""Backends within this share of a model's fastest throughput count as possible winners of its timing."""


@dataclass
class Verdict:
    model: str
    """the student's fastest row"""
    backend: str
    throughput: float
    """its examples/s at the largest batch size"""
    speedup: float
    """× the teacher's fastest backend, paired median (the ratio of mean throughputs where not timed paired)"""
    speedup_means: float | None
    metric: float
    """the lowest metric among ``contenders``"""
    metric_row: str
    contenders: list[str]
    teacher_best: float
    teacher_best_row: str
    teacher_backend: str
    teacher_throughput: float
    retention: float
    """metric / teacher_best"""
    met: bool | None
    """both targets given are met; None when no target is set"""


def judge(result: dict[str, Any], retention: float | None = None, speedup: float | None = None,
          students: Collection[str] | None = None) -> list[Verdict]:
    """One verdict per student (the models with a row in ``students``; by default every model but the baseline),
    against the targets given (share of the teacher's metric, × the teacher's fastest backend)."""
    main = result["main_metric"]
    top_bs = str(result["settings"]["batch_sizes"][-1])
    rows = {m["name"]: m for m in result["models"]}

    def metric(row: str, missing: float) -> float:
        value = rows[row]["metrics"].get(main)
        return missing if value is None else value

    teacher = next((f for f in result.get("fastest", []) if result["baseline"] in f["rows"]), None)
    if teacher is None:
        return []
    teacher_best_row = max(teacher["rows"], key=lambda r: metric(r, float("-inf")))
    teacher_best = metric(teacher_best_row, float("nan"))
    out = []
    for s in result["fastest"]:
        if s is teacher or (students is not None and not set(s["rows"]) & set(students)):
            continue
        top = s["throughput_ex_s"] or 0.0
        contenders = [r for r in s["rows"] if (rows[r]["throughput_ex_s"].get(top_bs) or 0.0) >= CONTENDERS * top]
        worst = min(contenders or [s["model"]], key=lambda r: metric(r, float("inf")))
        value = metric(worst, float("nan"))
        ratio = s.get("speedup_paired_median") or s.get("speedup_vs_baseline_fastest") or 0.0
        share = value / teacher_best if teacher_best else float("nan")
        checks = [share >= retention] if retention is not None else []
        checks += [ratio >= speedup] if speedup is not None else []
        out.append(Verdict(model=s["model"], backend=s["backend"], throughput=top, speedup=ratio,
                           speedup_means=s.get("speedup_vs_baseline_fastest"), metric=value, metric_row=worst,
                           contenders=contenders, teacher_best=teacher_best, teacher_best_row=teacher_best_row,
                           teacher_backend=teacher["backend"], teacher_throughput=teacher["throughput_ex_s"] or 0.0,
                           retention=share, met=all(checks) if checks else None))
    return out


def verdict_lines(result: dict[str, Any], retention: float | None = None, speedup: float | None = None,
                  students: Collection[str] | None = None) -> list[str]:
    """The teacher's line, then one line per student: its figures and the targets met or missed."""
    main = result["main_metric"]
    name = main.upper() if main == "map" else main
    top_bs = result["settings"]["batch_sizes"][-1]
    verdicts = judge(result, retention, speedup, students)
    if not verdicts:
        return []
    v0 = verdicts[0]
    lines = [f"teacher at its fastest backend ({v0.teacher_backend}): {v0.teacher_throughput:.0f} ex/s at batch "
             f"{top_bs}; its best test {name} over its backends: {v0.teacher_best:.4f} ({v0.teacher_best_row})"]
    targets = " at ".join(t for t in (f"≥ {100 * retention:.0f}%" if retention is not None else "",
                                      f"≥ {speedup:g}×" if speedup is not None else "") if t)
    for v in verdicts:
        near = [r for r in v.contenders if r != v.model]
        means = f"; ratio of mean throughputs {v.speedup_means:.2f}×" if v.speedup_means else ""
        judged = f"targets {targets}: {'met' if v.met else 'MISSED'}" if v.met is not None else "no targets set"
        lines.append(f"{v.model} at its fastest backend ({v.backend}): {v.throughput:.0f} ex/s, {v.speedup:.2f}× "
                     f"the teacher's fastest (paired median{means}), test {name} {v.metric:.4f} ({v.metric_row}"
                     + (f", the lowest of {', '.join(v.contenders)}: within {100 - 100 * CONTENDERS:.0f}% of its "
                        f"fastest" if near else "")
                     + f") = {100 * v.retention:.1f}% of the teacher's best ({judged})")
    return lines
