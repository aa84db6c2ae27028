"""Turn the MRPC prune study (examples/mrpc/study.sh) into its RESULTS tables: quality of the pruned,
random-init and first-3-layer students (mean ± std over seeds), params, FLOPs and speed from one bench run,
and issue 14's targets checked against what came out; with --recipe, the recipe's tables instead
(examples/mrpc/run.sh: the paper's comparison and the deployed student).

    python examples/mrpc/collect_study.py --out runs/mrpc-study > runs/mrpc-study/STUDY.generated.md
    python examples/mrpc/collect_study.py --out runs/mrpc-study --recipe > runs/mrpc-study/RECIPE.generated.md
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recipe_tables import deployed_table, inference, paper_table, seed_values, train_minutes  # noqa: E402

SHAPES = {"a-pruned": ("(a) pruned from t1: 3L / 256 / 8 heads / FFN 1024", "pruned"),
          "b-random": ("(b) same shape, random init", "pruned"),
          "c-first3": ("(c) first 3 layers of t1, full width (384)", "first3")}
DISTILLATIONS = {"": "2-teacher KD + PKD-skip", "-kd": "2-teacher KD alone"}
STUDENTS = {key + suffix: (f"{title}, {how}", speed_name)
            for suffix, how in DISTILLATIONS.items() for key, (title, speed_name) in SHAPES.items()}
# The recipe's comparison, all on the pruned student (a) (examples/mrpc/study.sh PART=paper).
PAPER = [("f-finetune", "fine-tuned only (gold labels)"), ("f-kd1", "KD from t1"),
         ("f-pkd1", "PKD from t1 (KD + PKD-skip)"), ("a-pruned-kd", "MKDM (t1 + t2, one head each)"),
         ("tmkd", "TMKD (stage 1: 3 passes over the BM25-mined corpus, then MKDM)")]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--recipe", action="store_true", help="the recipe's tables (examples/mrpc/run.sh)")
    args = ap.parse_args()
    quality = json.loads((args.out / "bench-quality.json").read_text())
    if args.recipe:
        print(recipe(args.out, quality))
        return
    speed_path = args.out / "bench-speed.json"
    speed = json.loads(speed_path.read_text()) if speed_path.exists() else None
    shape = {m["name"]: m for m in speed["models"]} if speed else {}
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in quality["models"]:
        match = re.match(r"^(.*)-s(\d+)$", m["name"])
        if match:
            for k in ("accuracy", "f1"):
                values[match.group(1)][k].append(m["metrics"][k])
    lines = [f"Test set: {quality['data']['source']} ({quality['data']['rows']} pairs), "
             f"{inference(quality['models'])}; mean ± std over seeds.", "", "| model | n | accuracy | F1 | params | GFLOPs/ex |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in quality["models"]:
        if m["name"].startswith("teacher"):
            lines.append(f"| {m['name']} (MiniLM-L6) | 1 | {m['metrics']['accuracy']:.4f} | {m['metrics']['f1']:.4f} | "
                         f"{m['params'] / 1e6:.1f}M | {m.get('flops_per_example', 0) / 1e9:.3f} |")
    acc = {}
    for key, (title, speed_name) in STUDENTS.items():
        if key not in values:
            continue
        a, f = mean_std(values[key]["accuracy"]), mean_std(values[key]["f1"])
        acc[key] = values[key]["accuracy"]
        model = shape.get(speed_name)
        params = f"{model['params'] / 1e6:.1f}M" if model else "–"
        flops = f"{model['flops_per_example'] / 1e9:.3f}" if model else "–"
        lines.append(f"| {title} | {len(values[key]['accuracy'])} | {a[0]:.4f} ± {a[1]:.4f} | {f[0]:.4f} ± {f[1]:.4f} "
                     f"| {params} | {flops} |")
    for suffix, how in DISTILLATIONS.items():
        keys = [k + suffix for k in SHAPES]
        if set(keys) <= acc.keys():
            a, b, c = (statistics.mean(acc[k]) * 100 for k in keys)
            lines += ["", f"{how}:",
                      f"- (a) − (b): {a - b:+.2f} accuracy points (target ≥ +5): {'met' if a - b >= 5 else 'missed'}.",
                      f"- (a) − (c): {a - c:+.2f} points (target: within 1): {'met' if abs(a - c) <= 1 or a > c else 'missed'}."]
    if speed:
        teacher = shape["teacher"]
        fastest = max((m for m in speed["models"] if m["name"].startswith("teacher")),
                      key=lambda m: m["throughput_ex_s"]["32"])
        lines += ["", f"Speed, one bench run ({speed['machine']['cpu']}, {speed['settings']['threads']} threads, "
                  f"max length {speed['settings']['max_length']}, real lengths):", "",
                  "| model | backend | ex/s (b32) | × teacher fp32 | × teacher's fastest | p50 ms (b1) |",
                  "|---|---|---:|---:|---:|---:|"]
        for m in speed["models"]:
            t32 = m["throughput_ex_s"]["32"]
            lines.append(f"| {m['name']} | {m['backend']} | {t32:.0f} | {t32 / teacher['throughput_ex_s']['32']:.2f}× | "
                         f"{t32 / fastest['throughput_ex_s']['32']:.2f}× | {m['latency_ms']['p50']:.1f} |")
    print("\n".join(lines))


def recipe(out: Path, quality: dict) -> str:
    """The recipe's tables: teachers, the paper's comparison on the pruned student, the deployed student."""
    paper_path = out / "bench-quality-paper.json"
    models = list(quality["models"])
    if paper_path.exists():
        paper = json.loads(paper_path.read_text())
        if paper["data"]["fingerprint"] != quality["data"]["fingerprint"]:
            raise SystemExit(f"{paper_path} was benched on other data than bench-quality.json")
        models += paper["models"]
    values = seed_values(models, ("accuracy", "f1"))
    teachers = [m for m in quality["models"] if m["name"].startswith("teacher")]
    best_teacher = max(m["metrics"]["accuracy"] for m in teachers)
    lines = [f"Test set: {quality['data']['source']} ({quality['data']['rows']} pairs), "
             f"{inference(quality['models'])}; students: "
             "mean ± std over seeds.", "", "| teacher (MiniLM-L6, 2 epochs) | accuracy | F1 |", "|---|---:|---:|"]
    lines += [f"| {m['name']} | {m['metrics']['accuracy']:.4f} | {m['metrics']['f1']:.4f} |" for m in teachers]
    lines += ["", "### The paper's comparison on the pruned 3L / 256 / 8 heads / FFN 1024 student", ""]
    minutes = {key: train_minutes(out, *(("tmkd-stage1", "tmkd") if key == "tmkd" else (key,))) for key, _ in PAPER}
    lines += paper_table(values, PAPER, ("accuracy", "f1"), "accuracy", best_teacher, minutes)
    deployed_path = out / "bench-deployed.json"
    if deployed_path.exists():
        lines += ["", "### The deployed student (TMKD, seed 1) against teacher t1", ""]
        lines += deployed_table(json.loads(deployed_path.read_text()), "accuracy", best_teacher,
                                values["tmkd"]["accuracy"], "accuracy")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
