"""Options shared by several subcommands, and turning them into library objects."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import typer

from bertdistill.data.sources import DataSpec, formats_help
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
        check_numbers(flags_config)
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
    check_numbers(merged, flags_config, config_path)
    return merged


# -- numeric settings: checked when the command line and --config are read, before any work ----------------

SEED_MAX = 2**32 - 1
"""Seeds go to numpy's legacy seeding (Accelerate's set_seed), which takes 0..2**32-1."""
INT_MAX = 2**31 - 1
"""Largest count or size any setting takes (a larger one overflows the arrays it sizes)."""

#: setting name → (lowest, highest, whether the lowest is excluded); ints unless the lowest is a float.
#: Model shapes (layers, heads, widths) are checked where they are built, against the source model.
NUMERIC_LIMITS: dict[str, tuple[float, float | None, bool]] = {
    "seed": (0, SEED_MAX, False), "threads": (1, 1024, False),
    **{name: (1, INT_MAX, False) for name in (
        "batch_size", "eval_batch_size", "metric_batch_size", "chunk_rows", "shard_rows", "parity_examples",
        "repeats", "max_steps", "grad_accum", "eval_every", "save_every", "log_every", "keep_last", "limit",
        "seq_len", "top_k")},
    "max_length": (8, INT_MAX, False), "warmup": (0, INT_MAX, False), "negatives_per_query": (0, INT_MAX, False),
    "epochs": (0.0, None, True), "lr": (0.0, 1.0, True), "weight_decay": (0.0, None, False),
    "max_grad_norm": (0.0, None, False), "time_budget": (0.0, None, True), "alpha": (0.0, 1.0, False),
    "temperature": (0.0, None, True), "pkd_beta": (0.0, None, False), "random_ratio": (0.0, 1.0, False),
    "fp32_max_abs_diff": (0.0, None, False), "int8_min_agreement": (0.0, 1.0, False),
    # a random student's shape from --student-config (a source model's shape is checked against it)
    "student.width": (1, INT_MAX, False), "student.heads": (1, INT_MAX, False),
    "student.intermediate": (1, INT_MAX, False),
}
#: settings whose value must stay below 1 (a share of the data or of the updates)
BELOW_ONE = ("warmup_ratio", "dev_fraction", "eval_fraction")
#: options named other than their setting
OPTION_NAMES = {"fp32_max_abs_diff": "--fp32-tolerance", "eval_data.limit": "--eval-limit",
                "student.width": "--student-config width", "student.heads": "--student-config heads",
                "student.intermediate": "--student-config intermediate"}
#: what a setting is, where its name does not say it
DESCRIPTIONS = {"lr": "learning rate", "epochs": "number of epochs", "pkd_beta": "PKD weight",
                "alpha": "KD weight alpha", "warmup_ratio": "warm-up ratio", "warmup": "number of warm-up calls",
                "time_budget": "time budget in seconds", "threads": "number of CPU threads",
                "max_grad_norm": "gradient norm", "fp32_max_abs_diff": "fp32 tolerance",
                "int8_min_agreement": "int8 agreement", "seed": "random seed",
                "top_k": "number of pairs per query", "limit": "row limit", "eval_every": "evaluation interval",
                "save_every": "checkpoint interval", "log_every": "history interval",
                "grad_accum": "number of micro-batches per update", "seq_len": "sequence length",
                "negatives_per_query": "number of negatives per query", "max_steps": "number of updates",
                "shard_rows": "number of rows per shard", "chunk_rows": "number of rows per chunk",
                "keep_last": "number of checkpoints kept", "repeats": "number of timed calls",
                "eval_fraction": "held-out share", "dev_fraction": "dev share", "max_length": "maximum length",
                "width": "width", "heads": "number of attention heads", "intermediate": "FFN width"}


def _number(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _range_text(low: float, high: float | None, low_open: bool, whole: bool, value: Any) -> str:
    kind = "a whole number" if whole else "a finite number"
    if high is None or (high == INT_MAX and isinstance(value, (int, float)) and value <= high):
        return f"{kind} {'above' if low_open else 'of at least'} {_number(low)}"
    return f"{kind} from {_number(low)}{' (excluded)' if low_open else ''} to {_number(high)}"


def _limit_key(path: str) -> str | None:
    """The NUMERIC_LIMITS / BELOW_ONE key of a setting's dotted path (a dotted key first, then its name)."""
    dotted = next((k for k in NUMERIC_LIMITS if "." in k and (path == k or path.endswith("." + k))), None)
    name = path.rsplit(".", 1)[-1].split("]")[-1]
    return dotted or (name if name in NUMERIC_LIMITS or name in BELOW_ONE else None)


def _numeric_problem(name: str, value: Any) -> str | None:
    import math

    if name in BELOW_ONE:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and 0 <= value < 1):
            return "a finite number from 0 to below 1"
        return None
    low, high, low_open = NUMERIC_LIMITS[name]
    whole = isinstance(low, int)
    ok = not isinstance(value, bool) and isinstance(value, int if whole else (int, float))
    if ok and not whole:
        ok = math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (high is None or value <= high)
    return None if ok else _range_text(low, high, low_open, whole, value)


def _numeric_settings(config: Any, prefix: str = "", unset: bool = False) -> list[tuple[str, Any]]:
    """(dotted path, value) of every checked numeric setting in a config dataclass and its nested ones."""
    out = []
    if not dataclasses.is_dataclass(config):
        return out
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out += _numeric_settings(value, path + ".", unset)
        elif isinstance(value, list) and value and all(dataclasses.is_dataclass(v) for v in value):
            for i, item in enumerate(value):
                out += _numeric_settings(item, f"{path}[{i}].", unset)
        elif (value is not None or unset) and _limit_key(path) is not None:
            out.append((path, value))
    return out


def check_numbers(config: Any, flags_config: Any = None, config_path: Path | None = None) -> None:
    """Refuse a numeric setting out of its range (seeds 0..2**32-1, threads and sizes ≥ 1, shares in [0, 1), ...)
    in one line naming the option, or the key of ``config_path`` when the value came from that file."""
    flag_values = dict(_numeric_settings(flags_config, unset=True)) if flags_config is not None else {}
    for path, value in _numeric_settings(config):
        key = _limit_key(path)
        need = _numeric_problem(key, value)
        if need is None:
            continue
        name = key.rsplit(".", 1)[-1]
        shown = "<" + type(value).__name__ + ">" if not isinstance(value, (int, float, str)) else repr(value)
        what = DESCRIPTIONS.get(name, name.replace("_", " "))
        if config_path is not None and flags_config is not None and flag_values.get(path, value) != value:
            raise UserError(f"config key {path!r} is {shown}: the {what} must be {need}", str(config_path),
                            f"give {path} as {need}")
        option = next((o for key, o in OPTION_NAMES.items() if path == key or path.endswith("." + key)),
                      "--" + name.replace("_", "-"))
        raise UserError(f"{option} {shown}: the {what} must be {need}", None, f"give {option} as {need}")


def require(value: Any, option: str, fix: str) -> Any:
    if value in (None, "", []):
        raise UserError(f"no {option} given", None, fix)
    return value

DataPath = Annotated[Optional[Path], typer.Option(
    "--data", help=f"Local data file: {formats_help()}.", rich_help_panel=DATA_PANEL)]
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
    from bertdistill.io import check_not_inputs, note_outputs

    outputs = [o for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs]) if o]
    check_not_inputs(outputs, list(inputs))
    note_outputs(outputs)


def spec_inputs(spec) -> list:
    """The local files a data spec reads."""
    return [spec.path] if spec is not None and getattr(spec, "path", None) else []


def backends_help() -> str:
    """The --backend help from the backend registry."""
    from bertdistill.inference import registered_backends

    return ("auto (the first backend that loads the folder: torch for a model directory, onnx for an export), "
            + ", ".join(f"{b.name} ({b.kind})" for b in registered_backends()) + ".")


@contextlib.contextmanager
def stopped_as_one_line(again: str | None = None):
    """Ctrl-C as one line, exit 130 (typer would exit 130 without a word): the interrupt's own message when it
    says what was kept (``interrupts.Stopped``, a recipe step's ``StepInterrupted``), else ``interrupted;
    {again}``. Without ``again`` only ``Stopped`` is caught."""
    from bertdistill.interrupts import Stopped

    try:
        yield
    except KeyboardInterrupt as exc:
        if again is None and not isinstance(exc, Stopped):
            raise
        typer.echo(f"interrupted: {exc}" if str(exc) else f"interrupted; {again}", err=True)
        raise typer.Exit(130) from None
