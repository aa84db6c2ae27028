"""Build a student: copy embeddings, chosen encoder layers and pooler of a pretrained model, or
initialize a narrower model randomly from a shape; the classifier head is sized for the labels."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from bertdistill.errors import UserError
from bertdistill.student.config import HEADS, LAYER_MAPS, StudentConfig


def parse_layer_map(text: str, named: Sequence[str] = LAYER_MAPS) -> str | list[int]:
    """One of the ``named`` maps (first, skip, ...), or explicit 1-based layers "1,3,5"."""
    if text in named:
        return text
    try:
        layers = [int(x) for x in text.split(",")]
    except ValueError:
        names = ", ".join(named)
        raise UserError(f"layer map {text!r} is not {names} or a list like 1,3,5", "--layer-map",
                        f"use --layer-map {names} or 1-based layers such as 2,4,6") from None
    return layers


def student_layer_indices(source_layers: int, k: int | None, layer_map: str | Sequence[int]) -> list[int]:
    """1-based source layers the student keeps, in order (first: 1..k; skip: evenly spaced ending at the top)."""
    if isinstance(layer_map, str) and layer_map not in LAYER_MAPS:
        layer_map = parse_layer_map(layer_map)
    if not isinstance(layer_map, str):
        layers = list(layer_map)
        if k is not None and k != len(layers):
            raise UserError(f"--student-layers {k} but --layer-map lists {len(layers)} layers", "--layer-map",
                            "give as many layers as --student-layers, or drop --student-layers")
        bad = [x for x in layers if not 1 <= x <= source_layers]
        if bad:
            raise UserError(f"layers {bad} are outside 1..{source_layers} of the source model", "--layer-map",
                            f"use layers between 1 and {source_layers}")
        if len(set(layers)) != len(layers):
            raise UserError("a layer is listed twice", "--layer-map", "list each layer once")
        return layers
    k = source_layers if k is None else k
    if not 1 <= k <= source_layers:
        raise UserError(f"--student-layers {k} is outside 1..{source_layers} (the source model's layers)",
                        "--student-layers", f"use 1 to {source_layers}")
    if layer_map == "first":
        return list(range(1, k + 1))
    return [(2 * i * source_layers + k) // (2 * k) for i in range(1, k + 1)]


def _label_kwargs(label_names: Sequence[str]) -> dict:
    return {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
            "label2id": {n: i for i, n in enumerate(label_names)}}


def check_score_head(label_names: Sequence[str], where: str = "--head score") -> int:
    """Index of the relevant label; a score head needs binary labels (relevant or not)."""
    from bertdistill.metrics import positive_label_index

    if len(label_names) != 2:
        raise UserError(f"a score head needs 2 labels (relevant or not), the data has {len(label_names)}", where,
                        "use --head classes for this task")
    return positive_label_index(label_names)


def to_score_head(model, label_names: Sequence[str]) -> None:
    """Turn a 2-logit classifier into a 1-logit score head in place: w = w_pos − w_other (the same logit difference)."""
    from torch import nn

    from bertdistill.families import output_linear

    pos = check_score_head(label_names)
    linear = output_linear(model)
    if linear.out_features != 1:
        score = nn.Linear(linear.in_features, 1).to(linear.weight.dtype)
        with torch.no_grad():
            score.weight.copy_(linear.weight[pos:pos + 1] - linear.weight[1 - pos:2 - pos])
            score.bias.copy_(linear.bias[pos:pos + 1] - linear.bias[1 - pos:2 - pos])
        _replace_module(model, linear, score)
    mark_score_config(model.config, label_names)


def mark_score_config(config, label_names: Sequence[str]) -> None:
    from bertdistill.models import SCORE_LABEL

    config.num_labels = 1
    config.id2label = {0: SCORE_LABEL}
    config.label2id = {SCORE_LABEL: 0}
    config.task_label_names = list(label_names)


def _replace_module(root, old, new) -> None:
    for name, module in root.named_modules():
        for child_name, child in module.named_children():
            if child is old:
                setattr(module, child_name, new)
                return
    raise ValueError("module not found")


def build_classifier(cfg: StudentConfig, label_names: Sequence[str], seed: int = 42):
    """(sequence classifier, tokenizer, provenance dict) for a student described by ``cfg``."""
    if cfg.head not in HEADS:
        raise UserError(f"unknown head {cfg.head!r}", "--head", f"use one of: {', '.join(HEADS)}")
    if cfg.head == "score":
        check_score_head(label_names)
    model, tokenizer, info = _build_classifier(cfg, label_names, seed)
    if cfg.dropout is not None:
        model = with_dropout(model, cfg.dropout)
        info["dropout"] = cfg.dropout
    if cfg.head == "score":
        to_score_head(model, label_names)
        info["head"] = "score"
    else:
        from bertdistill.models import is_score_config

        if is_score_config(model.config):
            raise UserError("the source model has a score head (1 logit)", "--student-from",
                            "pass --head score to keep it, or start from a model with one logit per label")
    return model, tokenizer, info


DROPOUT_SUFFIXES = ("dropout", "dropout_prob", "dropout_rate")
"""Config settings named so are dropout probabilities in every supported family (BERT's hidden_dropout_prob and
attention_probs_dropout_prob, DistilBERT's dropout and attention_dropout, ModernBERT's mlp_dropout...)."""


def dropout_settings(config) -> list[str]:
    """The config's dropout probabilities: its numeric settings named ``*dropout``, ``*dropout_prob``, ``*dropout_rate``."""
    return [k for k, v in config.to_dict().items()
            if k.endswith(DROPOUT_SUFFIXES) and isinstance(v, (int, float)) and not isinstance(v, bool)]


def with_dropout(model, p: float):
    """The same weights in a model of the same class whose every dropout probability is ``p``: rebuilt from its
    config, since the modules read them when made (the global RNG is left as it was)."""
    import copy

    if not 0.0 <= p < 1.0:
        raise UserError(f"dropout {p} is not a probability below 1", "--student-dropout", "give e.g. 0 or 0.1")
    keys = dropout_settings(model.config)
    if all(getattr(model.config, key) == p for key in keys):
        return model  # e.g. stage 2 from a stage-1 student saved with this dropout: nothing to rebuild
    config = copy.deepcopy(model.config)
    for key in keys:
        setattr(config, key, float(p))
    with torch.random.fork_rng(devices=[]):
        rebuilt = type(model)(config)
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt


def _build_classifier(cfg: StudentConfig, label_names: Sequence[str], seed: int = 42):
    from transformers import AutoModelForSequenceClassification

    from bertdistill.families import family_of, shape_of
    from bertdistill.models import load_classifier, load_config, load_tokenizer, resolve_model, weights_sha256

    source = resolve_model(cfg.source, "--student-from")
    tokenizer = load_tokenizer(source, cfg.trust_remote_code, option="--student-from")
    base_config = load_config(source, cfg.trust_remote_code, option="--student-from")
    known = shape_of(base_config)  # a family without an adapter can still be used whole
    source_layers = known.layers if known else int(getattr(base_config, "num_hidden_layers", 0) or 0)
    info = {"source": source, "source_weights_sha256": weights_sha256(source) if Path(source).is_dir() else None,
            "source_layers": source_layers, "family": getattr(base_config, "model_type", None)}
    torch.manual_seed(seed)
    if cfg.random_init:
        family = family_of(base_config, "a random student (--student-config)", "--student-from")
        shape = family.shape(base_config)
        width = cfg.width or shape.hidden
        ffn = cfg.intermediate or (4 * cfg.width if cfg.width else shape.ffn)
        heads = cfg.heads or shape.heads
        if width % heads:
            raise UserError(f"width {width} is not divisible by {heads} heads",
                            "--student-config", "choose heads that divide the width (e.g. width 384, heads 12)")
        config = family.with_shape(base_config, layers=cfg.layers or shape.layers, hidden=width, heads=heads, ffn=ffn)
        for key, value in _label_kwargs(label_names).items():
            setattr(config, key, value)
        config.architectures = None
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=cfg.trust_remote_code)
        made = family.shape(model.config)
        info.update(random_init=True, layers=made.layers, width=made.hidden, attention_heads=made.heads)
        return model, tokenizer, info

    full = load_classifier(source, list(label_names), cfg.trust_remote_code, option="--student-from")
    layers = student_layer_indices(source_layers, cfg.layers, cfg.layer_map)
    width = getattr(full.config, "hidden_size", None)
    info.update(random_init=False, layers_copied=layers, layers=len(layers), width=width,
                classifier_trained=any(a.endswith("ForSequenceClassification")
                                       for a in (base_config.architectures or [])))
    if layers == list(range(1, source_layers + 1)):
        return full, tokenizer, info
    family = family_of(full, "--student-layers/--layer-map", "--student-from")
    model, notes = copy_layers(full, family, layers, cfg.trust_remote_code, source)
    if notes:
        info["layer_notes"] = notes
    return model, tokenizer, info


def copy_layers(full, family, layers: Sequence[int], trust_remote_code: bool, where: str):
    """(a model of ``full``'s class keeping source ``layers`` (1-based) and everything else, notes)."""
    from transformers import AutoModelForSequenceClassification

    config = family.select_layers(full.config, [x - 1 for x in layers])
    model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
    prefix = family.layers_prefix(full) + "."
    position = {src - 1: dst for dst, src in enumerate(layers)}
    state = {}
    for key, value in full.state_dict().items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix):].partition(".")
            if int(index) not in position:
                continue
            key = f"{prefix}{position[int(index)]}.{rest}"
        state[key] = value
    missing, unexpected = model.load_state_dict(state, strict=False)

    def tolerated(key: str) -> bool:
        if not key.startswith(prefix):
            return False
        return family.copy_tolerated(key[len(prefix):].partition(".")[2])

    bad = [k for k in unexpected if not tolerated(k)] + [k for k in missing
                                                          if "position_ids" not in k and not tolerated(k)]
    if bad:
        raise UserError(f"cannot copy layers of {type(full).__name__} (unmatched weights: {bad[:3]})", where,
                        "use a standard Hugging Face model of a supported family, or a random student "
                        "(--student-config)")
    return model, family.copy_notes(list(layers))
