"""Turn a recipe's bench JSON files into the RESULTS tables: teachers, students (mean ± std over
seeds), speed, and the issue's targets checked against what came out.

    python examples/collect_results.py --task wikiqa --out runs/wikiqa --metric map
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

VARIANTS = {"a-finetune": "(a) fine-tuned only", "b-kd": "(b) KD, 1 teacher", "c-pkd": "(c) PKD, 1 teacher",
            "d-mkdm": "(d) MKDM: 3 teachers, stage 2 only", "e-tmkd": "(e) TMKD: stage 1 + stage 2, PKD"}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--metric", default="map")
    args = ap.parse_args()
    quality = json.loads((args.out / "bench-quality.json").read_text())
    metrics = [m for m in ("map", "mrr", "accuracy", "f1") if m in quality["metric_names"]]
    main_metric = args.metric

    teachers = {m["name"]: m["metrics"] for m in quality["models"] if m["name"].startswith("teacher")}
    by_variant: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in quality["models"]:
        match = re.match(r"^(.*)-s(\d+)$", m["name"])
        if match and match.group(1) in VARIANTS:
            for k in metrics:
                by_variant[match.group(1)][k].append(m["metrics"][k])

    lines = [f"## {args.task}: test-set quality ({quality['data']['source']}, {quality['data']['rows']} rows)", ""]
    if quality["data"].get("queries_without_positive") is not None:
        lines += [f"MAP/MRR over the {quality['data']['queries_scored']} questions with a correct answer "
                  f"({quality['data']['queries_without_positive']} without one are left out, WikiQA convention).", ""]
    lines += ["| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name, ms in teachers.items():
        lines.append(f"| {name} (MiniLM-L6) | " + " | ".join(f"{ms[k]:.4f}" for k in metrics) + " |")
    seeds = 0
    for key, title in VARIANTS.items():
        if key not in by_variant:
            continue
        vals = by_variant[key]
        seeds = max(seeds, len(vals[metrics[0]]))
        cells = [f"{mean_std(vals[k])[0]:.4f} ± {mean_std(vals[k])[1]:.4f}" for k in metrics]
        lines.append(f"| {title} (3 layers, n={len(vals[metrics[0]])}) | " + " | ".join(cells) + " |")
    lines += ["", f"Students: mean ± standard deviation over {seeds} seeds."]

    speed_path = args.out / "bench-speed.json"
    speed = json.loads(speed_path.read_text()) if speed_path.exists() else None
    if speed:
        bs = [str(b) for b in speed["settings"]["batch_sizes"]]
        lines += ["", f"## {args.task}: speed (threads={speed['machine']['threads']}, {speed['machine']['cpu']})", "",
                  "| model | backend | params | MB | " + main_metric + " | p50 ms (b1) | "
                  + " | ".join(f"ex/s (b{b})" for b in bs) + " | speedup | retention |",
                  "|---|---|---|---|---|---|" + "---|" * len(bs) + "---|---|"]
        for m in speed["models"]:
            lat = m["latency_ms"]["p50"] if m.get("latency_ms") else None
            lines.append(f"| {m['name']} | {m['backend']} | {m['params'] / 1e6:.1f}M | {m['size_bytes'] / 1e6:.0f} | "
                         f"{m['metrics'][main_metric]:.4f} | {lat:.1f} | "
                         + " | ".join(f"{m['throughput_ex_s'][b]:.1f}" for b in bs)
                         + f" | {m['speedup_vs_baseline']:.2f}× | {100 * m['retention_vs_baseline']:.1f}% |")

    lines += ["", f"## {args.task}: targets", ""]
    best_teacher = max(ms[main_metric] for ms in teachers.values()) if teachers else None
    mean = {k: mean_std(v[main_metric]) for k, v in by_variant.items()}
    if best_teacher and "e-tmkd" in mean:
        ratio = mean["e-tmkd"][0] / best_teacher
        lines.append(f"- TMKD student ≥ 99% of the best teacher's {main_metric.upper()}: {ratio:.1%} "
                     f"({'met' if ratio >= 0.99 else 'missed'})")
    if "e-tmkd" in mean and "a-finetune" in mean:
        gain = 100 * (mean["e-tmkd"][0] - mean["a-finetune"][0])
        lines.append(f"- TMKD ≥ 2 {main_metric.upper()} points above fine-tuned only: {gain:+.2f} points "
                     f"({'met' if gain >= 2 else 'missed'})")
    order = [k for k in ("a-finetune", "b-kd", "c-pkd", "e-tmkd") if k in mean]
    if len(order) == 4:
        steps = []
        for lo, hi in zip(order, order[1:]):
            diff = mean[hi][0] - mean[lo][0]
            spread = mean[hi][1] + mean[lo][1]
            steps.append(f"{lo} → {hi}: {100 * diff:+.2f} points (seed spread {100 * spread:.2f}; "
                         f"{'holds' if diff > spread else 'does not hold beyond the spread'})")
        lines.append("- Ordering fine-tune < KD < PKD < TMKD: " + "; ".join(steps))
    if speed:
        models = {m["name"]: m for m in speed["models"]}
        big = str(max(speed["settings"]["batch_sizes"]))
        if "teacher" in models and "tmkd-int8" in models:
            t, s = models["teacher"], models["tmkd-int8"]
            tmkd_torch = models.get("tmkd", s)
            x = s["throughput_ex_s"][big] / t["throughput_ex_s"][big]
            lost = 100 * (tmkd_torch["metrics"][main_metric] - s["metrics"][main_metric])
            lines.append(f"- int8 export ≥ 5× the teacher's PyTorch fp32 throughput at batch {big}: {x:.2f}× "
                         f"({'met' if x >= 5 else 'missed'}); {main_metric.upper()} lost by int8: {lost:.2f} points "
                         f"({'met' if lost <= 1 else 'missed'})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
