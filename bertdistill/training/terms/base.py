"""What every loss term shares: the registry, the base class, its options, and what it may read when built.

A term is a ``LossTerm`` subclass registered by name (``@register``), with its formula, what it needs
from the student and the teachers (``student_request``/``teacher_request``), its projections as
submodules, and its own options: a small dataclass (``Options``) whose fields may take their default
from a run-wide setting (``metadata={"from": "temperature"}``: ``--temperature``) and are set per term
with ``--term NAME=WEIGHT,key=value`` or ``terms: {NAME: {weight: …, key: …}}`` in a config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from bertdistill.errors import UserError
from bertdistill.student.features import NOTHING, FeatureRequest, Features
from bertdistill.training import losses


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
    """What every term may read when it is built: the student's shape and the run's teachers."""

    student_layers: int
    student_width: int
    student_heads: int
    teachers: list[TeacherInfo]
    teacher_mode: str = "avg"
    teacher_weights: list[float] | None = None
    positive: int = 1
    """Index of the relevant class in the task's labels (turns 2-class logits into one score)."""
    student_residual: dict | None = None
    """A pruned student's {"source_width", "index"}: the source residual dimension each of its own is."""


@dataclass
class NoOptions:
    """A term without options of its own."""


TERMS: dict[str, type["LossTerm"]] = {}


def register(cls: type["LossTerm"]) -> type["LossTerm"]:
    """Class decorator: make a term available by its ``name``."""
    if cls.name in TERMS:
        raise ValueError(f"loss term {cls.name!r} registered twice")
    TERMS[cls.name] = cls
    return cls


def check_weight(name: str, weight: Any, where: str = "--term") -> float:
    """A term's weight must be a finite number ≥ 0 (the one check, for configs and for building)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise UserError(f"loss term {name!r} has weight {weight}", where, "use a finite weight ≥ 0")
    return float(weight)


class LossTerm(nn.Module):
    """One named, weighted part of the objective. Subclasses set ``name``, ``formula`` and ``forward``."""

    name: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    """The term's own settings (a dataclass); ``self.options`` holds this run's."""
    online_only: ClassVar[bool] = False
    """Needs states a label store does not hold (all-token hidden states, attentions, query/key/value)."""
    uses_teachers: ClassVar[bool] = True
    needs_groups: ClassVar[bool] = False
    """Compares the candidates of each query: batches are whole query groups with a ``group`` tensor."""
    compares_positions: ClassVar[bool] = False
    """Compares states token by token, so a teacher must tokenize exactly as the student does."""

    def __init__(self, weight: float, ctx: TermContext, options=None):
        super().__init__()
        self.weight = float(weight)
        self.ctx = ctx
        self.options = options if options is not None else self.Options()
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

    def eval_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor | None:
        """This term on whole-set logits (heads, N, C) against the teachers' (teachers, N, C), for evaluations
        (``distill_loss``); None for a term that needs more than logits."""
        return None

    def describe(self) -> dict:
        return {"weight": self.weight, "formula": self.formula, **dataclasses.asdict(self.options)}

    def forward(self, student: Features, teachers: dict[str, Features], batch: dict) -> torch.Tensor:
        raise NotImplementedError


def option_names(cls: type[LossTerm]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls.Options)]


def _parse(value: Any, f: dataclasses.Field, where: str) -> Any:
    """A value of option ``f`` from a config (typed) or the command line (a string)."""
    kind = str(f.type)
    if not isinstance(value, str) or kind.startswith("str"):
        return value
    text = value.strip()
    if "None" in kind and text.lower() in ("none", "null", ""):
        return None
    try:
        if kind.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise UserError(f"option {f.name}={value!r} is not {kind.split('|')[0].strip()}", where,
                        f"write e.g. {f.name}={f.default}") from None
    return value


def make_options(cls: type[LossTerm], given: dict[str, Any] | None, settings: Any = None):
    """A term's options: its defaults, then the run-wide settings its fields name (``metadata["from"]``: a
    field of ``settings``, e.g. DistillConfig.temperature for ``--temperature``; ignored where the setting
    is not one of the field's ``choices``), then what was given for this term."""
    where = f"--term {cls.name}"
    given = dict(given or {})
    names = option_names(cls)
    unknown = [k for k in given if k not in names]
    if unknown:
        raise UserError(f"loss term {cls.name!r} has no option {unknown[0]!r}", where,
                        f"use {', '.join(names)}" if names else "give only its weight: --term NAME=WEIGHT")
    values = {}
    for f in dataclasses.fields(cls.Options):
        source = f.metadata.get("from")
        if source and settings is not None and hasattr(settings, source):
            value = getattr(settings, source)
            if "choices" not in f.metadata or value in f.metadata["choices"]:
                values[f.name] = value
        if f.name in given:
            values[f.name] = _parse(given[f.name], f, where)
        choices = f.metadata.get("choices")
        if choices and f.name in values and values[f.name] not in choices:
            raise UserError(f"option {f.name}={values[f.name]!r} of loss term {cls.name!r} is not one of "
                            f"{', '.join(choices)}", where, f"use {f.name}={choices[0]}")
    options = cls.Options(**values)
    check = getattr(options, "check", None)
    if check is not None:
        check(where)
    return options


def build_terms(weights: dict[str, float], ctx: TermContext, options: dict[str, dict] | None = None,
                settings: Any = None) -> list[LossTerm]:
    """Instantiate the registered terms with a non-zero weight, in the order given, with their options."""
    out = []
    for name, weight in weights.items():
        if name not in TERMS:
            raise UserError(f"unknown loss term {name!r}", "--term", f"use one of: {', '.join(TERMS)}")
        weight = check_weight(name, weight)
        cls = TERMS[name]
        term_options = make_options(cls, (options or {}).get(name), settings)
        if weight > 0:
            out.append(cls(weight, ctx, term_options))
    return out


# -- helpers the terms share --------------------------------------------------------------------------

def projections(ctx: TermContext, enabled: bool, option: str) -> nn.ModuleDict:
    """One learned linear student width → teacher width per distinct teacher width that differs."""
    out = nn.ModuleDict()
    for t in ctx.teachers:
        if t.hidden_size != ctx.student_width and f"w{t.hidden_size}" not in out:
            if not enabled:
                raise UserError(f"student width {ctx.student_width} differs from teacher {t.name!r} width "
                                f"{t.hidden_size}", option, "allow a learned projection (--pkd-projection) "
                                                            "or use a student of the teacher's width")
            out[f"w{t.hidden_size}"] = proj = nn.Linear(ctx.student_width, t.hidden_size)
            index = residual_index(ctx, t.hidden_size)
            if index is not None:
                # A student pruned from a model of the teacher's width: start from putting each of its
                # dimensions back where pruning took it from. From a random start the large early PKD loss
                # collapsed such students' [CLS] states (examples/wikiqa/RESULTS.md).
                with torch.no_grad():
                    proj.weight.zero_()
                    proj.weight[torch.as_tensor(index), torch.arange(ctx.student_width)] = 1.0
                    proj.bias.zero_()
    return out


def fit_projection(proj: nn.Linear, x: torch.Tensor, y: torch.Tensor, ridge: float = 0.1) -> None:
    """Set ``proj`` to the ridge least-squares map of rows ``x`` (N, d_in) onto ``y`` (N, d_out), with a bias:
    W = (XᵀX + λI)⁻¹XᵀY on centred rows, λ = ridge · trace(XᵀX)/d_in (a batch has fewer rows than d_in)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        _fit(proj, x.float(), y.float(), ridge)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Each process fitted its own batch: start every copy from their average.
        for p in (proj.weight, proj.bias):
            torch.distributed.all_reduce(p.data)
            p.data /= torch.distributed.get_world_size()


def _fit(proj: nn.Linear, x: torch.Tensor, y: torch.Tensor, ridge: float) -> None:
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc
    lam = ridge * float(gram.diagonal().sum()) / x.shape[1] + 1e-6
    weight = torch.linalg.solve(gram + lam * torch.eye(x.shape[1], dtype=gram.dtype, device=gram.device), xc.T @ yc)
    with torch.no_grad():
        proj.weight.copy_(weight.T.to(proj.weight.dtype))
        proj.bias.copy_((y_mean - x_mean @ weight).to(proj.bias.dtype))


def residual_index(ctx: TermContext, teacher_width: int) -> list[int] | None:
    """The pruned student's residual index into a teacher of its source's width, else None."""
    residual = ctx.student_residual or {}
    index = residual.get("index")
    if residual.get("source_width") != teacher_width or not index or len(index) != ctx.student_width:
        return None
    return index if all(0 <= i < teacher_width for i in index) else None


def project(projections_: nn.ModuleDict, state: torch.Tensor, teacher: TeacherInfo) -> torch.Tensor:
    key = f"w{teacher.hidden_size}"
    if key not in projections_:
        return state
    proj = projections_[key]
    return proj(state.to(proj.weight.dtype))


def teacher_mean(values: Sequence[torch.Tensor], ctx: TermContext) -> torch.Tensor:
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


def check_temperature(temperature: float, where: str) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and 0 < temperature <= 1e4):
        raise UserError(f"temperature {temperature} must be a finite positive number", where,
                        "use e.g. temperature=2")
