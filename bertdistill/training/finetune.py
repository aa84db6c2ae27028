"""``finetune``: plain supervised fine-tuning, or distillation from a teacher label store (KD, TMKD, PKD)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bertdistill.errors import UserError
from bertdistill.training.config import FinetuneConfig
from bertdistill.training.loop import EvalSet, TrainResult, TrainSet, train


def finetune(config: FinetuneConfig, show_progress: bool = True) -> TrainResult:
    """Train a student (or any classifier) on labeled data, with teacher targets when ``config.labels`` is set."""
    from bertdistill.data.sources import load_task_data
    from bertdistill.data.tokenize import check_max_length
    from bertdistill.metrics import main_metric
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training import setup
    from bertdistill.training.objective import make_objective

    config.train.check()
    config.distill.check()
    setup.check_best_metric(config.train.best_metric)
    store = LabelStore.open(config.labels) if config.labels else None
    train_data = load_task_data(config.train_data, label_names=store.label_names if store else None,
                                require_labels=store is None or config.distill.alpha < 1)
    if store is not None:
        store.check_data(train_data)
    label_names = train_data.label_names or (store.label_names if store else [])
    if not label_names:
        raise UserError("no label names known for the training data", config.train_data.describe(),
                        "give a label column or --label-names")
    eval_data = load_task_data(config.eval_data, label_names=label_names) if config.eval_data else None
    eval_store = None
    if config.eval_labels:
        if eval_data is None:
            raise UserError("--eval-labels needs --eval-data", None, "give the eval data the store was made from")
        eval_store = LabelStore.open(config.eval_labels)
        eval_store.check_data(eval_data, "eval data")

    mode = None
    if store is not None:
        teachers = config.distill.teachers or store.teacher_names
        mode = config.distill.teacher_mode or ("heads" if len(teachers) > 1 else "avg")
    head_names = list(config.distill.teachers or store.teacher_names) if mode == "heads" else ["classifier"]
    model, tokenizer, student_info = setup.build_student(config.student, label_names, head_names, config.train.seed)
    check_max_length(tokenizer, model.config, config.train.max_length)
    objective, targets, objective_info = make_objective(config.distill if store else None, store, model,
                                                        labeled=train_data.has_labels)
    pad = tokenizer.pad_token_id or 0
    train_set = TrainSet(setup.encode_rows(tokenizer, train_data, config.train.max_length), pad, targets)
    eval_set = None
    if eval_data is not None:
        teacher_logits = None
        if eval_store is not None and targets is not None:
            teacher_logits = [eval_store.logits(t) for t in targets.teachers]
        eval_set = EvalSet(TrainSet(setup.encode_rows(tokenizer, eval_data, config.train.max_length), pad),
                           eval_data.kind, label_names,
                           labels=np.asarray(eval_data.dataset["label"]) if eval_data.has_labels else None,
                           groups=eval_data.column("group") if eval_data.has_groups else None,
                           teacher_logits=teacher_logits)
    best = config.train.best_metric
    if best is None and eval_set is not None:
        best = main_metric(eval_data.kind, label_names) if eval_data.has_labels else (
            "distill_loss" if eval_set.teacher_logits is not None else None)
    data_fp = {"train": train_data.fingerprint(), "eval": eval_data.fingerprint() if eval_data else None}
    hidden_layers = objective.student_layers or None

    def save_model(m, directory: Path) -> None:
        from bertdistill.student.model import save_student

        save_student(m, tokenizer, directory, label_names)

    def extras(directory: Path, result: TrainResult) -> None:
        setup.write_record(directory, "finetune", config, result, data_fp, store, student_info, objective_info)

    result = train(config.train, model, train_set, eval_set, objective, config.output, save_model, extras,
                   resume=config.resume, overwrite=config.overwrite, fingerprint=setup.run_fingerprint(config),
                   best_metric=best, hidden_layers=hidden_layers, show_progress=show_progress)
    if show_progress:
        setup.print_summary(result, "finetune")
    return result
