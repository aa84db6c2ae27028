"""``finetune``: plain supervised fine-tuning, or distillation from teachers (label store or online): KD, TMKD, PKD, ..."""

from __future__ import annotations

from bertdistill.errors import RunFailed, UserError
from bertdistill.training.config import FinetuneConfig
from bertdistill.training.guards import DEV_MIN_TRAIN_ROWS
from bertdistill.training.loop import train
from bertdistill.training.record import print_summary
from bertdistill.training.run import TrainResult
from bertdistill.training.teacher_source import open_teachers


def finetune(config: FinetuneConfig, show_progress: bool = True) -> TrainResult:
    """Train a student (or any classifier) on labeled data, distilling when teachers are given."""
    from bertdistill.data.sources import check_classes, load_task_data
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training import setup

    config.train.check()
    config.distill.check()
    setup.check_best_metric(config.train.best_metric)
    store = LabelStore.open(config.labels) if config.labels else None
    online = bool(config.teacher_models) and not config.labels
    train_data = load_task_data(config.train_data, label_names=store.label_names if store else None,
                                require_labels=(store is None and not online) or config.distill.alpha < 1)
    if store is not None:
        store.check_data(train_data)
    if train_data.has_labels and (store is None and not online or config.distill.alpha < 1):
        check_classes(train_data)  # gold labels are learned from: one class would train a constant
    label_names = train_data.label_names or (store.label_names if store else [])
    if not label_names:
        raise UserError("no label names known for the training data", config.train_data.describe(),
                        "give a label column or --label-names")
    teachers = open_teachers(config.labels, config.teacher_models, config.distill.teachers, label_names,
                                   config.student)
    eval_data = load_task_data(config.eval_data, label_names=label_names) if config.eval_data else None
    eval_store = None
    if config.eval_labels:
        if eval_data is None:
            raise UserError("--eval-labels needs --eval-data", None, "give the eval data the store was made from")
        eval_store = LabelStore.open(config.eval_labels)
        eval_store.check_data(eval_data, "eval data")
    held_out, note = 0.0, None
    if eval_data is None and config.dev_fraction > 0 and train_data.has_labels:
        if train_data.num_rows >= DEV_MIN_TRAIN_ROWS:
            held_out = config.dev_fraction
        else:
            note = (f"{train_data.num_rows} training rows are too few for a dev split (needs {DEV_MIN_TRAIN_ROWS}); "
                    "training without evaluation")
    check_baseline(config, label_names, eval_data is not None or held_out > 0)
    run = setup.prepare_run(config=config, command="finetune", teachers=teachers, train_data=train_data,
                            label_names=label_names, labeled=train_data.has_labels, eval_data=eval_data,
                            eval_labels=eval_store, held_out_fraction=held_out)
    if run.eval_set is not None and run.eval_set.name == "dev":
        note = (f"dev split: {len(run.eval_set.data)} of {train_data.num_rows} training rows held out for "
                "evaluation (--no-eval to train on all)")
    run.notes += [note] if note else []
    result = train(config.train, run, show_progress=show_progress)
    if show_progress:
        print_summary(result, "finetune")
    verdict = result.verdict or {}
    if verdict.get("status") == "failed":
        # Saved, marked as failed (FAILED in the folder, summary.verdict in the record): exit 3, not 2.
        fix = ("see the warnings in training_record.json; change the options, or drop --strict"
               if verdict["reason"] == "strict" else
               "train longer (leave out --epochs/--max-steps: at least 300 updates), lower --lr or --pkd-beta, "
               "check the labels, or pass --allow-collapsed to accept such a model")
        raise RunFailed(f"{verdict['line']}; the model is saved but marked as failed (FAILED)", str(result.output),
                        fix, result=result)
    return result


def check_baseline(config: FinetuneConfig, label_names, has_eval: bool) -> None:
    """--baseline: a trained classifier of this task's labels, scored on the run's dev/eval rows."""
    from bertdistill.models import check_labels, is_classifier, load_config, resolve_model

    if not config.baseline:
        return
    if not has_eval:
        raise UserError("--baseline is scored on the dev or eval rows, but this run evaluates on none",
                        "--baseline", "drop --no-eval (or give --eval-data), or drop --baseline")
    config.baseline = resolve_model(config.baseline, "--baseline")
    model_config = load_config(config.baseline, config.student.trust_remote_code, option="--baseline")
    if not is_classifier(model_config):
        raise UserError("is not a trained classifier", config.baseline,
                        "give --baseline a model trained on this task (e.g. the same student fine-tuned alone)")
    from bertdistill.models import is_score_config

    if not is_score_config(model_config):
        check_labels(model_config, list(label_names), config.baseline)
