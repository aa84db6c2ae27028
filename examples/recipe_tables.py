"""The tables of a task recipe (examples/<task>/run.sh), shared by the tasks' collectors: the paper's
comparison on one student (fine-tuned only, KD, PKD, MKDM, TMKD, the best pipeline; mean ± std over
seeds) with its claims checked, and one bench run of the deployed student against the teacher on every
backend with the issue's targets checked. Every number comes from the run's bench JSON files.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

# Target ratios of the headline issue: quality kept, speed against the teacher, quality lost to bf16/int8.
MIN_RETENTION = 0.99
MIN_X_TEACHER_FP32 = 5.0
MIN_X_TEACHER_FASTEST = 2.5
MAX_BACKEND_LOSS_POINTS = 1.0
BACKEND_NAMES = {"torch": "PyTorch fp32", "bf16": "PyTorch bf16 autocast", "onnx-int8": "ONNX Runtime int8",
                 "onnx": "ONNX Runtime fp32"}
METRIC_LABELS = {"map": "MAP", "mrr": "MRR", "accuracy": "accuracy", "f1": "F1"}


def inference(models: list[dict]) -> str:
    """How a quality bench scored its models, e.g. "PyTorch bf16 autocast inference" (the scripts' INFER_BACKEND)."""
    return " and ".join(sorted({BACKEND_NAMES.get(m["backend"], m["backend"]) for m in models})) + " inference"


def other_backends(backends) -> str:
    """The backends a student's fp32 result is compared with, e.g. "bf16 / int8" (bf16 only where it is native)."""
    short = {"bf16": "bf16", "onnx-int8": "int8", "onnx": "ONNX fp32"}
    return " / ".join(short.get(b, b) for b in backends if b != "torch") or "no other backend"


def seed_values(models: list[dict], metrics: tuple[str, ...]) -> dict[str, dict[str, list[float]]]:
    """variant → metric → values over seeds, for models named VARIANT-sSEED."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in models:
        match = re.match(r"^(.*)-s(\d+)$", m["name"])
        if match:
            for k in metrics:
                out[match.group(1)][k].append(m["metrics"][k])
    return out


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values: list[float]) -> str:
    if not values:
        return "–"
    m, sd = mean_sd(values)
    return f"{m:.4f} ± {sd:.4f}"


def train_minutes(out: Path, *run_names: str) -> float | None:
    """Mean training minutes per seed of the runs out/students/NAME-sSEED (summed over the names given:
    a stage-1 run and its stage 2), from their training_record.json; None if any is missing."""
    per_seed: dict[str, float] = defaultdict(float)
    for name in run_names:
        records = sorted(out.glob(f"students/{name}-s[0-9]*/training_record.json"))
        if not records:
            return None
        for record in records:
            seed = record.parent.name.rsplit("-s", 1)[1]
            per_seed[seed] += json.loads(record.read_text())["summary"]["train_seconds"] / 60
    return statistics.mean(per_seed.values())


def paper_table(values: dict, rows: list[tuple[str, str]], metrics: tuple[str, ...], main: str,
                best_teacher: float, minutes: dict[str, float | None] | None = None) -> list[str]:
    """The comparison table, then the paper's ordering checked pair by pair (a step counts as beyond the
    seed spread when the gap in means exceeds the larger of the two standard deviations)."""
    label = METRIC_LABELS.get(main, main)
    minutes = minutes or {}
    head = ("| student | n | " + " | ".join(METRIC_LABELS.get(k, k) for k in metrics)
            + f" | % of best teacher's {label} | training min per seed |")
    lines = [head, "|---|---:|" + "---:|" * (len(metrics) + 2)]
    for key, title in rows:
        vals = values.get(key)
        if not vals:
            lines.append(f"| {title} | 0 | " + " | ".join("–" for _ in metrics) + " | – | – |")
            continue
        share = 100 * statistics.mean(vals[main]) / best_teacher
        mins = f"{minutes[key]:.1f}" if minutes.get(key) is not None else "–"
        lines.append(f"| {title} | {len(vals[main])} | " + " | ".join(fmt(vals[k]) for k in metrics)
                     + f" | {share:.1f}% | {mins} |")
    lines += ["", f"The paper's ordering on {label} (a step is beyond the seed spread when the gap exceeds the larger "
              "standard deviation):"]
    ordered = [(k, t) for k, t in rows if values.get(k)]
    for (k1, t1), (k2, t2) in zip(ordered, ordered[1:]):
        (m1, s1), (m2, s2) = mean_sd(values[k1][main]), mean_sd(values[k2][main])
        gap = 100 * (m2 - m1)
        verdict = ("holds, beyond the spread" if m2 - m1 > max(s1, s2) else
                   "holds, inside the spread" if m2 > m1 else "does not hold")
        lines.append(f"- {t1} → {t2}: {gap:+.2f} points ({verdict}).")
    return lines


def deployed_table(bench: dict, main: str, best_teacher: float, student_seeds: list[float],
                   metric_label: str) -> list[str]:
    """Speed and quality of teacher and student on every backend from one bench run, and the targets."""
    models = bench["models"]
    teacher = {m["backend"]: m for m in models if m["name"].startswith("teacher")}
    student = {m["backend"]: m for m in models if m["name"].startswith("student")}
    fp32 = teacher["torch"]["throughput_ex_s"]["32"]
    fastest_teacher = max(teacher.values(), key=lambda m: m["throughput_ex_s"]["32"])
    fastest_student = max(student.values(), key=lambda m: m["throughput_ex_s"]["32"])
    t_fast = fastest_teacher["throughput_ex_s"]["32"]
    s = bench["settings"]
    lines = [f"One bench run: {bench['machine']['cpu']}, {s['threads']} threads, batch 32 and 1, max length "
             f"{s['max_length']} with real lengths, {s['repeats']} repeats interleaved ({bench['created'][:10]}).", "",
             f"| model | backend | params | GFLOPs/ex | test {metric_label} | ex/s (b32) | × teacher fp32 | "
             "× teacher's fastest | p50 ms (b1) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in models:
        t32 = m["throughput_ex_s"]["32"]
        lines.append(f"| {m['name']} | {BACKEND_NAMES.get(m['backend'], m['backend'])} | {m['params'] / 1e6:.1f}M | "
                     f"{m['flops_per_example'] / 1e9:.3f} | {m['metrics'][main]:.4f} | {t32:.0f} | {t32 / fp32:.2f}× | "
                     f"{t32 / t_fast:.2f}× | {m['latency_ms']['p50']:.1f} |")
    retention = statistics.mean(student_seeds) / best_teacher
    x_fp32 = fastest_student["throughput_ex_s"]["32"] / fp32
    x_fast = fastest_student["throughput_ex_s"]["32"] / t_fast
    ref = student["torch"]["metrics"][main]
    loss = max(100 * (ref - m["metrics"][main]) for b, m in student.items() if b != "torch")

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines += ["", f"Targets (teacher's fastest backend: {BACKEND_NAMES.get(fastest_teacher['backend'])}; student's: "
              f"{BACKEND_NAMES.get(fastest_student['backend'])}):",
              f"- student {metric_label} (mean of {len(student_seeds)} seeds) / best teacher's: "
              f"{statistics.mean(student_seeds):.4f} / {best_teacher:.4f} = {100 * retention:.1f}% "
              f"(target ≥ {100 * MIN_RETENTION:.0f}%): {verdict(retention >= MIN_RETENTION)}.",
              f"- student's fastest backend / teacher's PyTorch fp32 at batch 32: {x_fp32:.2f}× "
              f"(target ≥ {MIN_X_TEACHER_FP32:g}×): {verdict(x_fp32 >= MIN_X_TEACHER_FP32)}.",
              f"- student's fastest backend / teacher's fastest backend at batch 32: {x_fast:.2f}× "
              f"(target ≥ {MIN_X_TEACHER_FASTEST:g}×): {verdict(x_fast >= MIN_X_TEACHER_FASTEST)}.",
              f"- {metric_label} lost to {other_backends(student)} against the student's fp32 (seed 1): at most {loss:.2f} points "
              f"(target ≤ {MAX_BACKEND_LOSS_POINTS:g}): {verdict(loss <= MAX_BACKEND_LOSS_POINTS)}."]
    return lines
