"""The run setup shared by finetune and pretrain-student: teachers, student + heads, objective, sets, record.

The two stages differ only in their data (labeled task rows or an unlabeled corpus), their eval set
and their loss weights; ``prepare_run`` builds everything else the same way for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from bertdistill.errors import UserError
from bertdistill.io import column_list
from bertdistill.training.record import input_identity, run_fingerprint, write_record
from bertdistill.training.splits import held_out
from bertdistill.training.student_setup import build_student, default_lr, student_source_from_teacher
from bertdistill.training.teacher_source import first_teacher, own_inputs

KNOWN_METRICS = ("accuracy", "f1", "f1_macro", "map", "mrr", "distill_loss", "teacher_agreement",
                 "teacher_rank_corr")


def encode_rows(tokenizer, task_data, max_length: int, groups: bool = False, input_names=None, teachers=None):
    """Tokenized Dataset with a ``row`` column (the row's index in the data and its label store): the inputs
    the student reads (``input_names``; default all), and for online teachers that tokenize differently their
    own tokenization of the same rows (``teacher:NAME:INPUT`` columns, made once per run)."""
    from bertdistill.data.tokenize import MODEL_INPUTS, encode_task

    encoded = encode_task(tokenizer, task_data, max_length, input_names=input_names or MODEL_INPUTS)
    encoded = encoded.add_column("row", np.arange(len(encoded), dtype=np.int64))
    if teachers is not None and getattr(teachers, "own_inputs", None):
        from datasets import concatenate_datasets

        encoded = concatenate_datasets([encoded, teachers.teacher_columns(task_data, max_length)], axis=1)
    if groups and task_data.has_groups:  # integer query ids: the ranking terms compare candidates of one query
        from bertdistill.metrics import _group_codes

        encoded = encoded.add_column("group", _group_codes(task_data.column("group")).astype(np.int64))
    return encoded


def check_query_groups(task_data, terms: Sequence[str]) -> None:
    """Ranking terms need query ids on every row and at least one query with 2 or more candidates."""
    names = ", ".join(terms)
    if not task_data.has_groups:
        raise UserError(f"loss term {names} compares the candidates of each query, but the training data has no "
                        "query groups", task_data.spec.describe(),
                        "read it as ranking data: --task ranking (rows with the same query text form a group; "
                        "a bertdistill corpus's group column is its query) or --group-column ID, or drop the term")
    groups = task_data.column("group")
    empty = next((i for i, g in enumerate(groups) if g is None or str(g).strip() == ""), None)
    if empty is not None:
        raise UserError(f"row {empty + 1} has an empty query id, so it belongs to no query's candidates",
                        task_data.spec.describe(), "give every row a query id, or drop the rows without one")
    sizes = np.bincount(np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)[1].reshape(-1))
    if not (sizes >= 2).any():
        raise UserError(f"loss term {names}: no query has 2 or more candidates (after filtering and the dev split)",
                        task_data.spec.describe(), "give queries with several candidates, or drop the term")


def check_best_metric(metric: str | None) -> None:
    if metric is not None and metric not in KNOWN_METRICS:
        raise UserError(f"unknown metric {metric!r}", "--best-metric", f"use one of: {', '.join(KNOWN_METRICS)}")


def prepare_run(*, config, command: str, teachers, train_data, label_names, labeled: bool, eval_data=None,
                eval_labels=None, held_out_fraction: float = 0.0, default_best: str | None = None):
    """A ``loop.Run`` for either stage: student with one head per teacher (TMKD) or one, objective, sets, record.

    ``held_out_fraction`` > 0 (no eval data) holds out a seeded share of the training rows (whole queries
    for ranking data): a dev set with gold labels when the data has them, and the teachers' outputs.
    """
    from bertdistill.data.tokenize import check_max_length
    from bertdistill.metrics import main_metric
    from bertdistill.training.batches import EvalSet, TrainSet
    from bertdistill.training.run import Run
    from bertdistill.training.objective import DistillationModule, build_objective
    from bertdistill.training.teacher_source import teacher_mode

    distill = config.distill
    names = teachers.names if teachers is not None else []
    mode = teacher_mode(distill.teacher_mode, names) if teachers is not None else None
    head_names = list(names) if mode == "heads" else ["classifier"]
    notes = []
    warnings = []
    from_teacher = student_source_from_teacher(config.student, first_teacher(teachers))
    if from_teacher is not None and from_teacher[0] is not None:
        config.student.source, why = from_teacher
        notes.append(why)
    elif from_teacher is not None:
        warnings.append(from_teacher[1])
    student, tokenizer, student_info = build_student(config.student, label_names, head_names, config.train.seed)
    if from_teacher is not None:
        student_info["source_default"] = from_teacher[1]
    if config.train.lr is None:
        config.train.lr, student_info["default_lr"] = default_lr(student_info, teachers is not None)
    check_max_length(tokenizer, student.config, config.train.max_length)
    if teachers is not None and hasattr(teachers, "check_max_length"):
        teachers.check_max_length(config.train.max_length)
    head = getattr(config.student, "head", "classes")
    positive = 1
    if len(label_names) == 2:
        from bertdistill.metrics import positive_label_index

        positive = positive_label_index(label_names)
    objective, objective_info = build_objective(distill if teachers is not None or distill.terms else None,
                                                teachers.infos if teachers is not None else [],
                                                student.config, mode, labeled=labeled, positive=positive)
    objective_info["head"] = head
    if objective.needs_groups:
        check_query_groups(train_data, [t.name for t in objective.terms if t.needs_groups])
    if teachers is not None:
        objective_info["teacher_source"] = teachers.describe()
    pad = tokenizer.pad_token_id or 0
    from bertdistill.families import input_names

    inputs = input_names(student.config, student.classifier)
    encoded = encode_rows(tokenizer, train_data, config.train.max_length, groups=objective.needs_groups,
                          input_names=inputs, teachers=teachers)
    data_fp = {"train": train_data.fingerprint(), "eval": None}
    eval_set = None
    sets = {"training data": (train_data, encoded)}
    if eval_data is not None:
        teacher_logits = None
        if teachers is not None and eval_labels is not None:
            teacher_logits = teachers.eval_logits(store=eval_labels)
        sets["eval data"] = (eval_data, encode_rows(tokenizer, eval_data, config.train.max_length,
                                                    input_names=inputs, teachers=teachers))
        eval_set = EvalSet(TrainSet(sets["eval data"][1], pad, teacher_pads=own_inputs(teachers)),
                           eval_data.kind, label_names,
                           labels=np.asarray(eval_data.column("label")) if eval_data.has_labels else None,
                           groups=eval_data.column("group") if eval_data.has_groups else None,
                           teacher_logits=teacher_logits)
        data_fp["eval"] = eval_data.fingerprint()
    elif held_out_fraction > 0:
        eval_set, encoded, data_fp["eval"] = held_out(encoded, train_data, held_out_fraction, config.train.seed,
                                                       label_names, teachers, pad, dev=labeled)
    from bertdistill.training.agreement import check_label_stores

    objective_info["label_stores"] = check_label_stores(teachers, eval_labels, tokenizer, config.train.max_length,
                                                        sets, notes)
    baseline = getattr(config, "baseline", None)
    if baseline and eval_set is not None:  # the same rows, as text, for the --baseline model
        eval_rows = eval_data if eval_data is not None else train_data.subset(column_list(eval_set.data.dataset, "row"))
    train_set = TrainSet(encoded, pad, teachers, by_group=objective.needs_groups)
    best = config.train.best_metric or default_best
    if best is None and eval_set is not None:
        if eval_set.labels is not None:
            best = main_metric(eval_set.kind, label_names)
        elif teachers is not None and objective.eval_term is not None:
            best = "distill_loss"

    def save_model(student_model, directory: Path) -> None:
        from bertdistill.student.model import save_student

        save_student(student_model, tokenizer, directory, label_names)

    def extras(directory: Path, result) -> None:
        write_record(directory, command, config, result, data_fp, teachers, student_info, objective_info)

    def check_result(result) -> list[str]:
        warnings = _check_student(result, eval_set, teachers, getattr(config, "guards", None), best)
        if baseline and result.dev_report is not None:
            from bertdistill.training.guards import baseline_metrics, baseline_line

            result.dev_report["baseline"] = baseline_metrics(
                baseline, eval_rows, label_names, config.train.max_length, config.train.eval_batch_size,
                "bf16" if config.train.mixed_precision == "bf16" else "torch", config.student.trust_remote_code)
            result.dev_report["baseline_delta"] = baseline_line(result.dev_report, best)
        return warnings

    return Run(module=DistillationModule(student, objective), train_set=train_set, eval_set=eval_set,
               output=Path(config.output), save_model=save_model, write_extras=extras,
               check_result=check_result if eval_set is not None and eval_set.labels is not None else None,
               teachers=teachers,
               best_metric=best, fingerprint={**run_fingerprint(config), "inputs": input_identity(data_fp, teachers)},
               resume=config.resume,
               overwrite=config.overwrite, notes=notes, warnings=warnings,
               collapsed=_collapse_check(eval_set, getattr(config, "guards", None)))


def _collapse_check(eval_set, guards):
    """``guards.collapsed`` for this run's evaluations (None without a labeled eval set: nothing to judge)."""
    if eval_set is None or eval_set.labels is None:
        return None
    from bertdistill.training.guards import GuardConfig, collapsed

    guards = guards or GuardConfig()
    return lambda metrics: collapsed(metrics, eval_set.kind, guards)


def _check_student(result, eval_set, teachers, guards, main: str | None) -> list[str]:
    """Warnings about the kept student on the dev/eval set (collapse, below baseline, far below teachers)."""
    from bertdistill.training.guards import (GuardConfig, check_student, majority_baseline, run_verdict,
                                             teacher_metrics)

    guards = guards or GuardConfig()
    if not result.evaluations or main is None:
        return []
    kept = next((e for e in result.evaluations if e["step"] == result.best_step), result.evaluations[-1])
    baseline = majority_baseline(eval_set.kind, eval_set.label_names, eval_set.labels, eval_set.groups)
    per_teacher = {}
    if teachers is not None and eval_set.teacher_logits is not None:
        per_teacher = teacher_metrics(eval_set.kind, eval_set.label_names, eval_set.labels, eval_set.teacher_logits,
                                      teachers.names, eval_set.groups)
    result.dev_report = {"set": eval_set.name, "rows": len(eval_set.labels), "student": kept,
                         "majority_baseline": baseline, "teachers": per_teacher}
    warnings = check_student(kept, main, baseline, per_teacher, guards, distilled=teachers is not None,
                             kind=eval_set.kind)
    result.verdict = run_verdict(result.evaluations, warnings, eval_set.kind, guards)
    return warnings
