"""Score every model of examples/defaults/run.sh on its task's test file; print and save one table.

Test files: RTE dev (GLUE's test has no labels), MRPC's labeled MSRP test, SST-2 dev, WikiQA test
(MAP/MRR over questions with a correct answer), the SNLI sample's test part (3 classes; it trains on the dev
part). The majority baseline is the test set's most frequent class (for WikiQA: the MAP of a random order); the
warnings and the verdict (ok, or failed: FAILED in the folder) are those the run stored in training_record.json.
Model folders are named ROLE-sSEED (finetune, kd, pkd, ...) or teacher.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TESTS = {
    "rte": ("{glue}/RTE/dev.tsv", {}),
    "mrpc": ("{glue}/MRPC/msr_paraphrase_test.txt", {}),
    "sst2": ("{glue}/SST-2/dev.tsv", {}),
    "wikiqa": ("{wikiqa}/WikiQA-test.tsv", {"group_column": "QuestionID"}),
    "snli": ("{snli}/snli_1.0_test.head.jsonl", {}),
}


def main() -> None:
    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.inference import load_scorer, predict_logits
    from bertdistill.metrics import compute_metrics, main_metric

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("runs/defaults"))
    parser.add_argument("--glue", default="../shared/datasets/glue")
    parser.add_argument("--wikiqa", default="../shared/datasets/wikiqa")
    parser.add_argument("--snli", default="../shared/datasets/snli_sample")
    parser.add_argument("--tasks", nargs="+", default=list(TESTS))
    parser.add_argument("--backend", default=None, help="inference backend of the scoring (torch: fp32); default: "
                                                         "bf16 where the CPU computes it in hardware, else torch")
    parser.add_argument("--tables-only", action="store_true", help="print the tables of $OUT/results.json again")
    args = parser.parse_args()
    if args.tables_only:
        print_tables(json.loads((args.out / "results.json").read_text()))
        return
    if args.backend is None:  # the rule of examples/lib.sh's INFER_BACKEND
        from bertdistill.devices import native_bf16, training_device

        device = training_device()
        args.backend = "bf16" if device.type != "cpu" or native_bf16(device) else "torch"
    rows = []
    for task in args.tasks:
        path, kw = TESTS[task]
        data = load_task_data(DataSpec(path=path.format(glue=args.glue, wikiqa=args.wikiqa, snli=args.snli), **kw))
        labels = np.asarray(data.column("label"))
        groups = data.column("group") if data.has_groups else None
        main = main_metric(data.kind, data.label_names)
        from bertdistill.training.guards import majority_baseline

        # The majority class's score; for ranking, MAP of a random order (what a ranker that learned nothing gets).
        majority = float(majority_baseline(data.kind, data.label_names, labels, groups)[main])
        if not (args.out / task).is_dir():
            continue
        for model_dir in sorted(p for p in (args.out / task).iterdir() if (p / "config.json").is_file()):
            scorer = load_scorer(str(model_dir), args.backend, threads=2)
            logits = predict_logits(scorer, data, 128, 64)
            metrics = compute_metrics(data.kind, data.label_names, labels, logits, groups)
            record_path = model_dir / "training_record.json"
            record = json.loads(record_path.read_text()) if record_path.is_file() else {}
            summary = record.get("summary", {})
            share = float(np.bincount(logits.argmax(-1), minlength=logits.shape[1]).max() / len(labels))
            config_path = model_dir / "training_config.json"
            train_config = json.loads(config_path.read_text()).get("train", {}) if config_path.is_file() else {}
            rows.append({"task": task, "model": model_dir.name, "main": main, main: round(metrics[main], 4),
                         "scored_with": args.backend, "lr": train_config.get("lr"), "updates": summary.get("steps"),
                         "epochs_done": summary.get("epochs_done"),
                         "accuracy": round(metrics["accuracy"], 4), "majority": round(majority, 4),
                         "one_class_share": round(share, 3), "kept_step": summary.get("best_step"),
                         "verdict": (summary.get("verdict") or {}).get("status", "-"),
                         "failed": (model_dir / "FAILED").is_file(),
                         "warnings": summary.get("warnings", [])})
            print(json.dumps(rows[-1]))
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print_tables(rows)


def print_tables(rows: list[dict]) -> None:
    print("\n".join(summary_table(rows)) + "\n")
    print("\n".join(variant_table(rows)) + "\n")
    print("| task | model | main metric | accuracy | majority | one-class share | lr | updates | kept step | verdict | "
          "warnings |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = "map" if "map" in r else "accuracy"
        print(f"| {r['task']} | {r['model']} | {key} {r[key]:.4f} | {r['accuracy']:.4f} | {r['majority']:.4f} | "
              f"{r['one_class_share']:.3f} | {r['lr']} | {r['updates']} | {r['kept_step']} | "
              f"{'FAILED' if r.get('failed') else r.get('verdict', '-')} | {'; '.join(r['warnings']) or '-'} |")


def variant_table(rows: list[dict]) -> list[str]:
    """One line per task and variant (the model name without its -sN seed suffix): mean ± std over seeds."""
    import re
    import statistics

    lines = ["| task | variant | main metric (mean ± std) | seeds | per seed | collapsed runs |", "|---|---|---:|---:|---|---:|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], re.sub(r"-s\d+$", "", r["model"])), []).append(r)
    for (task, variant), runs in groups.items():
        values = [r[r["main"]] for r in runs]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        collapsed = sum(1 for r in runs if is_collapsed(r))
        lines.append(f"| {task} | {variant} | {statistics.mean(values):.4f} ± {sd:.4f} | {len(values)} | "
                     f"{' '.join(f'{v:.4f}' for v in values)} | {collapsed} |")
    return lines


def is_collapsed(r: dict) -> bool:
    """Flagged by its run (a collapse warning, or FAILED), or one class for ≥ 95% of the test rows (not ranking)."""
    return (any("collapsed" in w for w in r["warnings"]) or bool(r.get("failed"))
            or ("map" not in r and r["one_class_share"] >= 0.95))


def summary_table(rows: list[dict]) -> list[str]:
    """One line per task: majority, teacher, and each student role (mean ± std over seeds); whether the distilled
    students (kd: default options; pkd: --pkd skip added) are at or above the fine-tuned-only ones, seed by seed, and
    above the majority class; collapsed runs per role."""
    import re
    import statistics

    def cell(values):
        if not values:
            return "–"
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f} (n={len(values)})"

    lines = ["| task | metric | majority | teacher | fine-tuned only | distilled | distilled + PKD | "
             "distilled ≥ fine-tuned (seeds) | distilled > majority (seeds) | PKD ≥ fine-tuned (seeds) | "
             "collapsed: ft / kd / pkd |", "|---|---|---:|---:|---:|---:|---:|---|---|---|---|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        task_rows = [r for r in rows if r["task"] == task]
        main = task_rows[0]["main"]
        majority = task_rows[0]["majority"]  # for ranking: MAP of a random order
        teacher = [r[main] for r in task_rows if r["model"] == "teacher"]
        by_role: dict[str, dict[str, dict]] = {}
        for r in task_rows:
            m = re.fullmatch(r"(finetune|kd|pkd)-s(\d+)", r["model"])
            if m:
                by_role.setdefault(m.group(1), {})[m.group(2)] = r
        ft, kd, pkd = (by_role.get(k, {}) for k in ("finetune", "kd", "pkd"))

        def paired(a, b):
            seeds = sorted(set(a) & set(b))
            return f"{sum(a[s][main] >= b[s][main] for s in seeds)}/{len(seeds)}" if seeds else "–"

        above = f"{sum(r[main] > majority for r in kd.values())}/{len(kd)}" if kd else "–"
        collapsed = " / ".join(str(sum(is_collapsed(r) for r in role.values())) if role else "–" for role in (ft, kd, pkd))
        lines.append(f"| {task} | {main} | {majority:.4f} | {f'{teacher[0]:.4f}' if teacher else '–'} | "
                     f"{cell([r[main] for r in ft.values()])} | {cell([r[main] for r in kd.values()])} | "
                     f"{cell([r[main] for r in pkd.values()])} | {paired(kd, ft)} | {above} | {paired(pkd, ft)} | "
                     f"{collapsed} |")
    return lines


if __name__ == "__main__":
    main()
