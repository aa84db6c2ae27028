"""What a run leaves about itself: the settings a resume must share, ``training_record.json`` next to the
model, and the summary printed at the end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bertdistill.io import to_jsonable, write_json
from bertdistill.training.teacher_source import teacher_provenance


def run_fingerprint(config) -> dict:
    """The settings a resumed run must share with the interrupted one (not resume/overwrite/time budget)."""
    data = to_jsonable(config)
    data.pop("resume", None)
    data.pop("overwrite", None)
    from bertdistill.training.checkpoints import NOT_FINGERPRINTED

    for key in NOT_FINGERPRINTED:  # they judge the finished model; training does not depend on them
        data.pop(key, None)
    for key in ("time_budget", "report_to", "log_every"):
        data.get("train", {}).pop(key, None)
    from bertdistill.training.config import without_later_defaults

    return without_later_defaults(data)


def write_record(directory: Path, command: str, config, result, data_fp: dict, teachers, student_info: dict,
                 objective_info: dict) -> None:
    from bertdistill import __version__
    from bertdistill.config import save_config

    save_config(config, Path(directory) / "training_config.json")
    store = getattr(teachers, "store", None)
    record = {
        "command": command,
        "bertdistill_version": __version__,
        "config": to_jsonable(config),
        "data": data_fp,
        "teachers": teacher_provenance(teachers),
        "label_store": None if store is None else {"path": str(store.path), "data": store.meta.get("data"),
                                                   "max_length": store.meta.get("max_length"),
                                                   "label_names": store.label_names},
        "student": student_info,
        "objective": objective_info,
        "evaluations": result.evaluations,
        "history": result.history,
        "summary": {k: v for k, v in to_jsonable(dataclasses.asdict(result)).items()
                    if k not in ("evaluations", "history")},
    }
    write_json(Path(directory) / "training_record.json", record)
    from bertdistill.training.guards import write_verdict

    write_verdict(directory, getattr(result, "verdict", None))


def print_summary(result, title: str) -> None:
    from bertdistill.ui import console, err_console, print_table

    report = result.dev_report
    if report:
        metrics = [k for k in ("accuracy", "f1", "f1_macro", "map", "mrr", "teacher_agreement",
                               "predicted_class_share") if k in report["student"]]
        rows = [{"model": f"student (step {report['student']['step']})",
                 **{k: report["student"][k] for k in metrics}},
                {"model": "majority class" + (" (MAP/MRR: random order)" if "map" in report["majority_baseline"]
                                              else ""),
                 **{k: report["majority_baseline"].get(k, "") for k in metrics}}]
        rows += [{"model": f"teacher {name}", **{k: m.get(k, "") for k in metrics}}
                 for name, m in report["teachers"].items()]
        if report.get("baseline"):
            rows.append({"model": "baseline (--baseline)",
                         **{k: report["baseline"].get(k, "") for k in metrics}})
        print_table(rows, ["model", *metrics], title=f"{title}: the kept model on the {report['set']} set "
                                                     f"({report['rows']} rows)")
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", soft_wrap=True)
    if report and report.get("baseline_delta"):
        console.print(report["baseline_delta"], soft_wrap=True)
    if result.evaluations:
        keys = [k for k in result.evaluations[-1] if k not in ("epoch_end", "queries_scored", "teacher_score_spread",
                                                               "queries_without_positive")]
        print_table(result.evaluations[-8:], keys, title=f"{title}: evaluations")
    best = (f"best {result.best_metric}={result.best_value:.4f} at step {result.best_step}"
            if result.best_metric else "no evaluation set: saved the last model")
    console.print(f"{title}: {result.steps} steps ({result.epochs_done} epochs) in {result.train_seconds:.0f}s, "
                  f"{result.examples_per_second:.1f} ex/s, stopped: {result.stopped_by}; {best}; "
                  f"saved to {result.output}")
    if result.stopped_by == "time_budget":
        err_console.print(f"note: the time budget stopped training after {result.steps} updates, with a checkpoint; "
                          "continue with the same command plus --resume and a larger --time-budget", soft_wrap=True)


def input_identity(data_fp: dict, teachers) -> dict:
    """What a resumed run must read again unchanged: the data's content and the label store (its meta.json)."""
    import hashlib

    identity = {"training data": {k: data_fp["train"].get(k) for k in ("rows", "content_sha256")}}
    store = getattr(teachers, "store", None)
    if store is not None:
        meta = (Path(store.path) / "meta.json").read_bytes()
        identity["label store"] = hashlib.sha256(meta).hexdigest()
    return identity
