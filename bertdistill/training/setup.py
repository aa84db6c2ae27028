"""Shared by finetune and pretrain-student: student + heads, tokenized sets, record, summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from bertdistill.errors import UserError
from bertdistill.io import to_jsonable, write_json

KNOWN_METRICS = ("accuracy", "f1", "f1_macro", "map", "mrr", "distill_loss", "teacher_agreement",
                 "teacher_rank_corr")


def build_student(student_cfg, label_names: Sequence[str], head_names: Sequence[str], seed: int):
    """StudentModel with one head per name; restores per-teacher heads saved by an earlier stage."""
    from bertdistill.student.build import build_classifier
    from bertdistill.student.model import StudentModel, load_saved_heads

    classifier, tokenizer, info = build_classifier(student_cfg, label_names, seed)
    model = StudentModel(classifier, head_names)
    info["heads"] = list(head_names)
    if len(head_names) > 1:
        saved = load_saved_heads(info["source"])
        if saved is not None and saved[0] == list(head_names):
            model.load_head_state(saved[1])
            info["heads_from"] = "restored from the source's per-teacher heads"
        elif info.get("classifier_trained"):
            info["heads_from"] = "copies of the source's classifier"
        else:
            model.reinit_heads(seed)
            info["heads_from"] = "random"
    info["num_parameters"] = sum(p.numel() for p in classifier.parameters())
    return model, tokenizer, info


def encode_rows(tokenizer, task_data, max_length: int):
    """Tokenized Dataset with a ``row`` column (the row's index in the data and its label store)."""
    from bertdistill.data.tokenize import encode_task

    encoded = encode_task(tokenizer, task_data, max_length)
    return encoded.add_column("row", np.arange(len(encoded), dtype=np.int64))


def check_best_metric(metric: str | None) -> None:
    if metric is not None and metric not in KNOWN_METRICS:
        raise UserError(f"unknown metric {metric!r}", "--best-metric", f"use one of: {', '.join(KNOWN_METRICS)}")


def run_fingerprint(config) -> dict:
    """The settings a resumed run must share with the interrupted one (not resume/overwrite/time budget)."""
    data = to_jsonable(config)
    data.pop("resume", None)
    data.pop("overwrite", None)
    data.get("train", {}).pop("time_budget", None)
    return data


def write_record(directory: Path, command: str, config, result, data_fp: dict, store, student_info: dict,
                 objective_info: dict) -> None:
    from bertdistill import __version__
    from bertdistill.config import save_config

    save_config(config, Path(directory) / "training_config.json")
    record = {
        "command": command,
        "bertdistill_version": __version__,
        "config": to_jsonable(config),
        "data": data_fp,
        "teachers": store.teachers if store is not None else [],
        "label_store": None if store is None else {"path": str(store.path), "data": store.meta.get("data"),
                                                   "max_length": store.meta.get("max_length"),
                                                   "label_names": store.label_names},
        "student": student_info,
        "objective": objective_info,
        "evaluations": result.evaluations,
        "summary": {k: v for k, v in to_jsonable(dataclasses.asdict(result)).items() if k != "evaluations"},
    }
    write_json(Path(directory) / "training_record.json", record)


def print_summary(result, title: str) -> None:
    from bertdistill.ui import console, print_table

    if result.evaluations:
        keys = [k for k in result.evaluations[-1] if k not in ("epoch_end", "queries_scored",
                                                               "queries_without_positive")]
        print_table(result.evaluations[-8:], keys, title=f"{title}: evaluations")
    best = (f"best {result.best_metric}={result.best_value:.4f} at step {result.best_step}"
            if result.best_metric else "no evaluation set: saved the last model")
    console.print(f"{title}: {result.steps} steps ({result.epochs_done} epochs) in {result.train_seconds:.0f}s, "
                  f"{result.examples_per_second:.1f} ex/s, stopped: {result.stopped_by}; {best}; "
                  f"saved to {result.output}")
