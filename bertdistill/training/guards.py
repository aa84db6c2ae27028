"""A dev split held out of the training data, and the checks that catch a student that learned nothing.

With no eval data, ``finetune`` holds out a deterministic dev split (whole queries for ranking data,
so no query is on both sides), evaluates on it during training and keeps the best checkpoint. After
training, the kept student is checked on that dev set; each failed check is one warning line, stored
in ``training_record.json`` (and an error with ``--strict``):

* it predicts one class for ≥ ``collapse_share`` of the dev rows (not for ranking data);
* its main metric is below the majority baseline (for ranking data: MAP below a random order);
* a distilled student's main metric is below the best teacher's by more than ``teacher_margin``;
* its argmax agreement with the teachers is below ``min_teacher_agreement``;
* its scores barely vary across dev rows (``score_spread`` below ``min_spread_ratio`` of the teachers', or
  below ``min_spread`` without teachers): its order then rests on differences that bf16 or int8 inference
  rounds away (measured: a narrow PKD student with a score std of 0.003 lost 5 MAP points between fp32 and bf16).

Then the run gets a verdict (``run_verdict``): a run whose every evaluation after training began is collapsed
(one class for ≥ ``collapse_share`` of the rows; for ranking data, scores that barely vary) is **failed**, as is
a run with failed checks under ``strict``. A failed run is still saved, with a ``FAILED`` file (its verdict
line) in the model folder and ``summary.verdict`` in ``training_record.json``; ``finetune`` then ends with
exit status 3 (``errors.RunFailed``), unlike bad input (2). ``allow_collapsed`` accepts a collapsed run.

With ``--baseline MODEL`` (a fine-tuned-only student, say) the same dev rows score that model too
(``baseline_metrics``), so the run's own table says whether distillation helped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bertdistill.io import FAILED_MARKER

DEV_SPLIT_SEED = 0
"""The dev split does not follow --seed, so every run on the same data holds out the same rows."""

DEV_MIN_TRAIN_ROWS = 200
"""Below this many training rows no dev split is held out (a few rows give no usable signal)."""


@dataclass
class GuardConfig:
    """Thresholds of the post-training checks."""

    collapse_share: float = 0.95
    teacher_margin: float = 0.10
    min_teacher_agreement: float = 0.75
    min_spread_ratio: float = 0.05
    """Warn when the student's score std across dev rows is below this share of the teachers' mean."""
    min_spread: float = 0.01
    """Without teachers: warn when the student's score std across dev rows is below this."""
    strict: bool = False
    """Fail (exit 3, like a collapsed run) when a check fails, after writing the model and its record."""
    allow_collapsed: bool = False
    """Accept a run whose every evaluation collapsed (exit 0, no FAILED marker; the warnings stay)."""




def dev_split(n: int, fraction: float, seed: int, groups: list | None = None,
              max_rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, dev rows): a seeded ``fraction`` (at most ``max_rows``), whole groups when ``groups``."""
    rng = np.random.default_rng(seed)
    want = min(max_rows, max(1, int(round(fraction * n))))
    if groups is None:
        dev = np.sort(rng.permutation(n)[:want])
    else:
        codes = {}
        ids = np.array([codes.setdefault(g, len(codes)) for g in groups])
        order = rng.permutation(len(codes))
        sizes = np.bincount(ids, minlength=len(codes))
        taken, chosen = 0, []
        for g in order:
            if taken >= want or len(chosen) >= len(codes) - 1:
                break
            chosen.append(g)
            taken += sizes[g]
        dev = np.sort(np.flatnonzero(np.isin(ids, chosen)))
    mask = np.ones(n, dtype=bool)
    mask[dev] = False
    return np.flatnonzero(mask), dev


def majority_baseline(kind: str, label_names, labels: np.ndarray, groups=None) -> dict:
    """The metrics of always answering the dev set's most frequent class."""
    from bertdistill.metrics import compute_metrics

    majority = int(np.bincount(labels, minlength=len(label_names)).argmax())
    logits = np.zeros((len(labels), len(label_names)), dtype=np.float32)
    logits[:, majority] = 1.0
    metrics = compute_metrics(kind, label_names, labels, logits, groups)
    if kind == "ranking":
        # A constant score ranks candidates in input order, which says nothing; MAP/MRR of a random order
        # (the mean of 20 seeded shuffles) is what a ranker that learned nothing gets.
        rng = np.random.default_rng(0)
        draws = [compute_metrics(kind, label_names, labels, rng.normal(size=logits.shape).astype(np.float32), groups)
                 for _ in range(20)]
        metrics.update({k: float(np.mean([d[k] for d in draws])) for k in ("map", "mrr")})
    return metrics


def teacher_metrics(kind: str, label_names, labels: np.ndarray, teacher_logits: list[np.ndarray],
                    names: list[str], groups=None) -> dict[str, dict]:
    from bertdistill.metrics import compute_metrics

    return {name: compute_metrics(kind, label_names, labels, lg, groups) for name, lg in zip(names, teacher_logits)}


def score_spread(logits: np.ndarray, label_names) -> float:
    """Std over rows of what orders them: the relevance score for 1 or 2 logits, else the centered logits' mean std."""
    from bertdistill.metrics import relevance_scores

    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] <= 2:
        return float(relevance_scores(logits, label_names).std())
    return float((logits - logits.mean(-1, keepdims=True)).std(0).mean())


def check_student(metrics: dict, main: str, baseline: dict, teachers: dict[str, dict], guards: GuardConfig,
                  distilled: bool, kind: str = "pair") -> list[str]:
    """One warning line per failed check of the kept student's dev metrics.

    Ranking data is judged by its ranking metric: with few relevant candidates per query, answering the
    majority class everywhere is normal for a good ranker, so the one-class check is left out there."""
    warnings = []
    share = metrics.get("predicted_class_share")
    if kind != "ranking" and share is not None and share >= guards.collapse_share:
        warnings.append(f"the student predicts one class for {share:.0%} of the dev rows (collapsed)")
    value = metrics.get(main)
    if value is not None and main in baseline and value < baseline[main]:
        what = "a random order" if kind == "ranking" else "the majority baseline"
        warnings.append(f"dev {main} {value:.4f} is below {what} ({baseline[main]:.4f})")
    if distilled and value is not None and teachers:
        best_name, best = max(((n, m.get(main)) for n, m in teachers.items() if m.get(main) is not None),
                              key=lambda x: x[1], default=(None, None))
        if best is not None and value < best - guards.teacher_margin:
            warnings.append(f"dev {main} {value:.4f} is more than {guards.teacher_margin:.2f} below "
                            f"teacher {best_name!r} ({best:.4f})")
    spread, teacher_spread = metrics.get("score_spread"), metrics.get("teacher_score_spread")
    if spread is not None:
        if teacher_spread and spread < guards.min_spread_ratio * teacher_spread:
            warnings.append(f"the student's scores barely vary across dev rows (std {spread:.4g}, teachers "
                            f"{teacher_spread:.3g}): its order can change under bf16 or int8 inference")
        elif not teacher_spread and spread < guards.min_spread:
            warnings.append(f"the student's scores barely vary across dev rows (std {spread:.4g}): its order "
                            "can change under bf16 or int8 inference")
    agreement = metrics.get("teacher_agreement")
    if distilled and agreement is not None and agreement < guards.min_teacher_agreement:
        warnings.append(f"the student agrees with the teachers on {agreement:.0%} of the dev rows "
                        f"(below {guards.min_teacher_agreement:.0%})")
    return warnings


def collapsed(evaluation: dict, kind: str, guards: GuardConfig) -> bool:
    """True when an evaluation's student answers one class for ≥ ``collapse_share`` of the rows; for ranking data
    (where that is normal), when its scores barely vary (the spread check of ``check_student``)."""
    if kind != "ranking":
        share = evaluation.get("predicted_class_share")
        return share is not None and share >= guards.collapse_share
    spread, teacher_spread = evaluation.get("score_spread"), evaluation.get("teacher_score_spread")
    if spread is None:
        return False
    return spread < (guards.min_spread_ratio * teacher_spread if teacher_spread else guards.min_spread)


def run_verdict(evaluations: list[dict], warnings: list[str], kind: str, guards: GuardConfig) -> dict:
    """{"status": "ok" | "failed", "line": one-line verdict, "reason": "strict" | "collapsed" | None,
    "collapsed": every evaluation after step 0 collapsed}. The evaluation before the first update shows the
    untrained start, not the run's result, so it does not count."""
    trained = [e for e in evaluations if e.get("step", 0) > 0]
    all_collapsed = bool(trained) and all(collapsed(e, kind, guards) for e in trained)
    line = "trained"
    if all_collapsed:
        steps = (f"step {trained[0]['step']}" if len(trained) == 1
                 else f"steps {trained[0]['step']}–{trained[-1]['step']}")
        what = ("its scores barely varied" if kind == "ranking"
                else f"it answered one class for ≥ {guards.collapse_share:.0%} of the rows")
        line = f"collapsed: {what} at every evaluation after training began ({len(trained)}, {steps})"
    if guards.strict and warnings:
        return {"status": "failed", "reason": "strict", "collapsed": all_collapsed,
                "line": f"the student failed {len(warnings)} check(s) under --strict: {warnings[0]}"}
    if all_collapsed and not guards.allow_collapsed:
        return {"status": "failed", "reason": "collapsed", "collapsed": True, "line": line}
    if all_collapsed:
        line += "; accepted with --allow-collapsed"
    return {"status": "ok", "reason": None, "collapsed": all_collapsed, "line": line}


def write_verdict(directory, verdict: dict | None) -> None:
    """The FAILED marker of a failed run (inside the folder before it is published)."""
    from pathlib import Path

    if verdict and verdict["status"] == "failed":
        (Path(directory) / FAILED_MARKER).write_text(f"failed: {verdict['line']}\n")


def baseline_metrics(model: str, data, label_names, max_length: int, batch_size: int, backend: str = "torch",
                     trust_remote_code: bool = False) -> dict:
    """The task metrics of a trained model (``--baseline``) on ``data`` (the run's dev/eval rows), with its
    logits put in the data's label order, and its one-class share."""
    from bertdistill.inference import load_scorer, predict_logits
    from bertdistill.metrics import compute_metrics, predicted_ids
    from bertdistill.models import is_score_config, label_permutation

    scorer = load_scorer(model, backend, threads=None, trust_remote_code=trust_remote_code)
    logits = predict_logits(scorer, data, max_length, batch_size)
    if not is_score_config(scorer.config):
        logits = logits[:, label_permutation(scorer.label_names, list(label_names), "--baseline")]
    labels = np.asarray(data.column("label"))
    groups = data.column("group") if data.has_groups else None
    metrics = compute_metrics(data.kind, label_names, labels, logits, groups)
    counts = np.bincount(predicted_ids(logits, label_names), minlength=max(logits.shape[-1], len(label_names)))
    metrics["predicted_class_share"] = float(counts.max() / max(1, counts.sum()))
    return {"model": str(model), **metrics}


def baseline_line(report: dict, main: str | None) -> str | None:
    """One line comparing the kept student with the --baseline model on the main metric of the same rows."""
    base, student = report.get("baseline") or {}, report.get("student") or {}
    if main not in base or main not in student:
        return None
    delta = student[main] - base[main]
    where = "above" if delta > 0 else "below" if delta < 0 else "level with"
    return (f"against the baseline ({base.get('model')}): dev {main} {student[main]:.4f}, the baseline's "
            f"{base[main]:.4f} ({delta:+.4f}, {where} it)")
