"""Terms on the models' internal states: PKD's [CLS] states (a label store holds them), TinyBERT's hidden
states and attention maps and MiniLM's relations (teachers run in the loop, with the student's tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from bertdistill.errors import UserError
from bertdistill.student.features import FeatureRequest
from bertdistill.training import losses
from bertdistill.training.pkd import layer_pairs, pkd_layer_map
from bertdistill.training.terms.base import (LossTerm, TeacherInfo, fit_projection, project, projections, register,
                                             residual_index, teacher_mean)


@dataclass
class PKDOptions:
    mode: str = field(default="skip", metadata={"from": "pkd", "choices": ("skip", "last")})
    """Which teacher layers the student's intermediate layers match: skip or last (default: --pkd)."""
    learn_projection: bool = field(default=True, metadata={"from": "pkd_projection"})
    """Learn a projection when student and teacher widths differ, else refuse (default: --pkd-projection)."""
    projection_start: str = field(default="fit", metadata={"choices": ("fit", "random")})
    """Where a learned projection starts when pruning gives no index to start from: fit (least squares from the
    student's to the teacher's [CLS] states on the first training batch) or random."""


@dataclass
class MatchOptions:
    layers: str = field(default="skip", metadata={"from": "match_layers"})
    """Layer map: skip, last or teacher layers "i,j,k" (default: --match-layers)."""


@dataclass
class RelationOptions:
    relation_heads: int | None = field(default=None, metadata={"from": "relation_heads"})
    """Relation heads (default: --relation-heads, else the student's attention heads)."""

    def check(self, where: str) -> None:
        if self.relation_heads is not None and (isinstance(self.relation_heads, bool) or self.relation_heads < 1):
            raise UserError("relation heads must be at least 1", where, "use e.g. relation_heads=12")


@register
class PatientCls(LossTerm):
    name = "pkd"
    formula = "mean over teachers of mean_{b,l} ‖P h_s,l/‖P h_s,l‖ − h_t,m(l)/‖h_t,m(l)‖‖² on [CLS] states (PKD)"
    Options = PKDOptions

    def __init__(self, weight, ctx, options=None):
        super().__init__(weight, ctx, options)
        self.pairs = {}
        for t in ctx.teachers:
            pairs = pkd_layer_map(t.num_layers, ctx.student_layers, self.options.mode)
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
        self.projections = projections(ctx, self.options.learn_projection, "--no-pkd-projection")
        # Which projections still wait for their fitted start (saved with the term, so a resumed run does not
        # refit). From a random start, the first updates of a β-weighted loss near its maximum (2) rewrite the
        # student's lower layers to serve a random map: a pretrained MiniLM under an MPNet teacher collapsed to
        # one class on MRPC while KD alone reached 0.80 (examples/mpnet/RESULTS.md).
        self.register_buffer("unfitted", torch.tensor([self.options.projection_start == "fit"
                                                       and not self._pruned_start(key) for key in self.projections],
                                                      dtype=torch.bool))
        self._register_load_state_dict_pre_hook(self._fitted_if_missing)

    def _fitted_if_missing(self, state_dict, prefix, *args) -> None:
        """A checkpoint written before the fitted start holds trained projections: never refit them."""
        state_dict.setdefault(prefix + "unfitted", torch.zeros(len(self.projections), dtype=torch.bool))

    def _pruned_start(self, key: str) -> bool:
        return residual_index(self.ctx, int(key[1:])) is not None

    def _fit_projections(self, student_states: dict, teacher_states: dict) -> None:
        """Start each waiting projection at the least-squares map of this batch's student states onto the
        normalized teacher states of every teacher of its width."""
        for i, key in enumerate(self.projections):
            if not bool(self.unfitted[i]):
                continue
            xs, ys = [], []
            for t in self.ctx.teachers:
                if f"w{t.hidden_size}" == key:
                    xs.append(student_states[t.name])
                    ys.append(torch.nn.functional.normalize(teacher_states[t.name].float(), dim=-1))
            fit_projection(self.projections[key], torch.cat(xs), torch.cat(ys))
            self.unfitted[i] = False

    def student_request(self):
        return FeatureRequest(hidden=frozenset(s for pairs in self.pairs.values() for s, _ in pairs))

    def teacher_request(self, teacher):
        return FeatureRequest(hidden=frozenset(tl for _, tl in self.pairs[teacher.name]))

    def describe(self):
        return {**super().describe(), "pairs": self.pairs,
                "projection": {t.name: f"w{t.hidden_size}" in self.projections for t in self.ctx.teachers},
                "projection_init": {t.name: ("pruned residual index" if residual_index(self.ctx, t.hidden_size)
                                             else "least squares on the first training batch"
                                             if self.options.projection_start == "fit" else "random")
                                    for t in self.ctx.teachers if f"w{t.hidden_size}" in self.projections}}

    def forward(self, student, teachers, batch):
        pairs_s, pairs_t = {}, {}
        for t in self.ctx.teachers:
            pairs = self.pairs[t.name]
            pairs_s[t.name] = torch.stack([student.cls_state(sl) for sl, _ in pairs], dim=1)
            pairs_t[t.name] = torch.stack([teachers[t.name].cls_state(tl) for _, tl in pairs], dim=1)
        if self.training and bool(self.unfitted.any()):
            with torch.no_grad():
                self._fit_projections({k: v.detach().flatten(0, 1) for k, v in pairs_s.items()},
                                      {k: v.detach().flatten(0, 1) for k, v in pairs_t.items()})
        parts = [losses.pkd_loss(project(self.projections, pairs_s[t.name], t), pairs_t[t.name])
                 for t in self.ctx.teachers]
        return torch.stack(parts).mean()


class _MatchedLayers(LossTerm):
    """A loss on one kind of per-layer state (``feature``: hidden or attentions), averaged over the matched
    (student layer, teacher layer) pairs of its ``layers`` option (``--match-layers``) and over the teachers (their weights)."""

    online_only = True
    compares_positions = True
    feature: ClassVar[str] = "hidden"
    """The ``Features`` / ``FeatureRequest`` field the term compares."""
    embeddings: ClassVar[bool] = False
    """Also match the embeddings (layer 0)."""

    Options = MatchOptions

    def __init__(self, weight, ctx, options=None):
        super().__init__(weight, ctx, options)
        self.pairs = {t.name: layer_pairs(t.num_layers, ctx.student_layers, self.options.layers, self.embeddings)
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
        return teacher_mean(per_teacher, self.ctx)


@register
class HiddenStates(_MatchedLayers):
    name = "hidden_mse"
    formula = "Σ_k w_k mean_l MSE(W h_s,l, h_t,m(l)) over all real tokens, embeddings included (TinyBERT)"
    feature = "hidden"
    embeddings = True

    def __init__(self, weight, ctx, options=None):
        super().__init__(weight, ctx, options)
        self.projections = projections(ctx, True, f"--term {self.name}")

    def layer_loss(self, student_state, teacher_state, mask, teacher):
        return losses.hidden_mse(project(self.projections, student_state, teacher), teacher_state, mask)


@register
class AttentionMaps(_MatchedLayers):
    name = "attention_mse"
    formula = "Σ_k w_k mean_l MSE(A_s,l, A_t,m(l)) over real token pairs and heads (TinyBERT)"
    feature = "attentions"

    def __init__(self, weight, ctx, options=None):
        for t in ctx.teachers:
            if t.num_heads != ctx.student_heads:
                raise UserError(f"attention maps need equal head counts: student {ctx.student_heads}, teacher "
                                f"{t.name!r} {t.num_heads}", f"--term {self.name}",
                                "use the MiniLM terms (minilm_attention, minilm_value), which work across head counts")
        super().__init__(weight, ctx, options)

    def layer_loss(self, student_state, teacher_state, mask, teacher):
        return losses.attention_mse(student_state, teacher_state, mask)


class _LastLayerRelation(LossTerm):
    """MiniLM: relations of the last layers' vectors, split into R relation heads, so widths and head counts may differ."""

    online_only = True
    compares_positions = True
    slots: ClassVar[tuple[int, int]] = (0, 1)
    """Which of (query, key, value) form the relation x·yᵀ."""

    Options = RelationOptions

    def __init__(self, weight, ctx, options=None):
        super().__init__(weight, ctx, options)
        self.heads = self.options.relation_heads or ctx.student_heads
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
        return {**super().describe(), "relation_heads": self.heads}  # the number used, when the option is unset

    def forward(self, student, teachers, batch):
        a, b = self.slots
        s = student.qkv[self.ctx.student_layers]
        s_rel = losses.relation_log_probs(s[a], s[b], self.heads, student.mask)
        per_teacher = []
        for t in self.ctx.teachers:
            v = teachers[t.name].qkv[t.num_layers]
            t_rel = losses.relation_log_probs(v[a], v[b], self.heads, student.mask)
            per_teacher.append(losses.relation_kl(s_rel, t_rel, student.mask))
        return teacher_mean(per_teacher, self.ctx)


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
