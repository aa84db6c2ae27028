"""Typed configuration dataclasses to and from JSON/YAML, validated by pydantic (types, unknown keys)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from bertdistill.errors import UserError
from bertdistill.io import to_jsonable, write_json

T = TypeVar("T")

_EXPECTED = {
    "int_type": "an integer without quotes, e.g. 10",
    "int_parsing": "an integer without quotes, e.g. 10",
    "int_from_float": "a whole number, e.g. 10",
    "float_type": "a number without quotes, e.g. 0.5",
    "float_parsing": "a number without quotes, e.g. 0.5",
    "bool_type": "true or false",
    "string_type": "a string in quotes",
    "list_type": 'a list, e.g. ["a", "b"]',
    "tuple_type": 'a list, e.g. ["a", "b"]',
    "dict_type": 'an object, e.g. {"key": 1}',
    "dataclass_type": 'an object, e.g. {"key": 1}',
    "none_required": "null",
}


def _unknown_keys(cls: Any, data: Any, prefix: str = "") -> str | None:
    """The first key of ``data`` (dotted) that is no field of dataclass ``cls`` or of its nested dataclasses."""
    cls = _strip_optional(cls)
    if not (dataclasses.is_dataclass(cls) and isinstance(data, dict)):
        if typing.get_origin(cls) is list and isinstance(data, list):
            (item,) = typing.get_args(cls) or (None,)
            for i, value in enumerate(data):
                found = _unknown_keys(item, value, f"{prefix}[{i}].")
                if found:
                    return found
        return None
    fields = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in fields:
            return f"{prefix}{key}\0{', '.join(sorted(fields))}"
        found = _unknown_keys(hints.get(key), value, f"{prefix}{key}.")
        if found:
            return found
    return None


def _key_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-plain") or str(part).startswith(("list[", "tuple[", "dict[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data`` (parsed JSON or YAML), validated by pydantic in strict mode:
    an unknown key or a value of the wrong type is a one-line user error naming the key and the fix."""
    from pydantic import TypeAdapter, ValidationError

    if not isinstance(data, dict):
        raise UserError("expected a mapping of settings", where, "write the config as {\"key\": value, ...}")
    unknown = _unknown_keys(cls, data)
    if unknown:
        key, allowed = unknown.split("\0")
        raise UserError(f"unknown config key {key!r}", where, f"use only: {allowed}")
    try:
        text = json.dumps(to_jsonable(data), allow_nan=True)
        return TypeAdapter(cls).validate_json(text, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_name(err["loc"]) or "(top level)"
        expected = _EXPECTED.get(err["type"])
        fix = f"give {key} as {expected}" if expected else f"fix {key} ({err['msg']})"
        raise UserError(f"config key {key!r}: {err['msg'].lower()} (got {err.get('input')!r})", where,
                        fix) from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid config ({exc})", where, "compare with a config the tool wrote") from None


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def read_config_file(path: str | Path) -> Any:
    """A JSON or YAML file's content (JSON for .json, YAML otherwise: YAML also reads JSON)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("config file not found", str(path), "check the path") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the config ({exc})", str(path), "give a JSON or YAML file") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON ({exc})", str(path), "fix the file (or write it as YAML, .yaml)") from None
    except yaml.YAMLError as exc:
        line = str(exc).replace("\n", " ")
        raise UserError(f"not valid YAML ({line})", str(path), "fix the file") from None


def load_config(cls: type[T], path: str | Path) -> T:
    return config_from_dict(cls, read_config_file(path), str(path))


def config_to_dict(config: Any) -> dict[str, Any]:
    """The JSON form of a config dataclass (what ``save_config`` writes)."""
    return to_jsonable(config)


def merge_dicts(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top; nested mappings are merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def save_config(config: Any, path: str | Path) -> None:
    write_json(path, config)
