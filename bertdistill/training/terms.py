"""Loss terms as plug-ins: each names what it needs, owns its projections, and calls one pure loss.

A term is registered by name (``@register``); the objective is the list of active terms (weight > 0)
and returns the weighted total and each part by name. To add a term: a pure function in ``losses``
(formula in its docstring, a hand-computed test) and a class here; the CLI takes it as
``--term NAME=WEIGHT`` with no further change.

Teacher features come from a label store (logits and stored [CLS] states) or from teachers run in the
loop (everything); terms that need more than a store holds say so with ``online_only``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import torch
from torch import nn

from bertdistill.errors import UserError
from bertdistill.student.features import NOTHING, FeatureRequest, Features
from bertdistill.training import losses
from bertdistill.training.pkd import layer_pairs, pkd_layer_map


@dataclass
class TeacherInfo:
    """What the terms need to know of a teacher before any batch: its shape and where its features come from."""

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int | None = None
    online: bool = False
    stored_layers: list[int] = field(default_factory=list)
    """[CLS] layers a label store holds (offline teachers)."""
    token_aligned: bool = True
    """Its tokens are the student's, position by position (False: another tokenizer, run on its own inputs)."""


@dataclass
class TermContext:
    """Everything a term may read when it is built."""

    student_layers: int
    student_width: int
    student_heads: int
    teachers: list[TeacherInfo]
    teacher_mode: str = "avg"
    teacher_weights: list[float] | None = None
    temperature: float = 1.0
    kd_loss: str = "kl"
    pkd: str = "none"
    pkd_projection: bool = True
    layer_match: str = "skip"
    relation_heads: int | None = None
    positive: int = 1
    """Index of the relevant class in the task's labels (turns 2-class logits into one score)."""
    student_residual: dict | None = None
    """A pruned student's {"source_width", "index"}: the source residual dimension each of its own is."""


TERMS: dict[str, type["LossTerm"]] = {}


def register(cls: type["LossTerm"]) -> type["LossTerm"]:
    """Class decorator: make a term available by its ``name``."""
    if cls.name in TERMS:
        raise ValueError(f"loss term {cls.name!r} registered twice")
    TERMS[cls.name] = cls
    return cls


class LossTerm(nn.Module):
    """One named, weighted part of the objective. Subclasses set ``name``, ``formula`` and ``forward``."""

    name: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    online_only: ClassVar[bool] = False
    """Needs states a label store does not hold (all-token hidden states, attentions, query/key/value)."""
    uses_teachers: ClassVar[bool] = True
    needs_groups: ClassVar[bool] = False
    """Compares the candidates of each query: batches are whole query groups with a ``group`` tensor."""
    compares_positions: ClassVar[bool] = False
    """Compares states token by token, so a teacher must tokenize exactly as the student does."""

    def __init__(self, weight: float, ctx: TermContext):
        super().__init__()
        self.weight = float(weight)
        self.ctx = ctx
        if self.uses_teachers and not ctx.teachers:
            raise UserError(f"loss term {self.name!r} needs teachers", None,
                            "give --labels STORE or --teacher NAME=DIR")
        if self.compares_positions:
            other = [t.name for t in ctx.teachers if not t.token_aligned]
            if other:
                usable = ", ".join(n for n, c in TERMS.items() if c.uses_teachers and not c.compares_positions)
                raise UserError(f"loss term {self.name!r} compares token positions, but teacher {other[0]!r} "
                                "tokenizes differently from the student", f"--term {self.name}",
                                f"use a teacher with the student's tokenizer for it, or terms on outputs and "
                                f"[CLS] states ({usable})")
        if self.online_only:
            offline = [t.name for t in ctx.teachers if not t.online]
            if offline:
                raise UserError(f"loss term {self.name!r} needs teachers run in the loop, but "
                                f"{', '.join(offline)} come from a label store", f"--term {self.name}",
                                "pass the teachers as --teacher NAME=DIR instead of --labels")

    def student_request(self) -> FeatureRequest:
        return NOTHING

    def teacher_request(self, teacher: TeacherInfo) -> FeatureRequest:
        return NOTHING

    def describe(self) -> dict:
        return {"weight": self.weight, "formula": self.formula}

    def forward(self, student: Features, teachers: dict[str, Features], batch: dict) -> torch.Tensor:
        raise NotImplementedError


def _projections(ctx: TermContext, enabled: bool, option: str) -> nn.ModuleDict:
    """One learned linear student width → teacher width per distinct teacher width that differs."""
    out = nn.ModuleDict()
    for t in ctx.teachers:
        if t.hidden_size != ctx.student_width and f"w{t.hidden_size}" not in out:
            if not enabled:
                raise UserError(f"student width {ctx.student_width} differs from teacher {t.name!r} width "
                                f"{t.hidden_size}", option, "allow a learned projection (--pkd-projection) "
                                                            "or use a student of the teacher's width")
            out[f"w{t.hidden_size}"] = proj = nn.Linear(ctx.student_width, t.hidden_size)
            index = _residual_index(ctx, t.hidden_size)
            if index is not None:
                # A student pruned from a model of the teacher's width: start from putting each of its
                # dimensions back where pruning took it from. From a random start the large early PKD loss
                # collapsed such students' [CLS] states (examples/wikiqa/RESULTS.md).
                with torch.no_grad():
                    proj.weight.zero_()
                    proj.weight[torch.as_tensor(index), torch.arange(ctx.student_width)] = 1.0
                    proj.bias.zero_()
    return out


def _residual_index(ctx: TermContext, teacher_width: int) -> list[int] | None:
    """The pruned student's residual index into a teacher of its source's width, else None."""
    residual = ctx.student_residual or {}
    index = residual.get("index")
    if residual.get("source_width") != teacher_width or not index or len(index) != ctx.student_width:
        return None
    return index if all(0 <= i < teacher_width for i in index) else None


def _project(projections: nn.ModuleDict, state: torch.Tensor, teacher: TeacherInfo) -> torch.Tensor:
    key = f"w{teacher.hidden_size}"
    if key not in projections:
        return state
    proj = projections[key]
    return proj(state.to(proj.weight.dtype))


def _teacher_mean(values: Sequence[torch.Tensor], ctx: TermContext) -> torch.Tensor:
    """Σ_k w_k · value_k with the normalized teacher weights."""
    w = losses.normalized_weights(len(values), ctx.teacher_weights)
    return sum(wk * v for wk, v in zip(w, values))


def scores_of(logits: torch.Tensor, positive: int) -> torch.Tensor:
    """One relevance score per row from logits (..., C): the logit of a 1-logit head, else z_pos − z_other."""
    if logits.shape[-1] == 1:
        return logits[..., 0].float()
    if logits.shape[-1] != 2:
        raise UserError(f"a relevance score needs 1 or 2 logits, the model has {logits.shape[-1]}", None,
                        "use the ranking terms and --head score with binary (relevant or not) data")
    return logits[..., positive].float() - logits[..., 1 - positive].float()


def _relevant(batch: dict, ctx: TermContext) -> torch.Tensor:
    return (batch["label"] == ctx.positive).float()


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
            relevant = _relevant(batch, self.ctx)
            return torch.stack([losses.pointwise_bce(lg[:, 0], relevant) for lg in student.logits]).mean()
        return torch.stack([losses.hard_ce(lg, batch["label"]) for lg in student.logits]).mean()


@register
class SoftTargets(LossTerm):
    name = "kd"
    formula = ("heads: Σ_k w_k T²·KL(softmax(z_k/T) ‖ softmax(z_s,k/T)); avg: T²·KL(Σ_k w_k softmax(z_k/T) ‖ "
               "softmax(mean_h z_s,h / T)); --kd-loss mse: the same with (z_s − z_t)²; a score head: the same "
               "with Bernoulli KL(σ(t/T) ‖ σ(s/T)) (mse: (s − t)²), t = a teacher's score (z_pos − z_other)")

    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """KD for head logits (heads, B, C) against teacher logits (teachers, B, C)."""
        ctx = self.ctx
        if logits.shape[-1] == 1:
            return self.score_loss(logits[..., 0].float(), scores_of(teacher_logits, ctx.positive))
        teachers = list(teacher_logits)
        if ctx.teacher_mode == "heads" and logits.shape[0] == len(teachers):
            w = losses.normalized_weights(len(teachers), ctx.teacher_weights)
            if ctx.kd_loss == "kl":
                return sum(wk * losses.soft_kl(logits[h], teachers[h], ctx.temperature) for h, wk in enumerate(w))
            return sum(wk * losses.logit_mse(logits[h], teachers[h]) for h, wk in enumerate(w))
        student = logits.float().mean(0)
        if ctx.kd_loss == "mse":
            return losses.logit_mse(student, losses.averaged_teacher_logits(teachers, ctx.teacher_weights))
        target = losses.averaged_teacher_probs(teachers, ctx.temperature, ctx.teacher_weights)
        return losses.soft_kl_probs(student, target, ctx.temperature)

    def score_loss(self, scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
        """Pointwise KD of a score head: student scores (heads, B) against teacher scores (teachers, B)."""
        ctx = self.ctx
        teachers = list(teacher_scores)
        w = losses.normalized_weights(len(teachers), ctx.teacher_weights)
        T = ctx.temperature
        if ctx.teacher_mode == "heads" and scores.shape[0] == len(teachers):
            if ctx.kd_loss == "kl":
                return sum(wk * losses.score_kl(scores[h], torch.sigmoid(teachers[h] / T), T) for h, wk in enumerate(w))
            return sum(wk * losses.logit_mse(scores[h], teachers[h]) for h, wk in enumerate(w))
        student = scores.mean(0)
        if ctx.kd_loss == "mse":
            return losses.logit_mse(student, sum(wk * t for wk, t in zip(w, teachers)))
        return losses.score_kl(student, sum(wk * torch.sigmoid(t / T) for wk, t in zip(w, teachers)), T)

    def describe(self):
        return {**super().describe(), "temperature": self.ctx.temperature, "kd_loss": self.ctx.kd_loss}

    def forward(self, student, teachers, batch):
        return self.soft_loss(student.logits, torch.stack([teachers[t.name].logits for t in self.ctx.teachers]))


@register
class PatientCls(LossTerm):
    name = "pkd"
    formula = "mean over teachers of mean_{b,l} ‖P h_s,l/‖P h_s,l‖ − h_t,m(l)/‖h_t,m(l)‖‖² on [CLS] states (PKD)"

    def __init__(self, weight, ctx):
        super().__init__(weight, ctx)
        self.pairs = {}
        for t in ctx.teachers:
            pairs = pkd_layer_map(t.num_layers, ctx.student_layers, ctx.pkd if ctx.pkd != "none" else "skip")
            if not pairs:
                raise UserError(f"a {ctx.student_layers}-layer student has no intermediate layers to match",
                                "--pkd", "use a student with 2 or more layers, or --pkd none")
            if not t.online:
                missing = [tl for _, tl in pairs if tl not in t.stored_layers]
                if missing:
                    raise UserError(f"teacher {t.name!r} has no stored [CLS] states for layers {missing} "
                                    f"(stored: {t.stored_layers or 'none'})", "--labels",
                                    "re-label with --hidden-layers covering them (e.g. --hidden-layers all)")
            self.pairs[t.name] = pairs
        self.projections = _projections(ctx, ctx.pkd_projection, "--no-pkd-projection")

    def student_request(self):
        return FeatureRequest(hidden=frozenset(s for pairs in self.pairs.values() for s, _ in pairs))

    def teacher_request(self, teacher):
        return FeatureRequest(hidden=frozenset(tl for _, tl in self.pairs[teacher.name]))

    def describe(self):
        return {**super().describe(), "mode": self.ctx.pkd, "pairs": self.pairs,
                "projection": {t.name: f"w{t.hidden_size}" in self.projections for t in self.ctx.teachers},
                "projection_init": {t.name: ("pruned residual index" if _residual_index(self.ctx, t.hidden_size)
                                             else "random") for t in self.ctx.teachers
                                    if f"w{t.hidden_size}" in self.projections}}

    def forward(self, student, teachers, batch):
        parts = []
        for t in self.ctx.teachers:
            pairs = self.pairs[t.name]
            s = torch.stack([student.cls_state(sl) for sl, _ in pairs], dim=1)
            tt = torch.stack([teachers[t.name].cls_state(tl) for _, tl in pairs], dim=1)
            parts.append(losses.pkd_loss(_project(self.projections, s, t), tt))
        return torch.stack(parts).mean()


class _MatchedLayers(LossTerm):
    """A loss on one kind of per-layer state (``feature``: hidden or attentions), averaged over the matched
    (student layer, teacher layer) pairs of ``--match-layers`` and over the teachers (their weights)."""

    online_only = True
    compares_positions = True
    feature: ClassVar[str] = "hidden"
    """The ``Features`` / ``FeatureRequest`` field the term compares."""
    embeddings: ClassVar[bool] = False
    """Also match the embeddings (layer 0)."""

    def __init__(self, weight, ctx):
        super().__init__(weight, ctx)
        self.pairs = {t.name: layer_pairs(t.num_layers, ctx.student_layers, ctx.layer_match, self.embeddings)
                      for t in ctx.teachers}

    def student_request(self):
        return FeatureRequest(**{self.feature: frozenset(s for pairs in self.pairs.values() for s, _ in pairs)})

    def teacher_request(self, teacher):
        return FeatureRequest(**{self.feature: frozenset(tl for _, tl in self.pairs[teacher.name])})

    def describe(self):
        return {**super().describe(), "pairs": self.pairs}

    def layer_loss(self, student_state: torch.Tensor, teacher_state: torch.Tensor, mask, teacher: TeacherInfo):
        raise NotImplementedError

    def forward(self, student, teachers, batch):
        mine = getattr(student, self.feature)
        per_teacher = []
        for t in self.ctx.teachers:
            theirs = getattr(teachers[t.name], self.feature)
            per_teacher.append(torch.stack([self.layer_loss(mine[sl], theirs[tl], student.mask, t)
                                            for sl, tl in self.pairs[t.name]]).mean())
        return _teacher_mean(per_teacher, self.ctx)


@register
class HiddenStates(_MatchedLayers):
    name = "hidden_mse"
    formula = "Σ_k w_k mean_l MSE(W h_s,l, h_t,m(l)) over all real tokens, embeddings included (TinyBERT)"
    feature = "hidden"
    embeddings = True

    def __init__(self, weight, ctx):
        super().__init__(weight, ctx)
        self.projections = _projections(ctx, True, f"--term {self.name}")

    def layer_loss(self, student_state, teacher_state, mask, teacher):
        return losses.hidden_mse(_project(self.projections, student_state, teacher), teacher_state, mask)


@register
class AttentionMaps(_MatchedLayers):
    name = "attention_mse"
    formula = "Σ_k w_k mean_l MSE(A_s,l, A_t,m(l)) over real token pairs and heads (TinyBERT)"
    feature = "attentions"

    def __init__(self, weight, ctx):
        for t in ctx.teachers:
            if t.num_heads != ctx.student_heads:
                raise UserError(f"attention maps need equal head counts: student {ctx.student_heads}, teacher "
                                f"{t.name!r} {t.num_heads}", f"--term {self.name}",
                                "use the MiniLM terms (minilm_attention, minilm_value), which work across head counts")
        super().__init__(weight, ctx)

    def layer_loss(self, student_state, teacher_state, mask, teacher):
        return losses.attention_mse(student_state, teacher_state, mask)


class _LastLayerRelation(LossTerm):
    """MiniLM: relations of the last layers' vectors, split into R relation heads, so widths and head counts may differ."""

    online_only = True
    compares_positions = True
    slots: ClassVar[tuple[int, int]] = (0, 1)
    """Which of (query, key, value) form the relation x·yᵀ."""

    def __init__(self, weight, ctx):
        super().__init__(weight, ctx)
        self.heads = ctx.relation_heads or ctx.student_heads
        for width, who in [(ctx.student_width, "student")] + [(t.hidden_size, f"teacher {t.name!r}")
                                                             for t in ctx.teachers]:
            if width % self.heads:
                raise UserError(f"{who} width {width} is not divisible by {self.heads} relation heads",
                                "--relation-heads", "choose a number of relation heads that divides every width")

    def student_request(self):
        return FeatureRequest(qkv=frozenset({self.ctx.student_layers}))

    def teacher_request(self, teacher):
        return FeatureRequest(qkv=frozenset({teacher.num_layers}))

    def describe(self):
        return {**super().describe(), "relation_heads": self.heads}

    def forward(self, student, teachers, batch):
        a, b = self.slots
        s = student.qkv[self.ctx.student_layers]
        s_rel = losses.relation_log_probs(s[a], s[b], self.heads, student.mask)
        per_teacher = []
        for t in self.ctx.teachers:
            v = teachers[t.name].qkv[t.num_layers]
            t_rel = losses.relation_log_probs(v[a], v[b], self.heads, student.mask)
            per_teacher.append(losses.relation_kl(s_rel, t_rel, student.mask))
        return _teacher_mean(per_teacher, self.ctx)


@register
class MiniLMAttention(_LastLayerRelation):
    name = "minilm_attention"
    formula = "Σ_k w_k mean_{r,i} KL(softmax(q_t k_tᵀ/√d_r) ‖ softmax(q_s k_sᵀ/√d_r)) on the last layer (MiniLM)"
    slots = (0, 1)


@register
class MiniLMValue(_LastLayerRelation):
    name = "minilm_value"
    formula = "Σ_k w_k mean_{r,i} KL(softmax(v_t v_tᵀ/√d_r) ‖ softmax(v_s v_sᵀ/√d_r)) on the last layer (MiniLM)"
    slots = (2, 2)


def _groups(batch: dict, name: str) -> torch.Tensor:
    if "group" not in batch:
        raise UserError(f"loss term {name!r} compares the candidates of each query, but the training data has "
                        "no query groups", "--term", "give ranking data with a group (query id) column "
                                                     "(--group-column), or drop the term")
    return batch["group"]


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

    def forward(self, student, teachers, batch):
        groups = _groups(batch, self.name)
        T = self.ctx.temperature
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
        relevant = _relevant(batch, self.ctx)
        scores = scores_of(student.logits, self.ctx.positive)
        return torch.stack([losses.listwise_ce(s, relevant, groups) for s in scores]).mean()


def build_terms(weights: dict[str, float], ctx: TermContext) -> list[LossTerm]:
    """Instantiate the registered terms with a non-zero weight, in the order given."""
    out = []
    for name, weight in weights.items():
        if name not in TERMS:
            raise UserError(f"unknown loss term {name!r}", "--term", f"use one of: {', '.join(TERMS)}")
        if weight < 0 or weight != weight:
            raise UserError(f"loss term {name!r} has weight {weight}", "--term", "use a finite weight ≥ 0")
        if weight > 0:
            out.append(TERMS[name](weight, ctx))
    return out
