"""Score every model of examples/defaults/run.sh on its task's test file; print and save one table.

Test files: RTE dev (GLUE's test has no labels), MRPC's labeled MSRP test, SST-2 dev, WikiQA test
(MAP/MRR over questions with a correct answer). The majority baseline is the test set's most frequent
class; the warnings are those the student's run stored in training_record.json.
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
    args = parser.parse_args()
    rows = []
    for task in args.tasks:
        path, kw = TESTS[task]
        data = load_task_data(DataSpec(path=path.format(glue=args.glue, wikiqa=args.wikiqa), **kw))
        labels = np.asarray(data.column("label"))
        groups = data.column("group") if data.has_groups else None
        main = main_metric(data.kind, data.label_names)
        majority = float(np.bincount(labels).max() / len(labels))
        for model_dir in sorted(p for p in (args.out / task).iterdir() if (p / "config.json").is_file()):
            scorer = load_scorer(str(model_dir), "torch", threads=2)
            logits = predict_logits(scorer, data, 128, 64)
            metrics = compute_metrics(data.kind, data.label_names, labels, logits, groups)
            record_path = model_dir / "training_record.json"
            record = json.loads(record_path.read_text()) if record_path.is_file() else {}
            summary = record.get("summary", {})
            share = float(np.bincount(logits.argmax(-1), minlength=logits.shape[1]).max() / len(labels))
            rows.append({"task": task, "model": model_dir.name, main: round(metrics[main], 4),
                         "accuracy": round(metrics["accuracy"], 4), "majority": round(majority, 4),
                         "one_class_share": round(share, 3), "kept_step": summary.get("best_step"),
                         "warnings": summary.get("warnings", [])})
            print(json.dumps(rows[-1]))
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"| task | model | main metric | accuracy | majority | one-class share | kept step | warnings |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = "map" if "map" in r else "accuracy"
        print(f"| {r['task']} | {r['model']} | {key} {r[key]:.4f} | {r['accuracy']:.4f} | {r['majority']:.4f} | "
              f"{r['one_class_share']:.3f} | {r['kept_step']} | {'; '.join(r['warnings']) or '-'} |")


if __name__ == "__main__":
    main()
