"""The training objective: named loss terms with weights, and teacher targets looked up per batch.

Stage 2 (finetune with a store): (1−α)·hard + α·KD + β·PKD. Stage 1 (pretrain-student): hard weight 0.
Plain fine-tuning: hard only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from bertdistill.errors import UserError
from bertdistill.training import losses
from bertdistill.training.config import DistillConfig
from bertdistill.training.pkd import pkd_layer_map


class TeacherTargets:
    """Teacher logits (kept in memory) and [CLS] states (read per batch) of the used teachers."""

    def __init__(self, store, teachers: Sequence[str], pkd_pairs: dict[str, list[tuple[int, int]]] | None = None):
        self.store = store
        self.teachers = list(teachers)
        self.index = [store.teacher_index(t) for t in self.teachers]
        self.logits = [store.logits(t) for t in self.index]
        self.pkd_pairs = pkd_pairs or {}
        self._cls_views = {}
        for name, pairs in self.pkd_pairs.items():
            t = store.teacher_index(name)
            layers = [tl for _, tl in pairs]
            store.require_layers(t, layers)
            have = store.stored_layers(t)
            # A one-column view: reading a batch of states then skips the other teachers' columns.
            view = store.dataset.select_columns([f"cls_{t}"])
            self._cls_views[name] = (view, f"cls_{t}", [have.index(layer) for layer in layers])

    def fetch(self, rows: np.ndarray) -> dict:
        rows = np.asarray(rows)
        out = {"teacher_logits": torch.from_numpy(np.stack([lg[rows] for lg in self.logits]))}
        if self._cls_views:
            states = {}
            for name, (view, column, pick) in self._cls_views.items():
                block = np.asarray(view[rows.tolist()][column], dtype=np.float32)[:, pick, :]
                states[name] = torch.from_numpy(np.ascontiguousarray(block))
            out["teacher_cls"] = states
        return out

    def logits_for(self, rows: np.ndarray) -> list[np.ndarray]:
        return [lg[np.asarray(rows)] for lg in self.logits]


@dataclass
class Objective:
    """Weighted sum of named terms: hard (gold labels), kd (teachers' soft targets), pkd ([CLS] states)."""

    weights: dict[str, float]
    temperature: float = 1.0
    kd_loss: str = "kl"
    teacher_mode: str = "heads"
    teacher_weights: list[float] | None = None
    student_layers: list[int] = field(default_factory=list)
    """Student hidden_states indices fed to PKD (same for every teacher)."""
    pkd_teachers: list[str] = field(default_factory=list)
    pkd_projection_keys: dict[str, str | None] = field(default_factory=dict)

    @property
    def distilling(self) -> bool:
        return self.weights.get("kd", 0) > 0 or self.weights.get("pkd", 0) > 0

    def soft_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """KD term for head logits (heads, B, C) against teacher logits (teachers, B, C)."""
        teachers = list(teacher_logits)
        if self.teacher_mode == "heads" and logits.shape[0] == len(teachers):
            w = losses.normalized_weights(len(teachers), self.teacher_weights)
            fn = losses.soft_kl if self.kd_loss == "kl" else (lambda s, t, _T: losses.logit_mse(s, t))
            return sum(wk * fn(logits[h], teachers[h], self.temperature) for h, wk in enumerate(w))
        student = logits.float().mean(0)
        if self.kd_loss == "mse":
            return losses.logit_mse(student, losses.averaged_teacher_logits(teachers, self.teacher_weights))
        target = losses.averaged_teacher_probs(teachers, self.temperature, self.teacher_weights)
        return losses.soft_kl_probs(student, target, self.temperature)

    def __call__(self, model, logits: torch.Tensor, cls: torch.Tensor | None, batch: dict) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if self.weights.get("hard", 0) > 0:
            if "label" not in batch:
                raise UserError("training data has no gold labels but the hard-label loss is on", None,
                                "give a labeled training set, or --alpha 1 to train on teacher labels only")
            terms["hard"] = torch.stack([losses.hard_ce(lg, batch["label"]) for lg in logits]).mean()
        if self.weights.get("kd", 0) > 0:
            terms["kd"] = self.soft_loss(logits, batch["teacher_logits"])
        if self.weights.get("pkd", 0) > 0 and cls is not None:
            parts = []
            for name in self.pkd_teachers:
                student = cls
                key = self.pkd_projection_keys.get(name)
                if key is not None:
                    student = model.projections[key](cls.to(model.projections[key].weight.dtype))
                parts.append(losses.pkd_loss(student, batch["teacher_cls"][name]))
            terms["pkd"] = torch.stack(parts).mean()
        return terms


def make_objective(distill: DistillConfig | None, store=None, model=None, labeled: bool = True,
                   where: str = "label store") -> tuple[Objective, TeacherTargets | None, dict]:
    """Objective, per-batch teacher targets and a description for the record, from the options."""
    if store is None:
        return Objective(weights={"hard": 1.0}), None, {"mode": "fine-tune", "weights": {"hard": 1.0}}
    distill = distill or DistillConfig()
    distill.check()
    teachers = distill.teachers or store.teacher_names
    for t in teachers:
        store.teacher_index(t)
    mode = distill.teacher_mode or ("heads" if len(teachers) > 1 else "avg")
    if distill.teacher_weights is not None and len(distill.teacher_weights) != len(teachers):
        raise UserError(f"{len(distill.teacher_weights)} teacher weights for {len(teachers)} teachers",
                        "--teacher-weights", f"give one weight per teacher ({', '.join(teachers)})")
    hard = (1 - distill.alpha) if (distill.use_hard_labels and labeled) else 0.0
    weights = {"hard": hard, "kd": distill.alpha if distill.use_hard_labels else 1.0,
               "pkd": distill.pkd_beta if distill.pkd != "none" else 0.0}
    if not labeled and distill.use_hard_labels and distill.alpha < 1:
        raise UserError("training data has no gold labels, so the hard-label loss (weight 1−α) cannot be computed",
                        "--alpha", "use --alpha 1 (teacher labels only), or give the label column")
    student_layers: list[int] = []
    pkd_pairs: dict[str, list[tuple[int, int]]] = {}
    projection_keys: dict[str, str | None] = {}
    if weights["pkd"] > 0:
        m = model.config.num_hidden_layers
        width = model.config.hidden_size
        for t in teachers:
            info = store.teachers[store.teacher_index(t)]
            pairs = pkd_layer_map(int(info["num_layers"]), m, distill.pkd)
            if not pairs:
                raise UserError(f"a {m}-layer student has no intermediate layers to match", "--pkd",
                                "use a student with 2 or more layers, or --pkd none")
            store.require_layers(t, [tl for _, tl in pairs])
            pkd_pairs[t] = pairs
            student_layers = [s for s, _ in pairs]
            teacher_width = int(info["hidden_size"])
            if teacher_width != width:
                if not distill.pkd_projection:
                    raise UserError(f"student width {width} differs from teacher {t!r} width {teacher_width}",
                                    "--no-pkd-projection", "allow a learned projection (--pkd-projection) "
                                    "or use a student of the teacher's width")
                key = f"w{teacher_width}"
                model.add_projection(key, teacher_width)
                projection_keys[t] = key
            else:
                projection_keys[t] = None
    objective = Objective(weights=weights, temperature=distill.temperature, kd_loss=distill.kd_loss,
                          teacher_mode=mode, teacher_weights=distill.teacher_weights,
                          student_layers=student_layers, pkd_teachers=list(pkd_pairs),
                          pkd_projection_keys=projection_keys)
    targets = TeacherTargets(store, teachers, pkd_pairs)
    described = {"mode": "distill", "teacher_mode": mode, "teachers": teachers, "weights": weights,
                 "temperature": distill.temperature, "kd_loss": distill.kd_loss,
                 "teacher_weights": distill.teacher_weights,
                 "pkd": {"mode": distill.pkd, "pairs": {t: p for t, p in pkd_pairs.items()},
                         "projection": {t: k is not None for t, k in projection_keys.items()}}}
    return objective, targets, described
