"""Typed configuration dataclasses to and from JSON, refusing unknown keys."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from bertdistill.errors import UserError
from bertdistill.io import read_json, write_json

T = TypeVar("T")


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys are a user error naming the key."""
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", where, "write the config as {\"key\": value, ...}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"unknown config key {unknown[0]!r}", where,
                        f"use only: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(_strip_optional(hint)) and isinstance(value, dict):
            value = config_from_dict(_strip_optional(hint), value, f"{where}.{key}")
        elif _origin_is(hint, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UserError(f"invalid config ({exc})", where, "compare with a config the tool wrote") from None


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _origin_is(hint: Any, kind: type) -> bool:
    return typing.get_origin(_strip_optional(hint)) is kind


def load_config(cls: type[T], path: str | Path) -> T:
    return config_from_dict(cls, read_json(path), str(path))


def save_config(config: Any, path: str | Path) -> None:
    write_json(path, config)
