"""Score every model of examples/defaults/run.sh on its task's test file; print and save one table.

Test files: RTE dev (GLUE's test has no labels), MRPC's labeled MSRP test, SST-2 dev, WikiQA test
(MAP/MRR over questions with a correct answer). The majority baseline is the test set's most frequent
class (for WikiQA: the MAP of a random order); the warnings are those the student's run stored in training_record.json.
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
}


def main() -> None:
    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.inference import load_scorer, predict_logits
    from bertdistill.metrics import compute_metrics, main_metric

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("runs/defaults"))
    parser.add_argument("--glue", default="../shared/datasets/glue")
    parser.add_argument("--wikiqa", default="../shared/datasets/wikiqa")
    parser.add_argument("--tasks", nargs="+", default=list(TESTS))
    parser.add_argument("--backend", default="bf16", help="inference backend of the scoring (torch: fp32)")
    parser.add_argument("--tables-only", action="store_true", help="print the tables of $OUT/results.json again")
    args = parser.parse_args()
    if args.tables_only:
        print_tables(json.loads((args.out / "results.json").read_text()))
        return
    rows = []
    for task in args.tasks:
        path, kw = TESTS[task]
        data = load_task_data(DataSpec(path=path.format(glue=args.glue, wikiqa=args.wikiqa), **kw))
        labels = np.asarray(data.column("label"))
        groups = data.column("group") if data.has_groups else None
        main = main_metric(data.kind, data.label_names)
        from bertdistill.training.guards import majority_baseline

        # The majority class's score; for ranking, MAP of a random order (what a ranker that learned nothing gets).
        majority = float(majority_baseline(data.kind, data.label_names, labels, groups)[main])
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
                         "lr": train_config.get("lr"), "updates": summary.get("steps"),
                         "epochs_done": summary.get("epochs_done"),
                         "accuracy": round(metrics["accuracy"], 4), "majority": round(majority, 4),
                         "one_class_share": round(share, 3), "kept_step": summary.get("best_step"),
                         "warnings": summary.get("warnings", [])})
            print(json.dumps(rows[-1]))
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print_tables(rows)


def print_tables(rows: list[dict]) -> None:
    print("\n".join(summary_table(rows)) + "\n")
    print("\n".join(variant_table(rows)) + "\n")
    print("| task | model | main metric | accuracy | majority | one-class share | lr | updates | kept step | warnings |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = "map" if "map" in r else "accuracy"
        print(f"| {r['task']} | {r['model']} | {key} {r[key]:.4f} | {r['accuracy']:.4f} | {r['majority']:.4f} | "
              f"{r['one_class_share']:.3f} | {r['lr']} | {r['updates']} | {r['kept_step']} | {'; '.join(r['warnings']) or '-'} |")


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
        collapsed = sum(1 for r in runs if any("collapsed" in w for w in r["warnings"]))
        lines.append(f"| {task} | {variant} | {statistics.mean(values):.4f} ± {sd:.4f} | {len(values)} | "
                     f"{' '.join(f'{v:.4f}' for v in values)} | {collapsed} |")
    return lines


def summary_table(rows: list[dict]) -> list[str]:
    """One line per task: majority, teacher, fine-tuned-only and distilled students (mean ± std over seeds)."""
    import statistics

    def cell(values):
        if not values:
            return "–"
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f} (n={len(values)})"

    lines = ["| task | metric | majority | teacher | fine-tuned only | distilled | distilled ≥ fine-tuned | "
             "distilled > majority |", "|---|---|---:|---:|---:|---:|---|---|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        task_rows = [r for r in rows if r["task"] == task]
        main = task_rows[0]["main"]
        teacher = [r[main] for r in task_rows if r["model"] == "teacher"]
        ft = [r[main] for r in task_rows if r["model"].startswith("finetune-")]
        kd = [r[main] for r in task_rows if r["model"].startswith("kd-")]
        majority = task_rows[0]["majority"]  # for ranking: MAP of a random order
        mean = statistics.mean
        lines.append(f"| {task} | {main} | {'–' if majority is None else f'{majority:.4f}'} | "
                     f"{f'{teacher[0]:.4f}' if teacher else '–'} | {cell(ft)} | {cell(kd)} | "
                     f"{'yes' if ft and kd and mean(kd) >= mean(ft) else 'no'} | "
                     f"{'–' if majority is None else ('yes' if kd and mean(kd) > majority else 'no')} |")
    return lines


if __name__ == "__main__":
    main()
