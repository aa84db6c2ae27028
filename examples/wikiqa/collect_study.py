"""Turn the WikiQA study's outputs (examples/wikiqa/study.sh) into the RESULTS tables: ranking losses
(issue 17), pruned against random-init and full-width students (issue 14), stage-1 corpora (issue 15),
and the speed of each student shape; with --recipe, the recipe's tables instead (examples/wikiqa/run.sh:
the paper's comparison and the deployed student). Every number comes from the run's JSON files.

    python examples/wikiqa/collect_study.py --out runs/wq > runs/wq/STUDY.generated.md
    python examples/wikiqa/collect_study.py --out runs/wq --recipe > runs/wq/RECIPE.generated.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recipe_tables import deployed_table, inference, paper_table, seed_values, train_minutes  # noqa: E402

RANKING = {"r-point": "pointwise KD (2-class head, today)", "r-list": "listwise KD (score head)",
           "r-margin": "Margin-MSE (score head)"}
PRUNE_INIT = {"r-point-pkd-init": "(a) pruned from t1, PKD projection started from the kept dimensions"}
PRUNE = {"r-point-pkd": "(a) pruned from t1: 3L / 256 / 8 heads / FFN 1024",
         "p-random-pkd": "(b) same shape, random init", "p-first3-pkd": "(c) first 3 layers of t1, full width (384)"}
CORPORA = {"r-point": ("none (stage 2 alone: 2-teacher KD)", None), "c-random": ("random cross-query", "random"),
           "c-mined": ("BM25-mined", "mined"), "c-mixed": ("mixed (half BM25, half random)", "mixed"),
           "c-mined-third": ("BM25-mined, ⅓ of the pairs", "mined"),
           "c-mined-twothirds": ("BM25-mined, ⅔ of the pairs", "mined"),
           "c-random-e3": ("random cross-query, 3 stage-1 passes", "random"),
           "c-mined-e3": ("BM25-mined, 3 stage-1 passes", "mined")}
# The recipe's comparison, all on the pruned 3L/256 student (examples/wikiqa/study.sh PART=paper).
PAPER = [("f-finetune", "fine-tuned only (gold labels)"), ("f-kd1", "KD from t1"),
         ("f-pkd1", "PKD from t1 (KD + PKD-skip)"), ("r-point", "MKDM (t1 + t2, one head each)"),
         ("c-mined-e3", "TMKD (stage 1: 3 passes over the BM25-mined corpus, then MKDM)"),
         ("best", "best: TMKD's stage 1, then listwise KD from t1 + t2 (score head)")]


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def stage1_corr(out: Path, variant: str) -> list[float]:
    """teacher_rank_corr of the last held-out evaluation of each seed's stage-1 run."""
    values = []
    for record_path in sorted(out.glob(f"students/{variant}-stage1-s*/training_record.json")):
        evals = [e for e in json.loads(record_path.read_text()).get("evaluations", []) if "teacher_rank_corr" in e]
        if evals:
            values.append(evals[-1]["teacher_rank_corr"])
    return values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--recipe", action="store_true", help="the recipe's tables (examples/wikiqa/run.sh)")
    args = ap.parse_args()
    quality = load(args.out / "bench-quality.json")
    if quality is None:
        raise SystemExit(f"no {args.out}/bench-quality.json yet: run examples/wikiqa/study.sh to the end first")
    # Models benched later on the same test set (bench-quality-corpus.json: the stage-1 study's students).
    for extra_path in sorted(args.out.glob("bench-quality-*.json")):
        extra = json.loads(extra_path.read_text())
        if extra["data"]["fingerprint"] != quality["data"]["fingerprint"]:
            raise SystemExit(f"{extra_path} was benched on other data than bench-quality.json")
        names = {m["name"] for m in extra["models"]}
        quality["models"] = [m for m in quality["models"] if m["name"] not in names] + extra["models"]
    variants = seed_values(quality["models"], ("map", "mrr"))
    teachers = {m["name"]: m["metrics"] for m in quality["models"] if m["name"].startswith("teacher")}
    best_teacher = max(teachers.values(), key=lambda ms: ms["map"])
    data = quality["data"]
    if args.recipe:
        print(recipe(args.out, quality, variants, teachers, best_teacher))
        return
    lines = [f"Test set: {data['source']} ({data['rows']} pairs); MAP/MRR over the {data['queries_scored']} "
             f"questions with a correct answer (WikiQA convention). {inference(quality['models'])}. Mean ± std "
             "over seeds (n per row).", "",
             "| teacher | MAP | MRR |", "|---|---:|---:|"]
    lines += [f"| {name} | {ms['map']:.4f} | {ms['mrr']:.4f} |" for name, ms in teachers.items()]

    def row(title: str, key: str, extra: list[str] = ()) -> str:
        vals = variants.get(key, {})
        n = len(vals.get("map", []))
        cells = [title, str(n), mean_std(vals.get("map", [])), mean_std(vals.get("mrr", [])), *extra]
        return "| " + " | ".join(cells) + " |"

    lines += ["", "### Ranking losses (issue 17): the pruned student, 2 teachers, α 0.7", "",
              "| loss | PKD | n | MAP | MRR |", "|---|---|---:|---:|---:|"]
    for key, title in RANKING.items():
        for pkd in ("", "-pkd"):
            r = row(title, key + pkd)
            lines.append(r.replace(f"| {title} |", f"| {title} | {'yes' if pkd else 'no'} |", 1))

    speed = load(args.out / "bench-speed.json")
    shape = {}
    if speed:
        for m in speed["models"]:
            shape[m["name"]] = m
    lines += ["", "### Pruned vs random-init vs full-width students (issue 14): 2-teacher KD + PKD-skip", "",
              "| student | n | MAP | MRR | params | GFLOPs/ex |", "|---|---:|---:|---:|---:|---:|"]
    names = {"r-point-pkd": "pruned", "p-random-pkd": "pruned", "p-first3-pkd": "first3"}
    for key, title in PRUNE.items():
        m = shape.get(names[key])
        extra = [f"{m['params'] / 1e6:.1f}M", f"{m['flops_per_example'] / 1e9:.3f}"] if m else ["–", "–"]
        lines.append(row(title, key, extra))
    for key, title in PRUNE_INIT.items():
        if key in variants:
            m = shape.get("pruned")
            extra = [f"{m['params'] / 1e6:.1f}M", f"{m['flops_per_example'] / 1e9:.3f}"] if m else ["–", "–"]
            lines.append(row(title, key, extra))
    # The same three students without PKD (PKD through a width projection collapses the narrow students).
    if "p-random" in variants or "p-first3" in variants:
        lines += ["", "### The same three students, 2-teacher KD without PKD", "",
                  "| student | n | MAP | MRR | params | GFLOPs/ex |", "|---|---:|---:|---:|---:|---:|"]
        for key, title in PRUNE.items():
            m = shape.get(names[key])
            extra = [f"{m['params'] / 1e6:.1f}M", f"{m['flops_per_example'] / 1e9:.3f}"] if m else ["–", "–"]
            lines.append(row(title, key.removesuffix("-pkd"), extra))

    if "p-pruned-e3" in variants or "p-first3-e3" in variants:
        lines += ["", "### (a) and (c) with 3 epochs of stage 2 (2-teacher KD)", "",
                  "| student | n | MAP | MRR | params | GFLOPs/ex |", "|---|---:|---:|---:|---:|---:|"]
        for key, title, shape_name in (("p-pruned-e3", PRUNE["r-point-pkd"], "pruned"),
                                       ("p-first3-e3", PRUNE["p-first3-pkd"], "first3")):
            m = shape.get(shape_name)
            extra = [f"{m['params'] / 1e6:.1f}M", f"{m['flops_per_example'] / 1e9:.3f}"] if m else ["–", "–"]
            lines.append(row(title, key, extra))

    if speed:
        base = shape.get("teacher")
        fastest_teacher = max((m for m in speed["models"] if m["name"].startswith("teacher")),
                              key=lambda m: m["throughput_ex_s"]["32"])
        lines += ["", f"### Speed: one bench run, {speed['machine']['cpu']}, {speed['settings']['threads']} threads, "
                  f"batch 32 and 1, max length {speed['settings']['max_length']}, real lengths", "",
                  "| model | backend | params | GFLOPs/ex | MAP | ex/s (b32) | × teacher fp32 | × teacher same backend "
                  "| × teacher's fastest | p50 ms (b1) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        by_backend = {m["backend"]: m for m in speed["models"] if m["name"].startswith("teacher")}
        for m in speed["models"]:
            t32 = m["throughput_ex_s"]["32"]
            same = by_backend.get(m["backend"])
            lines.append(
                f"| {m['name']} | {m['backend']} | {m['params'] / 1e6:.1f}M | {m['flops_per_example'] / 1e9:.3f} | "
                f"{m['metrics']['map']:.4f} | {t32:.0f} | {t32 / base['throughput_ex_s']['32']:.2f}× | "
                f"{(t32 / same['throughput_ex_s']['32']) if same else float('nan'):.2f}× | "
                f"{t32 / fastest_teacher['throughput_ex_s']['32']:.2f}× | {m['latency_ms']['p50']:.1f} |")
        lines += ["", f"Teacher's fastest backend here: {fastest_teacher['name']} "
                  f"({fastest_teacher['throughput_ex_s']['32']:.0f} ex/s at batch 32)."]

    lines += ["", "### Stage-1 corpora (issue 15): stage 1 on the corpus, then r-point's stage 2", "",
              "| stage-1 corpus | pairs | n | MAP | MRR | stage-1 teacher_rank_corr | mean entropy (bits) | "
              "teachers' argmax differ | unsure (0.1 < P < 0.9) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, (title, corpus) in CORPORA.items():
        if key not in variants:
            continue
        pairs, entropy, disagree, unsure = "–", "–", "–", "–"
        if corpus:
            meta = load(args.out / "corpora" / f"{corpus}.jsonl.meta.json")
            rows = meta["report"]["total_pairs"] if meta else None
            if rows and key == "c-mined-third":
                rows = rows // 3
            elif rows and key == "c-mined-twothirds":
                rows = rows * 2 // 3
            pairs = f"{rows:,}" if rows else "–"
            stats = load(args.out / "corpora" / f"{corpus}.stats.json")
            if stats:
                origins = {o["origin"]: o for o in stats["stats"]["origins"]}
                total = origins.get("all") or next(iter(origins.values()))
                entropy = f"{total['mean_entropy']:.3f}"
                disagree = f"{total['argmax_disagreement']:.4f}"
                unsure = f"{total['uncertain']:.4f}"
        corr = stage1_corr(args.out, key)
        n = len(variants[key]["map"])
        lines.append(f"| {title} | {pairs} | {n} | {mean_std(variants[key]['map'])} | {mean_std(variants[key]['mrr'])} "
                     f"| {mean_std(corr) if corr else '–'} | {entropy} | {disagree} | {unsure} |")
    lines += ["", f"Best teacher test MAP: {best_teacher['map']:.4f}."]
    print("\n".join(lines))


def recipe(out: Path, quality: dict, variants: dict, teachers: dict, best_teacher: dict) -> str:
    """The recipe's tables: teachers, the paper's comparison on the pruned student, the deployed student."""
    data = quality["data"]
    lines = [f"Test set: {data['source']} ({data['rows']} pairs); MAP/MRR over the {data['queries_scored']} "
             f"questions with a correct answer. {inference(quality['models'])}; students: mean ± std over seeds.", "",
             "| teacher (MiniLM-L6, 1 epoch) | MAP | MRR |", "|---|---:|---:|"]
    lines += [f"| {name} | {ms['map']:.4f} | {ms['mrr']:.4f} |" for name, ms in teachers.items()]
    lines += ["", "### The paper's comparison on the pruned 3L / 256 / 8 heads / FFN 1024 student", ""]
    stages = {"c-mined-e3": ("c-mined-e3-stage1", "c-mined-e3"), "best": ("c-mined-e3-stage1", "best")}
    minutes = {key: train_minutes(out, *stages.get(key, (key,))) for key, _ in PAPER}
    lines += paper_table(variants, PAPER, ("map", "mrr"), "map", best_teacher["map"], minutes)
    deployed = load(out / "bench-deployed.json")
    if deployed:
        lines += ["", "### The deployed student (best, seed 1) against teacher t1", ""]
        lines += deployed_table(deployed, "map", best_teacher["map"], variants["best"]["map"], "MAP")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
