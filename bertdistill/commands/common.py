"""Options shared by several subcommands, and turning them into library objects."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import typer

from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError
from bertdistill.packaged import PACKAGED

DATA_PANEL = "Data"
T = TypeVar("T")

ConfigFile = Annotated[Optional[Path], typer.Option(
    "--config", help="YAML or JSON file with this command's settings, e.g. the *_config.json a run saved next to "
                     "its output; options given on the command line override it.")]

#: The data options and the DataSpec field each one sets.
DATA_FIELDS = {"data": "path", "dataset": "dataset", "subset": "subset", "split": "split", "columns": "columns",
               "text_a": "text_a", "text_b": "text_b", "label_column": "label_column",
               "group_column": "group_column", "task": "task", "label_names": "label_names",
               "unlabeled": "unlabeled", "limit": "limit"}


def data_fields(prefix: str) -> dict[str, tuple[str, ...]]:
    """Option → config field paths of the data options, for a DataSpec at ``prefix`` of a config."""
    out: dict[str, tuple[str, ...]] = {"data_config": (prefix,)}
    out.update({opt: (f"{prefix}.{name}",) for opt, name in DATA_FIELDS.items()})
    return out


def explicit_options() -> set[str]:
    """Parameters of the running command given on the command line (or by environment), not defaulted.
    Outside a click context (a command function called from Python) none counts as given."""
    try:  # typer ≥ 0.20 runs on its own copy of click
        from typer._click.core import ParameterSource
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer on click
        from click import get_current_context
        from click.core import ParameterSource

    ctx = get_current_context(silent=True)
    if ctx is None:
        return set()
    return {name for name in ctx.params
            if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set(obj: Any, path: str, value: Any) -> None:
    *head, last = path.split(".")
    for part in head:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def with_config_file(flags_config: T, config_path: Path | None, fields: dict[str, tuple[str, ...]]) -> T:
    """The run config of a command: the options' config (``flags_config``, command-line defaults included)
    with the settings of ``--config FILE`` laid over it, then the options given explicitly on the command line
    laid over that. ``fields`` maps each option to the config fields it sets (dotted paths; an option not
    listed sets the top-level field of its own name, if there is one, else nothing); the file is validated against the config dataclass (one-line error naming the key on a wrong type or unknown key)."""
    from bertdistill.config import config_from_dict, config_to_dict, merge_dicts, read_config_file

    if config_path is None:
        return flags_config
    cls = type(flags_config)
    data = read_config_file(config_path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping of settings", str(config_path), "write the config as key: value lines")
    config_from_dict(cls, data, str(config_path))  # names a bad key of the file itself
    merged = config_from_dict(cls, merge_dicts(config_to_dict(flags_config), data), str(config_path))
    given = explicit_options()
    top = {f.name for f in dataclasses.fields(cls)}
    paths = sorted({p for opt in given for p in fields.get(opt, (opt,) if opt in top else ())},
                   key=lambda p: p.count("."))  # whole sections first, then their fields
    for path in paths:
        _set(merged, path, copy.deepcopy(_get(flags_config, path)))
    return merged


def require(value: Any, option: str, fix: str) -> Any:
    if value in (None, "", []):
        raise UserError(f"no {option} given", None, fix)
    return value

DataPath = Annotated[Optional[Path], typer.Option(
    "--data", help="Local data file: .tsv/.txt (tab), .csv, .jsonl/.json or .parquet.", rich_help_panel=DATA_PANEL)]
HubDataset = Annotated[Optional[str], typer.Option(
    "--dataset", help="Hub data set name instead of a file (needs the network), e.g. glue.", rich_help_panel=DATA_PANEL)]
HubSubset = Annotated[Optional[str], typer.Option("--subset", help="Hub subset, e.g. rte.", rich_help_panel=DATA_PANEL)]
HubSplit = Annotated[Optional[str], typer.Option("--split", help="Hub split, e.g. train.", rich_help_panel=DATA_PANEL)]
DataConfig = Annotated[Optional[Path], typer.Option(
    "--data-config", help="JSON file with any of the data fields (path, columns, text_a, ...); options override it.",
    rich_help_panel=DATA_PANEL)]
Columns = Annotated[Optional[str], typer.Option(
    "--columns", help="Comma-separated column names for a headerless file, e.g. query,passage,label.",
    rich_help_panel=DATA_PANEL)]
TextA = Annotated[Optional[str], typer.Option("--text-a", help="First text column (query, premise, sentence1).",
                                              rich_help_panel=DATA_PANEL)]
TextB = Annotated[Optional[str], typer.Option("--text-b", help="Second text column (passage, hypothesis, sentence2).",
                                              rich_help_panel=DATA_PANEL)]
LabelColumn = Annotated[Optional[str], typer.Option("--label-column", help="Gold label column.",
                                                    rich_help_panel=DATA_PANEL)]
GroupColumn = Annotated[Optional[str], typer.Option(
    "--group-column", help="Query-id column of ranking data (metrics per query). Implies --task ranking.",
    rich_help_panel=DATA_PANEL)]
TASKS = ("pair", "single", "ranking")
Task = Annotated[Optional[Literal[TASKS]], typer.Option("--task", help="pair, single or ranking (inferred when not given).",
                                             rich_help_panel=DATA_PANEL)]
LabelNames = Annotated[Optional[str], typer.Option(
    "--label-names", help="Comma-separated label order, e.g. not_entailment,entailment.", rich_help_panel=DATA_PANEL)]
Unlabeled = Annotated[bool, typer.Option("--unlabeled", help="Ignore any label column.", rich_help_panel=DATA_PANEL)]
Limit = Annotated[Optional[int], typer.Option("--limit", help="Use only the first N rows.", rich_help_panel=DATA_PANEL)]

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", help="Hugging Face model directory, hub id, or a packaged model's short name "
    f"({', '.join(PACKAGED)}; default: the packaged all-MiniLM-L6-v2).")]
MaxLength = Annotated[int, typer.Option("--max-length", help="Maximum tokens per example (pairs truncated longest-first).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Examples per batch.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
Device = Annotated[str, typer.Option(
    "--device", help="auto (under accelerate launch the process's GPU, else CUDA when available, else CPU), "
    "cpu, cuda or cuda:N.")]
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", help="Allow model code from the hub (off by default).")]


def choice(name: str, values: tuple[str, ...] | list[str]) -> Any:
    """The type of an option with fixed choices (``Literal``), so that --help lists them and the parser
    refuses others; the value stays a plain string. ``name`` documents the choice set."""
    return Literal[tuple(values)]


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise UserError(f"empty item in list {text!r}", None, "write a comma-separated list without empty items")
    return items


def data_spec(path: Path | None = None, dataset: str | None = None, subset: str | None = None,
              split: str | None = None, config: Path | None = None, columns: str | None = None,
              text_a: str | None = None, text_b: str | None = None, label_column: str | None = None,
              group_column: str | None = None, task: str | None = None, label_names: str | None = None,
              unlabeled: bool = False, limit: int | None = None) -> DataSpec:
    """Build a DataSpec from a data config file (if any) and command-line options (which win)."""
    from bertdistill.config import load_config

    spec = load_config(DataSpec, config) if config else DataSpec()
    given = {"path": str(path) if path else None, "dataset": dataset, "subset": subset, "split": split,
             "columns": split_list(columns), "text_a": text_a, "text_b": text_b, "label_column": label_column,
             "group_column": group_column, "task": task, "label_names": split_list(label_names), "limit": limit}
    for key, value in given.items():
        if value is not None:
            setattr(spec, key, value)
    if unlabeled:
        spec.unlabeled = True
    if config and spec.path and not Path(spec.path).is_absolute() and not Path(spec.path).exists():
        # Paths in a data config are relative to the config file.
        candidate = Path(config).parent / spec.path
        if candidate.exists():
            spec.path = str(candidate)
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit} must be at least 1", None, "use a positive row count")
    return spec


def eval_data_spec(train: DataSpec, path: Path | None = None, split: str | None = None,
                   config: Path | None = None, limit: int | None = None) -> DataSpec | None:
    """The eval data: a file read like the training data, another split of the same hub data set, or
    a data config of its own (for an eval file whose columns differ). None when none is given."""
    from bertdistill.data.sources import spec_with

    given = [opt for opt, value in (("--eval-data", path), ("--eval-split", split), ("--eval-data-config", config))
             if value is not None]
    if len(given) > 1:
        raise UserError(f"the eval data is given twice ({', '.join(given)})", None, "give only one of them")
    if limit is not None and limit < 1:
        raise UserError(f"--eval-limit {limit} must be at least 1", None, "use a positive row count")
    if config is not None:
        return data_spec(config=config, limit=limit)
    if path is not None:
        return spec_with(train, path=str(path), dataset=None, limit=limit)
    if split is not None:
        if not train.dataset or train.path:
            raise UserError("--eval-split picks a split of the hub data set, but the training data is a file", None,
                            "use --eval-data FILE (or --eval-data-config) for file data")
        return spec_with(train, split=split, limit=limit)
    return None


def check_positive(value: int, option: str) -> int:
    if value < 1:
        raise UserError(f"{option} {value} must be at least 1", None, f"use {option} 1 or more")
    return value


def guard_outputs(outputs, *inputs) -> None:
    """Outputs may never equal, contain or sit inside an input (data file, model directory, label store)."""
    from bertdistill.io import check_not_inputs

    check_not_inputs([o for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs]) if o], list(inputs))


def spec_inputs(spec) -> list:
    """The local files a data spec reads."""
    return [spec.path] if spec is not None and getattr(spec, "path", None) else []
