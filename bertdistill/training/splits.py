"""Rows held out of the training data: a labeled dev split (whole queries, the same for every run on the
data) or a share of a stage-1 corpus."""

from __future__ import annotations

import numpy as np

from bertdistill.errors import UserError
from bertdistill.training.batches import EvalSet, TrainSet
from bertdistill.training.guards import DEV_SPLIT_SEED, dev_split
from bertdistill.training.teacher_source import own_inputs


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


def held_out(encoded, data, fraction: float, seed: int, label_names, teachers, pad, dev: bool):
    """(EvalSet, the remaining training rows, its description) for rows held out of the training data.

    ``dev``: a labeled dev split (whole queries, at most 2,000 rows); else a stage-1 share of the corpus.
    """
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
    labels = np.asarray(data.column("label"))[dev_rows] if data.has_labels and dev else None
    eval_set = EvalSet(TrainSet(encoded.select(dev_rows), pad, teacher_pads=own_inputs(teachers)), data.kind,
                       label_names, labels=labels,
                       groups=[groups[i] for i in dev_rows] if groups is not None else None,
                       teacher_logits=teachers.eval_logits(rows=dev_rows)
                       if teachers is not None and teachers.kind == "store" else None, name="dev" if dev else "held-out")
    described = {"held_out_rows": int(len(dev_rows)), "fraction": fraction, "seed": seed}
    if dev:
        described["whole_queries"] = groups is not None
    return eval_set, encoded.select(train_rows), described
