"""The run setup shared by finetune and pretrain-student: teachers, student + heads, objective, sets, record.

The two stages differ only in their data (labeled task rows or an unlabeled corpus), their eval set
and their loss weights; ``prepare_run`` builds everything else the same way for both.
"""

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
            model.load_head_state(_heads_for_width(saved[1], model.heads()[0].out_features, label_names))
            info["heads_from"] = "restored from the source's per-teacher heads"
        elif info.get("classifier_trained"):
            info["heads_from"] = "copies of the source's classifier"
        else:
            model.reinit_heads(seed)
            info["heads_from"] = "random"
    info["num_parameters"] = sum(p.numel() for p in classifier.parameters())
    return model, tokenizer, info


def _heads_for_width(state: dict, width: int, label_names: Sequence[str]) -> dict:
    """Saved per-teacher heads for a student of ``width`` outputs: 2-class heads of an earlier stage become
    score heads (w_pos − w_other, the same logit difference) when this stage has a score head."""
    if width != 1 or state["head_0.weight"].shape[0] == 1:
        return state
    from bertdistill.metrics import positive_label_index

    pos = positive_label_index(label_names)
    return {k: v[pos:pos + 1] - v[1 - pos:2 - pos] for k, v in state.items()}


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
    return data


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
        "teachers": _teacher_provenance(teachers),
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


def _input_identity(data_fp: dict, teachers) -> dict:
    """What a resumed run must read again unchanged: the data's content and the label store (its meta.json)."""
    import hashlib

    identity = {"training data": {k: data_fp["train"].get(k) for k in ("rows", "content_sha256")}}
    store = getattr(teachers, "store", None)
    if store is not None:
        meta = (Path(store.path) / "meta.json").read_bytes()
        identity["label store"] = hashlib.sha256(meta).hexdigest()
    return identity


def _teacher_provenance(teachers) -> list[dict]:
    if teachers is None:
        return []
    if teachers.kind == "store":
        return teachers.store.teachers
    return teachers.describe()["teachers"]


def open_teachers(labels: str | None, teacher_models: list[str] | None, only: list[str] | None, label_names,
                  student_cfg):
    """The teacher source of a run: a label store (offline), teacher models (online), or None.

    Online teachers must tokenize as the student will: like its source, or like the first teacher when the
    student is to start from it (``student_source_from_teacher``)."""
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training.teacher_source import OnlineTeachers, StoreTeachers

    if labels and teacher_models:
        raise UserError("both --labels and --teacher given", None,
                        "use --labels STORE (teachers labeled offline) or --teacher NAME=DIR (run in the loop)")
    if labels:
        return StoreTeachers(LabelStore.open(labels), only)
    if teacher_models:
        from bertdistill.models import load_config, load_tokenizer, resolve_model
        from bertdistill.teachers.teacher import parse_teacher_specs

        trust_remote_code = student_cfg.trust_remote_code
        tokenizer_source = student_cfg.source
        specs = [(n, p) for n, p in parse_teacher_specs(list(teacher_models)) if not only or n in only]
        if specs:
            name, path = specs[0]
            path = resolve_model(path, "--teacher")
            layers = getattr(load_config(path, trust_remote_code, option="--teacher"), "num_hidden_layers", None)
            planned = student_source_from_teacher(student_cfg, {"name": name, "path": path, "num_layers": layers})
            if planned is not None:
                tokenizer_source = planned[0]
        from bertdistill.families import input_names

        student_source = resolve_model(tokenizer_source, "--student-from")
        tokenizer = load_tokenizer(student_source, trust_remote_code, option="--student-from")
        student_inputs = input_names(load_config(student_source, trust_remote_code, option="--student-from"))
        teachers = OnlineTeachers(teacher_models, label_names, tokenizer, trust_remote_code, student_inputs)
        if only:
            unknown = [t for t in only if t not in teachers.names]
            if unknown:
                raise UserError(f"teacher {unknown[0]!r} is not among the --teacher models", "--teachers",
                                f"use one of: {', '.join(teachers.names)}")
        return teachers
    return None


def first_teacher(teachers) -> dict | None:
    """Provenance (``name``, ``path``, ``num_layers``, ...) of the first teacher the run uses."""
    if teachers is None:
        return None
    return next((t for t in _teacher_provenance(teachers) if t.get("name") in teachers.names), None)


def student_source_from_teacher(student_cfg, teacher: dict | None) -> tuple[str, str] | None:
    """(teacher directory, why) when a student with no source of its own should start from the first
    teacher's layers: it keeps fewer layers than that teacher, at the teacher's width, and the teacher's
    directory is here. Measured (examples/defaults/RESULTS.md): on 2,000 rows of MRPC and SST-2 the
    teacher's first 3 layers beat the packaged MiniLM's by 1.8 and 2.0 points and never collapsed."""
    if (teacher is None or student_cfg.source is not None or student_cfg.random_init or student_cfg.layers is None
            or any(getattr(student_cfg, k, None) is not None for k in ("width", "heads", "intermediate"))):
        return None
    path, layers = teacher.get("path"), teacher.get("num_layers")
    if not path or not Path(path).is_dir() or not layers or student_cfg.layers >= layers:
        return None
    return str(path), (f"the student starts from teacher {teacher['name']!r}'s layers "
                       f"({student_cfg.layer_map} {student_cfg.layers} of {layers}; --student-from to choose another source)")


def default_lr(student_info: dict, distilled: bool) -> tuple[float, str]:
    """(learning rate, why) when --lr is not given: STUDENT_LR for a student, TEACHER_LR for a whole model."""
    from bertdistill.training.config import STUDENT_LR, TEACHER_LR

    if student_info.get("random_init"):
        return STUDENT_LR, "student default (randomly initialized)"
    if student_info.get("layers", 0) < student_info.get("source_layers", 0):
        return STUDENT_LR, f"student default ({student_info['layers']} of {student_info['source_layers']} layers)"
    if distilled:
        return STUDENT_LR, "student default (trained against teachers)"
    return TEACHER_LR, "default for a whole model fine-tuned without teachers"


def prepare_run(*, config, command: str, teachers, train_data, label_names, labeled: bool, eval_data=None,
                eval_labels=None, held_out_fraction: float = 0.0, default_best: str | None = None):
    """A ``loop.Run`` for either stage: student with one head per teacher (TMKD) or one, objective, sets, record.

    ``held_out_fraction`` > 0 (no eval data) holds out a seeded share of the training rows (whole queries
    for ranking data): a dev set with gold labels when the data has them, and the teachers' outputs.
    """
    from bertdistill.data.tokenize import check_max_length
    from bertdistill.metrics import main_metric
    from bertdistill.training.loop import EvalSet, Run, TrainSet
    from bertdistill.training.objective import DistillationModule, build_objective
    from bertdistill.training.teacher_source import teacher_mode

    distill = config.distill
    names = teachers.names if teachers is not None else []
    mode = teacher_mode(distill.teacher_mode, names) if teachers is not None else None
    head_names = list(names) if mode == "heads" else ["classifier"]
    notes = []
    from_teacher = student_source_from_teacher(config.student, first_teacher(teachers))
    if from_teacher is not None:
        config.student.source, why = from_teacher
        notes.append(why)
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
    if eval_data is not None:
        teacher_logits = None
        if teachers is not None and eval_labels is not None:
            teacher_logits = teachers.eval_logits(store=eval_labels)
        eval_set = EvalSet(TrainSet(encode_rows(tokenizer, eval_data, config.train.max_length, input_names=inputs,
                                                teachers=teachers), pad, teacher_pads=_own_inputs(teachers)),
                           eval_data.kind, label_names,
                           labels=np.asarray(eval_data.dataset["label"]) if eval_data.has_labels else None,
                           groups=eval_data.column("group") if eval_data.has_groups else None,
                           teacher_logits=teacher_logits)
        data_fp["eval"] = eval_data.fingerprint()
    elif held_out_fraction > 0:
        eval_set, encoded, data_fp["eval"] = _held_out(encoded, train_data, held_out_fraction, config.train.seed,
                                                       label_names, teachers, pad, dev=labeled)
    baseline = getattr(config, "baseline", None)
    if baseline and eval_set is not None:  # the same rows, as text, for the --baseline model
        eval_rows = eval_data if eval_data is not None else train_data.subset(eval_set.data.dataset["row"])
    train_set = TrainSet(encoded, pad, teachers, by_group=objective.needs_groups)
    best = config.train.best_metric or default_best
    if best is None and eval_set is not None:
        if eval_set.labels is not None:
            best = main_metric(eval_set.kind, label_names)
        elif teachers is not None and objective.term("kd") is not None:
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
               best_metric=best, fingerprint={**run_fingerprint(config), "inputs": _input_identity(data_fp, teachers)},
               resume=config.resume,
               overwrite=config.overwrite, notes=notes)


def _own_inputs(teachers) -> dict[str, int]:
    """Teachers fed their own tokenization → pad id (online teachers of another tokenizer)."""
    return dict(getattr(teachers, "own_inputs", None) or {})


def _held_out(encoded, data, fraction: float, seed: int, label_names, teachers, pad, dev: bool):
    """(EvalSet, the remaining training rows, its description) for rows held out of the training data.

    ``dev``: a labeled dev split (whole queries, at most 2,000 rows); else a stage-1 share of the corpus.
    """
    from bertdistill.training.guards import DEV_SPLIT_SEED, dev_split
    from bertdistill.training.loop import EvalSet, TrainSet
    from bertdistill.training.pretrain import split_rows

    groups = data.column("group") if data.has_groups and dev else None
    if not 0 < fraction < 1:
        raise UserError(f"held-out fraction {fraction} must be in [0, 1)", "--dev-fraction", "use e.g. 0.1")
    if dev:
        # The same rows for every run on this data, whatever its --seed: a teacher and its students
        # trained with the defaults then share one dev split, and the teacher never trained on the
        # students' dev rows.
        seed = DEV_SPLIT_SEED
        train_rows, dev_rows = dev_split(len(encoded), fraction, seed, groups)
    else:
        train_rows, dev_rows = split_rows(len(encoded), fraction, seed)
    if len(dev_rows) == 0 or len(train_rows) == 0:
        raise UserError(f"{len(encoded)} rows are too few to hold out {fraction:.0%}", "--dev-fraction",
                        "use more training data, or --no-eval")
    labels = np.asarray(data.dataset["label"])[dev_rows] if data.has_labels and dev else None
    eval_set = EvalSet(TrainSet(encoded.select(dev_rows), pad, teacher_pads=_own_inputs(teachers)), data.kind,
                       label_names, labels=labels,
                       groups=[groups[i] for i in dev_rows] if groups is not None else None,
                       teacher_logits=teachers.eval_logits(rows=dev_rows)
                       if teachers is not None and teachers.kind == "store" else None, name="dev" if dev else "held-out")
    described = {"held_out_rows": int(len(dev_rows)), "fraction": fraction, "seed": seed}
    if dev:
        described["whole_queries"] = groups is not None
    return eval_set, encoded.select(train_rows), described


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
