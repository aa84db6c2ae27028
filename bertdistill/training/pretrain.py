"""``pretrain-student``: TMKD stage 1 — imitate the teachers on unlabeled question–passage pairs.

Same loop as ``finetune`` with soft losses only (KD per teacher head or averaged, optional PKD). The
output is a plain HF classifier (folded heads) plus the per-teacher heads, which ``finetune
--student-from`` restores when stage 2 uses the same teachers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from bertdistill.errors import UserError
from bertdistill.training.config import PretrainConfig
from bertdistill.training.loop import EvalSet, TrainResult, TrainSet, train


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows): a seeded random ``fraction`` held out, at least one row each."""
    if not 0 <= fraction < 1:
        raise UserError(f"eval fraction {fraction} must be in [0, 1)", "--eval-fraction", "use e.g. 0.02")
    if fraction == 0:
        return np.arange(n), np.arange(0)
    held = max(1, int(round(fraction * n)))
    if held >= n:
        raise UserError(f"{n} rows are too few to hold out {fraction:.0%}", "--eval-fraction",
                        "use a larger corpus or a smaller --eval-fraction")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[held:]), np.sort(perm[:held])


def pretrain_student(config: PretrainConfig, show_progress: bool = True) -> TrainResult:
    """Stage-1 distillation of a student on an unlabeled corpus labeled by ``bertdistill label``."""
    from bertdistill.data.sources import load_task_data
    from bertdistill.data.tokenize import check_max_length
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training import setup
    from bertdistill.training.objective import make_objective

    if not config.labels:
        raise UserError("stage 1 needs the teachers' label store of the corpus", "--labels",
                        "label the corpus with bertdistill label and pass --labels STORE")
    config.train.check()
    config.distill = dataclasses.replace(config.distill, use_hard_labels=False)
    config.distill.check()
    setup.check_best_metric(config.train.best_metric)
    store = LabelStore.open(config.labels)
    spec = dataclasses.replace(config.train_data, unlabeled=True)
    corpus = load_task_data(spec, label_names=store.label_names)
    store.check_data(corpus, "corpus")
    label_names = store.label_names

    teachers = config.distill.teachers or store.teacher_names
    mode = config.distill.teacher_mode or ("heads" if len(teachers) > 1 else "avg")
    head_names = list(teachers) if mode == "heads" else ["classifier"]
    model, tokenizer, student_info = setup.build_student(config.student, label_names, head_names, config.train.seed)
    check_max_length(tokenizer, model.config, config.train.max_length)
    objective, targets, objective_info = make_objective(config.distill, store, model, labeled=False)
    pad = tokenizer.pad_token_id or 0
    encoded = setup.encode_rows(tokenizer, corpus, config.train.max_length)

    eval_set = None
    data_fp = {"train": corpus.fingerprint()}
    if config.eval_data is not None:
        if not config.eval_labels:
            raise UserError("--eval-data needs its label store", "--eval-labels",
                            "label the held-out pairs with bertdistill label and pass --eval-labels STORE")
        eval_store = LabelStore.open(config.eval_labels)
        eval_corpus = load_task_data(dataclasses.replace(config.eval_data, unlabeled=True), label_names=label_names)
        eval_store.check_data(eval_corpus, "eval data")
        eval_set = EvalSet(TrainSet(setup.encode_rows(tokenizer, eval_corpus, config.train.max_length), pad),
                           eval_corpus.kind, label_names,
                           teacher_logits=[eval_store.logits(t) for t in targets.teachers])
        train_rows = np.arange(len(encoded))
        data_fp["eval"] = eval_corpus.fingerprint()
    else:
        train_rows, eval_rows = split_rows(len(encoded), config.eval_fraction, config.train.seed)
        if len(eval_rows):
            eval_set = EvalSet(TrainSet(encoded.select(eval_rows), pad), corpus.kind, label_names,
                               teacher_logits=targets.logits_for(eval_rows))
            data_fp["eval"] = {"held_out_rows": len(eval_rows), "fraction": config.eval_fraction,
                               "seed": config.train.seed}
    train_set = TrainSet(encoded.select(train_rows) if len(train_rows) != len(encoded) else encoded, pad, targets)
    best = config.train.best_metric or ("distill_loss" if eval_set is not None else None)

    def save_model(m, directory: Path) -> None:
        from bertdistill.student.model import save_student

        save_student(m, tokenizer, directory, label_names)

    def extras(directory: Path, result: TrainResult) -> None:
        setup.write_record(directory, "pretrain-student", config, result, data_fp, store, student_info,
                           objective_info)

    result = train(config.train, model, train_set, eval_set, objective, config.output, save_model, extras,
                   resume=config.resume, overwrite=config.overwrite, fingerprint=setup.run_fingerprint(config),
                   best_metric=best, hidden_layers=objective.student_layers or None, show_progress=show_progress)
    if show_progress:
        setup.print_summary(result, "pretrain-student")
    return result
