"""Evaluation during training: task metrics on labeled rows, and how close the student is to its teachers."""

from __future__ import annotations

import numpy as np
import torch

from bertdistill.data.tokenize import MODEL_INPUTS, sorted_batches
from bertdistill.devices import move_batch
from bertdistill.training.batches import EvalSet


def evaluate(accelerator, module, eval_set: EvalSet, batch_size: int) -> dict:
    """Task metrics (labeled data) and distill_loss / teacher_agreement / teacher_rank_corr (teacher logits known)."""
    from accelerate.utils import gather_object

    from bertdistill.metrics import (compute_metrics, positive_label_index, predicted_ids, relevance_scores,
                                     softmax, spearman)

    inner = accelerator.unwrap_model(module)
    student = inner.student
    was_training = student.training
    student.eval()
    mine = sorted_batches(eval_set.data.lengths, batch_size)[accelerator.process_index::accelerator.num_processes]
    results = []
    with torch.no_grad(), accelerator.autocast():
        for idx in mine:
            batch = move_batch(eval_set.data.batch(idx), accelerator.device)
            logits = student(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits
            results.append((idx, logits.float().cpu().numpy()))
    if accelerator.num_processes > 1:
        results = gather_object(results)
    if was_training:
        student.train()
    heads = results[0][1].shape[0]
    n = len(eval_set.data)
    all_logits = np.zeros((heads, n, results[0][1].shape[2]), dtype=np.float32)
    for idx, lg in results:
        all_logits[:, idx] = lg
    mean_logits = all_logits.mean(0)
    from bertdistill.training.guards import score_spread

    metrics: dict = {"score_spread": score_spread(mean_logits, eval_set.label_names)}
    if eval_set.teacher_logits is not None:
        metrics["teacher_score_spread"] = float(np.mean([score_spread(t, eval_set.label_names)
                                                         for t in eval_set.teacher_logits]))
    if eval_set.labels is not None:
        metrics.update(compute_metrics(eval_set.kind, eval_set.label_names, eval_set.labels, mean_logits,
                                       eval_set.groups))
        counts = np.bincount(predicted_ids(mean_logits, eval_set.label_names),
                             minlength=max(mean_logits.shape[-1], len(eval_set.label_names)))
        metrics["predicted_class_share"] = float(counts.max() / max(1, counts.sum()))
    scorer = inner.objective.eval_term
    if eval_set.teacher_logits is not None and scorer is not None:
        teachers = torch.from_numpy(np.stack(eval_set.teacher_logits))
        metrics["distill_loss"] = float(scorer.eval_loss(torch.from_numpy(all_logits), teachers))
        names = eval_set.label_names
        if mean_logits.shape[-1] == 1 or eval_set.teacher_logits[0].shape[-1] == 1:
            # A score head: agreement on the relevant/not decision (score > 0), rank correlation of the scores.
            teacher_scores = np.mean([relevance_scores(t, names) for t in eval_set.teacher_logits], axis=0)
            student_scores = relevance_scores(mean_logits, names)
            metrics["teacher_agreement"] = float(((student_scores > 0) == (teacher_scores > 0)).mean())
            metrics["teacher_rank_corr"] = spearman(student_scores, teacher_scores)
            return metrics
        target = np.mean([softmax(t) for t in eval_set.teacher_logits], axis=0)
        metrics["teacher_agreement"] = float((mean_logits.argmax(-1) == target.argmax(-1)).mean())
        if target.shape[-1] == 2:
            # Argmax agreement is near 1 whenever nearly all pairs are negatives (stage-1 corpora); the rank
            # correlation of the positive-class scores says whether the student orders pairs as the teachers do.
            pos = positive_label_index(names) if names else 1
            metrics["teacher_rank_corr"] = spearman(softmax(mean_logits)[:, pos], target[:, pos])
    return metrics


def cache_teacher_logits(run, batch_size: int) -> None:
    """Online teachers' logits of the eval rows, computed once on the run's device and in its precision (for
    distill_loss and agreement); a label store gives them directly."""
    if run.teachers is None or run.eval_set is None:
        return
    if run.eval_set.teacher_logits is None and run.teachers.kind == "online":
        run.eval_set.teacher_logits = run.teachers.eval_logits(data=run.eval_set.data, batch_size=batch_size)
