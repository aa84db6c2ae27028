"""``prune``: score a model's parts on calibration data and write the smaller model of the requested shape
(any family with a layout adapter: ``bertdistill.families``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from bertdistill.errors import UserError
from bertdistill.prune.config import LAYER_SELECTIONS, PruneConfig
from bertdistill.prune.importance import ImportanceScores, collect_scores, importance_layers, make_plan
from bertdistill.prune.shrink import PrunePlan, SourceParts, shrink_model, source_parts

REPORT_FILE = "prune_report.json"
CONFIG_FILE = "prune_config.json"
REPORT_FORMAT = "bertdistill-prune-report"


@dataclass
class PruneShape:
    """The requested shape, checked against the source."""

    layers: int
    layer_map: str | list[int]
    hidden: int
    heads: int
    ffn: int

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads


@dataclass
class PruneResult:
    output: Path
    report: dict[str, Any]


def parse_layer_selection(text: str) -> str | list[int]:
    """first, skip, importance, or explicit 1-based layers "i,j,k"."""
    from bertdistill.student.build import parse_layer_map

    layers = parse_layer_map((text or "first").strip().lower(), named=LAYER_SELECTIONS)
    if isinstance(layers, list) and len(set(layers)) != len(layers):
        raise UserError("a layer is listed twice", "--layer-map", "list each layer once")
    return layers


def resolve_shape(parts: SourceParts, cfg: PruneConfig) -> PruneShape:
    """The target shape from the options and the source's shape; a UserError for an impossible one."""
    src = parts.shape
    src_layers, src_hidden, src_heads, src_ffn, head_size = src.layers, src.hidden, src.heads, src.ffn, src.head_size
    layer_map = parse_layer_selection(cfg.layer_map)
    k = cfg.layers
    if isinstance(layer_map, list):
        if k is not None and k != len(layer_map):
            raise UserError(f"--layers {k} but --layer-map lists {len(layer_map)} layers", "--layer-map",
                            "give as many layers as --layers, or drop --layers")
        k = len(layer_map)
        bad = [x for x in layer_map if not 1 <= x <= src_layers]
        if bad:
            raise UserError(f"layers {bad} are outside 1..{src_layers} of the source model", "--layer-map",
                            f"use layers between 1 and {src_layers}")
    k = src_layers if k is None else k
    if k < 1:
        raise UserError(f"--layers {k}: a model needs at least one layer", "--layers", f"use 1 to {src_layers}")
    if k > src_layers:
        raise UserError(f"--layers {k} is deeper than the source's {src_layers} layers", "--layers",
                        f"use 1 to {src_layers}")
    hidden = src_hidden if cfg.hidden is None else cfg.hidden
    if hidden < 1:
        raise UserError(f"--hidden {hidden} must be at least 1", "--hidden", f"use 1 to {src_hidden}")
    if hidden > src_hidden:
        raise UserError(f"--hidden {hidden} is wider than the source's {src_hidden}", "--hidden",
                        f"use at most {src_hidden}")
    if hidden != src_hidden:
        parts.family.check_width(parts.model.config, hidden, "--hidden")
    heads = cfg.heads
    if heads is None:
        if hidden % head_size:
            raise UserError(f"--hidden {hidden} is not a multiple of the source's head size {head_size}", "--heads",
                            "give --heads A with A dividing the hidden size")
        heads = hidden // head_size
    if heads < 1:
        raise UserError(f"--heads {heads}: a model needs at least one attention head", "--heads",
                        f"use 1 to {src_heads}")
    if hidden % heads:
        raise UserError(f"{heads} heads do not divide hidden size {hidden}", "--heads",
                        "choose --heads that divides --hidden (e.g. --hidden 256 --heads 8)")
    if heads > src_heads:
        raise UserError(f"--heads {heads} is more than the source's {src_heads} heads", "--heads",
                        f"use at most {src_heads}")
    if hidden // heads > head_size:
        raise UserError(f"head size {hidden}/{heads} = {hidden // heads} is wider than the source's {head_size}",
                        "--heads", f"use at least {math.ceil(hidden / head_size)} heads for --hidden {hidden}")
    if hidden // heads != head_size and parts.family.whole_heads:
        raise UserError(f"{parts.family.whole_heads}, so heads keep their {head_size} dimensions: {heads} heads "
                        f"of {hidden // heads} cannot be cut", "--heads",
                        f"use --hidden a multiple of {head_size} with --heads hidden/{head_size} "
                        "(fewer whole heads)")
    ffn = cfg.ffn if cfg.ffn is not None else max(1, round(src_ffn * hidden / src_hidden))
    if ffn < 1:
        raise UserError(f"--ffn {ffn} must be at least 1", "--ffn", f"use 1 to {src_ffn}")
    if ffn > src_ffn:
        raise UserError(f"--ffn {ffn} is wider than the source's {src_ffn}", "--ffn", f"use at most {src_ffn}")
    return PruneShape(layers=k, layer_map=layer_map, hidden=hidden, heads=heads, ffn=ffn)


def choose_layers(shape: PruneShape, source_layers: int, blocks: np.ndarray) -> list[int]:
    """0-based source layers kept: first k, PKD-skip (as ``finetune --layer-map skip``), importance or a list."""
    if isinstance(shape.layer_map, list):
        return [x - 1 for x in shape.layer_map]
    if shape.layer_map == "importance":
        return importance_layers(blocks, shape.layers)
    from bertdistill.student.build import student_layer_indices

    return [x - 1 for x in student_layer_indices(source_layers, shape.layers, shape.layer_map)]


def _load_source(source: str, classifier: bool, trust_remote_code: bool):
    from bertdistill.models import _hub_error, load_classifier

    if classifier:
        return load_classifier(source, trust_remote_code=trust_remote_code)
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(source, exc, "--model") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def _encode(tokenizer, data, max_length: int, input_names) -> dict[str, list]:
    from bertdistill.data.tokenize import encode_texts

    text_b = data.column("text_b") if data.has_text_b else None
    return encode_texts(tokenizer, data.column("text_a"), text_b, max_length, input_names)


def _pad(enc: dict[str, list], rows: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    from bertdistill.data.tokenize import pad_batch

    return pad_batch([{k: values[r] for k, values in enc.items()} for r in rows], pad_id)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Tensors moved to ``device`` (through pinned memory to a GPU, asynchronously); unchanged on the CPU."""
    if device.type == "cpu":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def _teacher_probs(path: str, model_names: list[str], data, max_length: int, batch_size: int,
                   trust_remote_code: bool, device: torch.device = torch.device("cpu")) -> np.ndarray:
    """(N, C) softmax of a teacher's logits, columns in the pruned model's label order."""
    from bertdistill.data.tokenize import sorted_batches
    from bertdistill.families import input_names
    from bertdistill.models import config_label_names, label_permutation, load_classifier, load_tokenizer, resolve_model

    source = resolve_model(path, "--teacher")
    teacher = load_classifier(source, trust_remote_code=trust_remote_code, option="--teacher").eval().to(device)
    order = label_permutation(config_label_names(teacher.config), model_names, source)
    tokenizer = load_tokenizer(source, trust_remote_code, option="--teacher")
    enc = _encode(tokenizer, data, max_length, input_names(teacher.config, teacher))
    probs = np.zeros((data.num_rows, len(model_names)), dtype=np.float32)
    pad = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for rows in sorted_batches([len(x) for x in enc["input_ids"]], batch_size):
            logits = teacher(**_to_device(_pad(enc, rows, pad), device)).logits.float()
            probs[rows] = torch.softmax(logits[:, order], dim=-1).cpu().numpy()
    return probs


def _store_probs(path: str, model_names: list[str], data) -> np.ndarray:
    """(N, C) mean over a label store's teachers of their softmax, columns in the model's label order."""
    from bertdistill.models import label_permutation
    from bertdistill.teachers.store import LabelStore

    store = LabelStore.open(path)
    store.check_data(data, "calibration data")
    order = label_permutation(store.label_names, model_names, str(path))
    probs = [torch.softmax(torch.from_numpy(store.logits(t)[:, order]).float(), dim=-1) for t in store.teacher_names]
    return torch.stack(probs).mean(0).numpy()


def choose_objective(cfg: PruneConfig, classifier: bool, has_labels: bool) -> str:
    if cfg.teacher:
        return "teacher_kl"
    if cfg.labels:
        return "store_kl"
    if not classifier:
        return "output_norm"
    return "gold_ce" if has_labels else "self_ce"


def _summary(values: np.ndarray, kept: list[int] | None = None) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    out = {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}
    if kept is not None:
        total = float(values.sum())
        out["kept_share"] = float(values[kept].sum() / total) if total > 0 else None
    return out


def _num_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _shape_of(model) -> dict[str, int]:
    from bertdistill.families import shape_of

    s = shape_of(model)
    return {"layers": s.layers, "hidden": s.hidden, "heads": s.heads, "head_size": s.head_size, "ffn": s.ffn}


def build_report(cfg: PruneConfig, source: str, model, pruned, shape: PruneShape, plan: PrunePlan,
                 scores: ImportanceScores, lengths: list[int], fingerprint: dict, seconds: dict) -> dict[str, Any]:
    from bertdistill.flops import flops_per_example
    from bertdistill.io import to_jsonable
    from bertdistill.models import weights_sha256

    flops_before = flops_per_example(model.config, lengths, num_labels=_num_labels(model))
    flops_after = flops_per_example(pruned.config, lengths, num_labels=_num_labels(pruned))
    params_before, params_after = _num_params(model), _num_params(pruned)
    head_size_changed = plan.head_size != plan.source_head_size
    kept_layers = []
    for i, layer in enumerate(plan.layers):
        entry = {"source_layer": layer + 1, "heads": plan.heads[i], "ffn": plan.ffn[i]}
        if head_size_changed:
            entry.update(qk_rows=plan.qk_rows[i], v_rows=plan.v_rows[i])
        kept_layers.append(entry)
    hidden_scores = scores.hidden(plan.layers)
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        "indices": "layers are 1-based (as hidden_states); heads, FFN neurons, hidden dims and Q/K/V rows are 0-based",
        "family": getattr(model.config, "model_type", None),
        "source": {"model": source, "class": type(model).__name__,
                   "weights_sha256": weights_sha256(source) if Path(source).is_dir() else None, **_shape_of(model)},
        "pruned": {"class": type(pruned).__name__, **_shape_of(pruned)},
        "layer_map": shape.layer_map if isinstance(shape.layer_map, str) else "list",
        "head_slicing": ("whole heads" if not head_size_changed else
                         f"top {plan.head_size} of {plan.source_head_size} dims within each kept head "
                         f"(Q/K and V separately; Q scaled by sqrt({plan.head_size}/{plan.source_head_size}))"),
        "objective": scores.objective,
        "calibration": {"data": fingerprint, "examples": scores.examples, "tokens": scores.tokens,
                        "mean_tokens": float(np.mean(lengths)), "max_length": cfg.max_length,
                        "mean_loss": scores.loss},
        "kept": {"layers": [layer + 1 for layer in plan.layers], "hidden": plan.hidden, "per_layer": kept_layers},
        "scores": {
            "blocks": [float(x) for x in scores.blocks],
            "heads": [[float(x) for x in row] for row in scores.heads],
            "heads_summary": [_summary(scores.heads[layer], plan.heads[i]) for i, layer in enumerate(plan.layers)],
            "ffn_summary": [_summary(scores.ffn[layer], plan.ffn[i]) for i, layer in enumerate(plan.layers)],
            "hidden_summary": _summary(hidden_scores, plan.hidden),
        },
        "params": {"before": params_before, "after": params_after, "ratio": params_after / params_before},
        "flops_per_example": {"before": flops_before, "after": flops_after, "ratio": flops_after / flops_before},
        "seconds": seconds,
        "notes": [f"{where} has no counterpart in its source layer: kept as initialized"
                  for where in getattr(pruned, "bertdistill_initialized", [])],
        "config": to_jsonable(cfg),
    }


def _num_labels(model) -> int:
    from bertdistill.models import is_classifier

    if not is_classifier(model.config) and getattr(model, "base_model", model) is model:
        return 0
    from bertdistill.families import output_linear

    return int(output_linear(model).out_features)


def _set_attention(model, implementation: str | None) -> None:
    if implementation and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(implementation)


def _outputs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        out = model(**batch)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def prune(config: PruneConfig) -> PruneResult:
    """Score ``config.model``'s parts on ``config.data`` and write the pruned model to ``config.output``."""
    from bertdistill.data.sources import load_task_data
    from bertdistill.data.tokenize import check_max_length, sorted_batches
    from bertdistill.io import atomic_dir, check_output_dir, write_json
    from bertdistill.models import config_label_names, is_classifier, load_config, load_tokenizer, resolve_model
    from bertdistill.ui import progress

    from bertdistill.devices import resolve_device

    started = time.perf_counter()
    device = resolve_device(config.device)
    if config.teacher and config.labels:
        raise UserError("both --teacher and --labels are given", None, "give only one source of soft predictions")
    if config.batch_size < 1:
        raise UserError(f"--batch-size {config.batch_size} must be at least 1", "--batch-size", "use 1 or more")
    if not (config.data.path or config.data.dataset):
        raise UserError("no calibration data given", None,
                        "pass --data FILE (or --dataset) with examples of the task, e.g. --limit 2000 rows")
    output = check_output_dir(config.output, config.overwrite)
    source = resolve_model(config.model)
    src_config = load_config(source, config.trust_remote_code)
    classifier = is_classifier(src_config)
    if (config.teacher or config.labels) and not classifier:
        option = "--teacher" if config.teacher else "--labels"
        raise UserError(f"{option} needs a classifier to compare with, but the source is a base encoder", source,
                        f"prune the fine-tuned teacher itself (--model TEACHER), or drop {option} to score "
                        "the encoder by its own outputs")
    model = _load_source(source, classifier, config.trust_remote_code).eval()
    parts = source_parts(model, source)
    shape = resolve_shape(parts, config)
    tokenizer = load_tokenizer(source, config.trust_remote_code)
    check_max_length(tokenizer, model.config, config.max_length)

    model_names = config_label_names(model.config) if classifier else []
    store_names = None
    if config.labels:
        from bertdistill.teachers.store import LabelStore

        store_names = LabelStore.open(config.labels).label_names
    data = load_task_data(config.data, label_names=store_names)
    if data.num_rows == 0:
        raise UserError("the calibration set is empty", config.data.describe(), "give data with at least one row")
    objective = choose_objective(config, classifier, data.has_labels)
    targets: dict[str, np.ndarray] = {}
    if objective == "teacher_kl":
        targets["target_probs"] = _teacher_probs(config.teacher, model_names, data, config.max_length,
                                                 config.batch_size, config.trust_remote_code, device)
    elif objective == "store_kl":
        targets["target_probs"] = _store_probs(config.labels, model_names, data)
    elif objective == "gold_ce":
        from bertdistill.models import label_permutation

        order = np.asarray(label_permutation(model_names, data.label_names, config.data.describe()))
        targets["labels"] = order[np.asarray(data.column("label"), dtype=np.int64)]

    from bertdistill.families import input_names

    enc = _encode(tokenizer, data, config.max_length, input_names(model.config, model))
    lengths = [len(x) for x in enc["input_ids"]]
    pad_id = tokenizer.pad_token_id or 0
    batches_rows = sorted_batches(lengths, config.batch_size)

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        for rows in batches_rows:
            batch = _pad(enc, rows, pad_id)
            for key, values in targets.items():
                batch[key] = torch.as_tensor(values[rows])
            yield _to_device(batch, device)

    head_dims = shape.head_size != parts.head_size
    prepared = time.perf_counter()
    # On CPU the backward pass of torch's SDPA kernel is ~4x slower than eager attention's.
    attn = model.config._attn_implementation
    _set_attention(model, "eager")
    model.to(device)
    try:
        if config.quiet:
            scores = collect_scores(model, parts, batches(), objective, head_dims=head_dims)
        else:
            with progress(transient=True) as bar:
                task = bar.add_task("scoring", total=data.num_rows)
                scores = collect_scores(model, parts, batches(), objective, head_dims=head_dims,
                                        on_batch=lambda n: bar.advance(task, n))
    finally:
        _set_attention(model, attn)
        model.to("cpu")  # the pruned model is built, checked and saved on the CPU
    scored = time.perf_counter()
    layers = choose_layers(shape, len(parts.layers), scores.blocks)
    plan = make_plan(scores, layers, shape.hidden, shape.heads, shape.ffn, parts.head_size,
                     shared_heads=parts.family.shared_heads is not None)
    pruned = shrink_model(model, plan, source)
    seconds = {"load": prepared - started, "scoring": scored - prepared}
    check_batch = _pad(enc, batches_rows[0], pad_id)
    with atomic_dir(output, config.overwrite) as tmp:
        pruned.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        reloaded = type(pruned).from_pretrained(str(tmp)).eval()
        diff = float((_outputs(reloaded, check_batch) - _outputs(pruned, check_batch)).abs().max())
        if diff > 1e-4:
            raise RuntimeError(f"the saved pruned model differs from the one built (max abs diff {diff:.2e})")
        seconds["total"] = time.perf_counter() - started
        report = build_report(config, source, model, pruned, shape, plan, scores, lengths, data.fingerprint(),
                              seconds)
        write_json(tmp / REPORT_FILE, report)
        write_json(tmp / CONFIG_FILE, config)
        from bertdistill.model_card import write_model_card

        write_model_card(tmp, output.name)
    return PruneResult(output=output, report=report)
