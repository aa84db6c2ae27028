"""``pretrain-student``: TMKD stage 1 — imitate the teachers on unlabeled question–passage pairs.

Same loop as ``finetune`` with soft losses only (KD per teacher head or averaged, optional PKD). The
output is a plain HF classifier (folded heads) plus the per-teacher heads, which ``finetune
--student-from`` restores when stage 2 uses the same teachers.
"""

from __future__ import annotations

import dataclasses

from bertdistill.errors import UserError
from bertdistill.training.config import PretrainConfig
from bertdistill.training.loop import train
from bertdistill.training.record import print_summary
from bertdistill.training.run import TrainResult
from bertdistill.training.teacher_source import open_teachers


def pretrain_student(config: PretrainConfig, show_progress: bool = True) -> TrainResult:
    """Stage-1 distillation of a student on an unlabeled corpus, against stored or online teachers."""
    from bertdistill.data.sources import load_task_data
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training import setup

    if not config.labels and not config.teacher_models:
        raise UserError("stage 1 needs the teachers: their label store of the corpus, or the teacher models",
                        "--labels", "label the corpus with bertdistill label and pass --labels STORE, "
                                    "or pass --teacher NAME=DIR to run the teachers in the loop")
    config.train.check()
    config.distill = dataclasses.replace(config.distill, use_hard_labels=False)
    config.distill.check()
    setup.check_best_metric(config.train.best_metric)
    store = LabelStore.open(config.labels) if config.labels else None
    corpus = load_task_data(dataclasses.replace(config.train_data, unlabeled=True),
                            label_names=store.label_names if store else None)
    if store is not None:
        store.check_data(corpus, "corpus")
    label_names = store.label_names if store is not None else _teacher_label_names(config)
    teachers = open_teachers(config.labels, config.teacher_models, config.distill.teachers, label_names,
                                   config.student)
    eval_corpus = eval_store = None
    if config.eval_data is not None:
        eval_corpus = load_task_data(dataclasses.replace(config.eval_data, unlabeled=True), label_names=label_names)
        if store is not None:
            if not config.eval_labels:
                raise UserError("--eval-data needs its label store", "--eval-labels",
                                "label the held-out pairs with bertdistill label and pass --eval-labels STORE")
            eval_store = LabelStore.open(config.eval_labels)
            eval_store.check_data(eval_corpus, "eval data")
    run = setup.prepare_run(config=config, command="pretrain-student", teachers=teachers, train_data=corpus,
                            label_names=label_names, labeled=False, eval_data=eval_corpus, eval_labels=eval_store,
                            held_out_fraction=config.eval_fraction if eval_corpus is None else 0.0)
    result = train(config.train, run, show_progress=show_progress)
    if show_progress:
        print_summary(result, "pretrain-student")
    return result


def _teacher_label_names(config: PretrainConfig) -> list[str]:
    """Online stage 1 has no gold labels: the label names are the first teacher's."""
    from bertdistill.models import config_label_names, load_config
    from bertdistill.teachers.teacher import parse_teacher_specs

    _, path = parse_teacher_specs(list(config.teacher_models))[0]
    return config_label_names(load_config(path, config.student.trust_remote_code, option="--teacher"))
