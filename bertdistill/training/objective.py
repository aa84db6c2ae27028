"""The training objective: the active loss terms, built from the run's options, and the module the optimizer trains.

Stage 2 (finetune with teachers): (1−α)·hard + α·kd + β·pkd + any ``--term NAME=WEIGHT``. Stage 1
(pretrain-student): the same without hard. Plain fine-tuning: hard only. Each part is logged by name.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from bertdistill.data.tokenize import MODEL_INPUTS
from bertdistill.errors import UserError
from bertdistill.families import shape_of
from bertdistill.prune.shrink import RESIDUAL_ATTR
from bertdistill.student.features import NOTHING, FeatureRequest, Features, use_eager_attention
from bertdistill.training import losses
from bertdistill.training.config import DistillConfig
from bertdistill.training.terms import TERMS, LossTerm, TeacherInfo, TermContext, build_terms, check_weight


class Objective(nn.Module):
    """The active terms; returns the weighted total and each (unweighted) part by name."""

    def __init__(self, terms: Sequence[LossTerm]):
        super().__init__()
        if not terms:
            raise ValueError("an objective needs at least one term with a non-zero weight")
        self.terms = nn.ModuleList(terms)

    @property
    def weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self.terms}

    @property
    def needs_groups(self) -> bool:
        """A term compares each query's candidates: train on whole query groups."""
        return any(t.needs_groups for t in self.terms)

    def term(self, name: str) -> LossTerm | None:
        return next((t for t in self.terms if t.name == name), None)

    @property
    def eval_term(self) -> LossTerm | None:
        """The first term that scores whole-set logits against the teachers' (``distill_loss`` in evaluations)."""
        return next((t for t in self.terms if type(t).eval_loss is not LossTerm.eval_loss), None)

    def student_request(self) -> FeatureRequest:
        request = NOTHING
        for t in self.terms:
            request = request | t.student_request()
        return request

    def teacher_request(self, teacher: TeacherInfo) -> FeatureRequest:
        request = NOTHING
        for t in self.terms:
            if t.uses_teachers:
                request = request | t.teacher_request(teacher)
        return request

    def forward(self, student: Features, teachers: dict[str, Features], batch: dict):
        parts = {t.name: t(student, teachers, batch) for t in self.terms}
        total = losses.weighted_sum(parts, self.weights)
        return total, parts


class DistillationModule(nn.Module):
    """What the optimizer trains and Accelerate wraps: the student and the terms' own parameters (projections)."""

    def __init__(self, student: nn.Module, objective: Objective):
        super().__init__()
        self.student = student
        self.objective = objective
        self.request = objective.student_request()
        if self.request.attentions:
            use_eager_attention(student.classifier)

    def forward(self, batch: dict, teachers: dict[str, Features]):
        """(weighted total, {term name: value}) for a batch and the teachers' features on it."""
        features = self.student(**{k: batch[k] for k in MODEL_INPUTS if k in batch}, request=self.request)
        return self.objective(features, teachers, batch)


def term_settings(distill: DistillConfig | None) -> tuple[dict[str, float], dict[str, dict]]:
    """The ``terms`` of a config split into weights and per-term options: ``{name: weight}`` or
    ``{name: {"weight": w, option: value, ...}}`` (a term given options without a weight has weight 1)."""
    weights, options = {}, {}
    for name, value in ((distill.terms or {}) if distill is not None else {}).items():
        if isinstance(value, dict):
            value = dict(value)
            weights[name] = value.pop("weight", 1.0)
            options[name] = value
        else:
            weights[name] = value
    return weights, options


def objective_weights(distill: DistillConfig | None, labeled: bool, has_teachers: bool) -> dict[str, float]:
    """Term weights from the options: (1−α)·hard + α·kd + β·pkd (+ --term), or hard alone without teachers."""
    extra, _ = term_settings(distill)
    if not has_teachers:
        weights = {"hard": 1.0}
        for name, weight in extra.items():
            if name in TERMS and TERMS[name].uses_teachers and check_weight(name, weight) > 0:
                raise UserError(f"loss term {name!r} needs teachers", "--term",
                                "give --labels STORE or --teacher NAME=DIR")
            weights[name] = weight
        return weights
    if not labeled and distill.use_hard_labels and distill.alpha < 1:
        raise UserError("training data has no gold labels, so the hard-label loss (weight 1−α) cannot be computed",
                        "--alpha", "use --alpha 1 (teacher labels only), or give the label column")
    weights = {"hard": (1 - distill.alpha) if (distill.use_hard_labels and labeled) else 0.0,
               "kd": distill.alpha if distill.use_hard_labels else 1.0,
               "pkd": distill.pkd_beta if distill.pkd != "none" else 0.0}
    weights.update(extra)
    return weights


def build_objective(distill: DistillConfig | None, teachers: Sequence[TeacherInfo], student_config,
                    mode: str, labeled: bool = True, positive: int = 1) -> tuple[Objective, dict]:
    """The objective and its description for the training record."""
    distill = distill or DistillConfig()
    distill.check()
    if distill.teacher_weights is not None and len(distill.teacher_weights) != len(teachers):
        names = ", ".join(t.name for t in teachers)
        raise UserError(f"{len(distill.teacher_weights)} teacher weights for {len(teachers)} teachers",
                        "--teacher-weights", f"give one weight per teacher ({names})")
    weights = objective_weights(distill, labeled, bool(teachers))
    shape = shape_of(student_config)
    layers, width, heads = ((shape.layers, shape.hidden, shape.heads) if shape else
                            (student_config.num_hidden_layers, student_config.hidden_size,
                             student_config.num_attention_heads))
    ctx = TermContext(student_layers=layers, student_width=width, student_heads=heads, teachers=list(teachers),
                      teacher_mode=mode, teacher_weights=distill.teacher_weights, positive=positive,
                      student_residual=getattr(student_config, RESIDUAL_ATTR, None))
    # Run-wide settings (--temperature, --kd-loss, --pkd, ...) are the defaults of the terms' options.
    objective = Objective(build_terms(weights, ctx, term_settings(distill)[1], settings=distill))
    if not teachers:
        return objective, {"mode": "fine-tune", "weights": weights, "terms": _described_terms(objective)}
    pkd = objective.term("pkd")
    described = {"mode": "distill", "teacher_mode": mode, "teachers": [t.name for t in teachers], "weights": weights,
                 "temperature": distill.temperature, "kd_loss": distill.kd_loss,
                 "teacher_weights": distill.teacher_weights,
                 "pkd": {"mode": distill.pkd, "pairs": pkd.pairs if pkd else {},
                         "projection": pkd.describe()["projection"] if pkd else {}},
                 "terms": _described_terms(objective)}
    return objective, described


def _described_terms(objective: Objective) -> dict:
    return {t.name: t.describe() for t in objective.terms}
