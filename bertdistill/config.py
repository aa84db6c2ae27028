"""Typed configuration dataclasses to and from JSON/YAML, validated by pydantic (types, unknown keys)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from bertdistill.errors import UserError, clip
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
        raise UserError(f"config key {key!r}: {err['msg'].lower()} (got {clip(repr(err.get('input')), 80)})", where,
                        fix) from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid config ({exc})", where, "compare with a config the tool wrote") from None


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


# Settings files are small: these bounds stop a crafted file (YAML "billion laughs": aliases of aliases,
# or nesting thousands deep) from taking the memory or the stack before anything is checked.
CONFIG_MAX_BYTES = 1024 * 1024
CONFIG_MAX_DEPTH = 32
CONFIG_MAX_VALUES = 100_000
"""Most values a config may hold once its YAML aliases are expanded (a whole config holds a few hundred)."""


class _TooLarge(Exception):
    """A YAML document past one of the bounds above (the message says which, and where)."""


def _bounded_yaml_loader():
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that refuses nesting deeper than CONFIG_MAX_DEPTH and documents whose aliases expand
        to more than CONFIG_MAX_VALUES values (counted on the composed node graph, before anything is built)."""

        depth = 0

        def compose_node(self, parent, index):
            self.depth += 1
            try:
                if self.depth > CONFIG_MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise _TooLarge(f"nested more than {CONFIG_MAX_DEPTH} levels deep (line {mark.line + 1})")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_document(self, node):
            expanded = _expanded_size(node, {})
            if expanded > CONFIG_MAX_VALUES:
                raise _TooLarge(f"its aliases expand to more than {CONFIG_MAX_VALUES:,} values")
            return super().construct_document(node)

    return BoundedLoader


def _expanded_size(node, memo: dict) -> int:
    """Values in ``node`` with every alias expanded; an alias is the same node object, so it is counted
    again each time it is referenced, but computed once (memo by id)."""
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = CONFIG_MAX_VALUES + 1  # a node that contains itself (recursive alias) is too large
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, CONFIG_MAX_VALUES + 1)
    return memo[key]


def _json_depth_ok(text: str) -> bool:
    """Whether brackets in ``text`` nest at most CONFIG_MAX_DEPTH deep (strings skipped), before json parses it."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > CONFIG_MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def read_config_file(path: str | Path) -> Any:
    """A JSON or YAML file's content (JSON for .json, YAML otherwise: YAML also reads JSON), within the
    bounds above: at most CONFIG_MAX_BYTES, CONFIG_MAX_DEPTH levels and CONFIG_MAX_VALUES expanded values."""
    import yaml

    path = Path(path)
    fix_size = "a settings file holds option names and values; check that --config names the right file"
    try:
        size = path.stat().st_size
        if size > CONFIG_MAX_BYTES and path.is_file():
            raise UserError(f"config file is {size / 1024 / 1024:.1f} MB, more than the "
                            f"{CONFIG_MAX_BYTES // 1024 // 1024} MB a settings file may be", str(path), fix_size)
        with path.open("rb") as fh:
            raw = fh.read(CONFIG_MAX_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UserError("config file not found", str(path), "check the path") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the config ({exc})", str(path), "give a JSON or YAML file") from None
    except OSError as exc:
        raise UserError(f"cannot read the config ({exc.strerror or type(exc).__name__})", str(path),
                        "check the path and its permissions") from None
    if len(raw) > CONFIG_MAX_BYTES:  # grew while read, or not a regular file (a pipe)
        raise UserError(f"config file is more than the {CONFIG_MAX_BYTES // 1024 // 1024} MB a settings file may be",
                        str(path), fix_size)
    fix_bounds = "write the settings out plainly (no deep nesting, no aliases repeated into large structures)"
    try:
        if path.suffix.lower() == ".json":
            if not _json_depth_ok(text):
                raise _TooLarge(f"nested more than {CONFIG_MAX_DEPTH} levels deep")
            return json.loads(text)
        return yaml.load(text, Loader=_bounded_yaml_loader())  # noqa: S506  (a SafeLoader subclass)
    except _TooLarge as exc:
        raise UserError(f"config is too large: {exc}", str(path), fix_bounds) from None
    except RecursionError:
        raise UserError(f"config is too large: nested more than {CONFIG_MAX_DEPTH} levels deep", str(path),
                        fix_bounds) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON ({exc})", str(path), "fix the file (or write it as YAML, .yaml)") from None
    except yaml.YAMLError as exc:
        line = " ".join(str(exc).split())
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
