"""Layout adapters: one module per model family, registered by ``config.model_type``.

Every module of this package (other than ``base``) is imported on first use, so a new family is one
module that defines a ``Family`` subclass decorated with ``@register`` (``docs/ARCHITECTURE.md``, "A
model family"). Callers ask ``family_of(model_or_config, needed_for)``; a model of an unknown family is
then one line naming its ``model_type`` and what works without an adapter.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from torch import nn

from bertdistill.errors import UserError
from bertdistill.families.base import (ALL_INPUTS, ATTENTION_MASK, FFN, FFN_GATED, HEADS, HIDDEN, INPUT_IDS, KEY,
                                       QKV, QUERY, TOKEN_TYPE_IDS, VALUE, Family, FlopsDims, LayerParts, PruneRules,
                                       Shape, check_module)

_BY_TYPE: dict[str, Family] = {}
_BY_NAME: dict[str, Family] = {}
_discovered = False


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available for its ``model_types``."""
    family = cls()
    if not family.name or not family.model_types:
        raise ValueError(f"{cls.__name__} needs a name and model_types")
    if family.name in _BY_NAME:
        raise ValueError(f"model family {family.name!r} registered twice")
    for model_type in family.model_types:
        if model_type in _BY_TYPE:
            raise ValueError(f"model_type {model_type!r} already belongs to {_BY_TYPE[model_type].name}")
        _BY_TYPE[model_type] = family
    _BY_NAME[family.name] = family
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def families() -> tuple[Family, ...]:
    _discover()
    return tuple(_BY_NAME.values())


def family_names() -> tuple[str, ...]:
    return tuple(f.name for f in families())


def get_family(name: str) -> Family:
    _discover()
    return _BY_NAME[name]


def _config_of(model_or_config):
    return getattr(model_or_config, "config", model_or_config)


def find_family(model_or_config) -> Family | None:
    """The adapter of a model or config, or None for a family without one."""
    _discover()
    return _BY_TYPE.get(str(getattr(_config_of(model_or_config), "model_type", "") or ""))


def family_of(model_or_config, needed_for: str, where: str | None = None) -> Family:
    """The adapter, or one line naming the ``model_type`` and what works without an adapter."""
    family = find_family(model_or_config)
    if family is None:
        model_type = getattr(_config_of(model_or_config), "model_type", None)
        raise UserError(f"model_type {model_type!r} has no layout adapter, so {needed_for} cannot find its parts "
                        "(without one, only logits and [CLS]-state terms work: kd, pkd, listwise_kd, margin_mse)",
                        where, f"use a model of a supported family ({', '.join(family_names())}), or add an "
                               "adapter: one module in bertdistill/families (docs/ARCHITECTURE.md)")
    if isinstance(model_or_config, nn.Module):
        check_module(model_or_config, family, where)
    return family


def input_names(config, model: nn.Module | None = None) -> tuple[str, ...]:
    """The inputs a model reads: its family's (token types only where it has several), else, for a family
    without an adapter, what its ``forward`` names, with token types only for a config with several."""
    family = find_family(config)
    if family is not None:
        return family.input_names(config)
    names = [INPUT_IDS, ATTENTION_MASK]
    takes_types = model is None or TOKEN_TYPE_IDS in inspect.signature(model.forward).parameters
    if takes_types and int(getattr(config, "type_vocab_size", 0) or 0) > 1:
        names.append(TOKEN_TYPE_IDS)
    return tuple(names)


_ANY_HEAD = ("classifier", "classifier.out_proj", "score", "classifier.dense_out")
"""Where the final linear of a sequence classifier usually is, for a family without an adapter."""


def output_linear(model: nn.Module) -> nn.Linear:
    """The final linear of a sequence classifier's head."""
    family = find_family(model)
    for path in (family.output_linear_paths() if family is not None else _ANY_HEAD):
        try:
            found = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(found, nn.Linear):
            return found
    raise UserError(f"{type(model).__name__} has no linear classifier layer, so it cannot have per-teacher heads",
                    None, "use a sequence classifier of a supported family, or --teacher-mode avg")


def shape_of(model_or_config) -> Shape | None:
    """Layers, width, heads and FFN size of a model of a known family (None otherwise)."""
    family = find_family(model_or_config)
    return None if family is None else family.shape(_config_of(model_or_config))


__all__ = ["ALL_INPUTS", "ATTENTION_MASK", "FFN", "FFN_GATED", "HEADS", "HIDDEN", "INPUT_IDS", "KEY", "QKV", "QUERY",
           "TOKEN_TYPE_IDS", "VALUE", "Family", "FlopsDims", "LayerParts", "PruneRules", "Shape", "families",
           "family_names", "family_of", "find_family", "get_family", "input_names", "output_linear", "register",
           "shape_of"]
