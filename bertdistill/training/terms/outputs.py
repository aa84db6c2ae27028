"""Terms on the student's outputs: gold labels, the teachers' soft targets, and the ranking terms over each
query's candidates. They need only logits, so they work from a label store and across vocabularies."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bertdistill.errors import UserError
from bertdistill.training import losses
from bertdistill.training.terms.base import LossTerm, TermContext, check_temperature, register, scores_of


def relevant_of(batch: dict, ctx: TermContext) -> torch.Tensor:
    return (batch["label"] == ctx.positive).float()


def _groups(batch: dict, name: str) -> torch.Tensor:
    if "group" not in batch:
        raise UserError(f"loss term {name!r} compares the candidates of each query, but the training data has "
                        "no query groups", "--term", "give ranking data with a group (query id) column "
                                                     "(--group-column), or drop the term")
    return batch["group"]


@dataclass
class KDOptions:
    temperature: float = field(default=2.0, metadata={"from": "temperature"})
    """Softmax temperature T (default: --temperature)."""
    loss: str = field(default="kl", metadata={"from": "kd_loss", "choices": ("kl", "mse")})
    """kl (T²·KL of softened probabilities) or mse (on logits); default: --kd-loss."""

    def check(self, where: str) -> None:
        check_temperature(self.temperature, where)


@dataclass
class ListwiseOptions:
    temperature: float = field(default=2.0, metadata={"from": "temperature"})
    """Softmax temperature T over each query's candidates (default: --temperature)."""

    def check(self, where: str) -> None:
        check_temperature(self.temperature, where)


@register
class HardLabels(LossTerm):
    name = "hard"
    formula = ("mean over heads of mean_b −log softmax(z_s)[y]; a score head (1 logit): "
               "mean_b BCE(σ(s), y = relevant)")
    uses_teachers = False

    def forward(self, student, teachers, batch):
        if "label" not in batch:
            raise UserError("training data has no gold labels but the hard-label loss is on", None,
                            "give a labeled training set, or --alpha 1 to train on teacher labels only")
        if student.logits.shape[-1] == 1:
            relevant = relevant_of(batch, self.ctx)
            return torch.stack([losses.pointwise_bce(lg[:, 0], relevant) for lg in student.logits]).mean()
        return torch.stack([losses.hard_ce(lg, batch["label"]) for lg in student.logits]).mean()


@register
class SoftTargets(LossTerm):
    name = "kd"
    formula = ("heads: Σ_k w_k T²·KL(softmax(z_k/T) ‖ softmax(z_s,k/T)); avg: T²·KL(Σ_k w_k softmax(z_k/T) ‖ "
               "softmax(mean_h z_s,h / T)); loss=mse: the same with (z_s − z_t)²; a score head: the same "
               "with Bernoulli KL(σ(t/T) ‖ σ(s/T)) (mse: (s − t)²), t = a teacher's score (z_pos − z_other)")
    Options = KDOptions

    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """KD for head logits (heads, B, C) against teacher logits (teachers, B, C)."""
        ctx = self.ctx
        if logits.shape[-1] == 1:
            return self.score_loss(logits[..., 0].float(), scores_of(teacher_logits, ctx.positive))
        teachers = list(teacher_logits)
        if ctx.teacher_mode == "heads" and logits.shape[0] == len(teachers):
            w = losses.normalized_weights(len(teachers), ctx.teacher_weights)
            if self.options.loss == "kl":
                return sum(wk * losses.soft_kl(logits[h], teachers[h], self.options.temperature) for h, wk in enumerate(w))
            return sum(wk * losses.logit_mse(logits[h], teachers[h]) for h, wk in enumerate(w))
        student = logits.float().mean(0)
        if self.options.loss == "mse":
            return losses.logit_mse(student, losses.averaged_teacher_logits(teachers, ctx.teacher_weights))
        target = losses.averaged_teacher_probs(teachers, self.options.temperature, ctx.teacher_weights)
        return losses.soft_kl_probs(student, target, self.options.temperature)

    def score_loss(self, scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
        """Pointwise KD of a score head: student scores (heads, B) against teacher scores (teachers, B)."""
        ctx = self.ctx
        teachers = list(teacher_scores)
        w = losses.normalized_weights(len(teachers), ctx.teacher_weights)
        T = self.options.temperature
        if ctx.teacher_mode == "heads" and scores.shape[0] == len(teachers):
            if self.options.loss == "kl":
                return sum(wk * losses.score_kl(scores[h], torch.sigmoid(teachers[h] / T), T) for h, wk in enumerate(w))
            return sum(wk * losses.logit_mse(scores[h], teachers[h]) for h, wk in enumerate(w))
        student = scores.mean(0)
        if self.options.loss == "mse":
            return losses.logit_mse(student, sum(wk * t for wk, t in zip(w, teachers)))
        return losses.score_kl(student, sum(wk * torch.sigmoid(t / T) for wk, t in zip(w, teachers)), T)

    def eval_loss(self, student_logits, teacher_logits):
        return self.soft_loss(student_logits, teacher_logits)

    def forward(self, student, teachers, batch):
        return self.soft_loss(student.logits, torch.stack([teachers[t.name].logits for t in self.ctx.teachers]))


class _QueryTerm(LossTerm):
    """A term over each query's candidates: student scores (heads, B) against one target per head or averaged."""

    needs_groups = True

    def per_head(self, scores: torch.Tensor, targets: list[torch.Tensor], loss) -> torch.Tensor:
        """heads mode with one head per target: Σ_k w_k loss(s_k, target_k); else loss(mean_h s_h, Σ_k w_k target_k)."""
        w = losses.normalized_weights(len(targets), self.ctx.teacher_weights)
        if self.ctx.teacher_mode == "heads" and scores.shape[0] == len(targets) > 1:
            return sum(wk * loss(scores[h], targets[h]) for h, wk in enumerate(w))
        return loss(scores.mean(0), sum(wk * t for wk, t in zip(w, targets)))

    def teacher_scores(self, teachers: dict) -> list[torch.Tensor]:
        return [scores_of(teachers[t.name].logits, self.ctx.positive) for t in self.ctx.teachers]


@register
class ListwiseKD(_QueryTerm):
    name = "listwise_kd"
    formula = ("T² · mean_q KL(softmax(t_q/T) ‖ softmax(s_q/T)) over each query's candidates; t = the teachers' "
               "scores averaged per --teacher-weights (or one head per teacher)")
    Options = ListwiseOptions

    def forward(self, student, teachers, batch):
        groups = _groups(batch, self.name)
        T = self.options.temperature
        return self.per_head(scores_of(student.logits, self.ctx.positive), self.teacher_scores(teachers),
                             lambda s, t: losses.listwise_kd(s, t, groups, T))


@register
class MarginMSE(_QueryTerm):
    name = "margin_mse"
    formula = ("mean over pairs (i, j) of one query with t_i > t_j of ((s_i − s_j) − (t_i − t_j))² "
               "(Margin-MSE, Hofstätter et al. 2020); t averaged over teachers (or one head per teacher)")

    def forward(self, student, teachers, batch):
        groups = _groups(batch, self.name)
        return self.per_head(scores_of(student.logits, self.ctx.positive), self.teacher_scores(teachers),
                             lambda s, t: losses.margin_mse(s, t, groups))


@register
class ListwiseCE(_QueryTerm):
    name = "listwise_ce"
    formula = "mean over heads and queries q with a relevant candidate of −Σ_{i∈q} (y_i/Σ_j y_j) log softmax(s_q)_i"
    uses_teachers = False

    def forward(self, student, teachers, batch):
        groups = _groups(batch, self.name)
        if "label" not in batch:
            raise UserError("training data has no gold labels but the listwise_ce term is on", "--term",
                            "give a labeled training set, or use listwise_kd")
        relevant = relevant_of(batch, self.ctx)
        scores = scores_of(student.logits, self.ctx.positive)
        return torch.stack([losses.listwise_ce(s, relevant, groups) for s in scores]).mean()
