"""Loss terms as plug-ins: each names what it needs, owns its projections and options, and calls one pure loss.

A term is registered by name (``@register``); the objective is the list of active terms (weight > 0)
and returns the weighted total and each part by name. To add a term: a pure function in ``losses``
(formula in its docstring, a hand-computed test) and a class in a module of this package (``outputs``
for terms on logits, ``states`` for terms on internal states, or a new module: every module here is
imported), with an ``Options`` dataclass if it has settings; the CLI then takes it as
``--term NAME=WEIGHT[,key=value…]`` and configs as ``terms: {NAME: {weight: …, key: …}}``, with no
further change.

Teacher features come from a label store (logits and stored [CLS] states) or from teachers run in the
loop (everything); terms that need more than a store holds say so with ``online_only``, terms that
compare token positions with ``compares_positions``.
"""

from __future__ import annotations

import importlib
import pkgutil

from bertdistill.training.terms.base import (TERMS, LossTerm, NoOptions, TeacherInfo, TermContext, build_terms,
                                             check_weight, make_options, option_names, register, scores_of)

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

from bertdistill.training.terms.outputs import HardLabels, SoftTargets  # noqa: E402  (after the modules registered)

__all__ = ["TERMS", "HardLabels", "LossTerm", "NoOptions", "SoftTargets", "TeacherInfo", "TermContext", "build_terms",
           "check_weight", "make_options", "option_names", "register", "scores_of"]
