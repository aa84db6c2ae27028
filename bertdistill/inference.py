"""Inference backends shared by label, bench and predict: PyTorch fp32, PyTorch bf16, ONNX Runtime.

An exported ONNX directory (see ``bertdistill.export``) holds ``model.onnx`` (and optionally
``model.int8.onnx``) with inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64,
dynamic batch and sequence axes) and output ``logits``, plus tokenizer files and ``config.json``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bertdistill.data.sources import TaskData
from bertdistill.data.tokenize import MODEL_INPUTS, encode_texts, pad_batch, sorted_batches
from bertdistill.errors import UserError

BACKENDS = ("auto", "torch", "bf16", "onnx", "onnx-int8")
ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"


def is_onnx_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and ((p / ONNX_FP32).is_file() or (p / ONNX_INT8).is_file())


@dataclass
class Scorer:
    """A model ready to compute logits for tokenized batches, on one backend."""

    path: str
    backend: str
    tokenizer: object
    label_names: list[str]
    config: object
    run: Callable[[dict[str, np.ndarray]], np.ndarray]
    torch_model: torch.nn.Module | None = None
    onnx_file: str | None = None
    extra: dict = field(default_factory=dict)

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.run(batch)

    @property
    def num_parameters(self) -> int | None:
        if self.torch_model is not None:
            return sum(p.numel() for p in self.torch_model.parameters())
        return self.extra.get("num_parameters")

    def size_on_disk(self) -> int:
        if self.onnx_file:
            return Path(self.onnx_file).stat().st_size
        p = Path(self.path)
        files = list(p.glob("*.safetensors")) or list(p.glob("*.bin"))
        return sum(f.stat().st_size for f in files)


def load_scorer(path: str, backend: str = "auto", threads: int | None = None,
                trust_remote_code: bool = False) -> Scorer:
    """Load a Hugging Face directory (torch / bf16) or an exported ONNX directory (onnx / onnx-int8)."""
    from bertdistill.models import config_label_names, load_tokenizer, resolve_model

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}", None, f"use one of: {', '.join(BACKENDS)}")
    if threads is not None:
        torch.set_num_threads(threads)
    if backend == "auto":
        backend = "onnx" if is_onnx_dir(path) else "torch"
    if backend.startswith("onnx"):
        return _load_onnx(path, int8=backend == "onnx-int8", threads=threads)
    if is_onnx_dir(path) and not (Path(path) / "model.safetensors").exists():
        raise UserError(f"backend {backend} needs a PyTorch model, but this is an ONNX export", path,
                        "use --backend onnx or onnx-int8, or give the Hugging Face model directory")
    path = resolve_model(path)
    from bertdistill.models import load_classifier

    model = load_classifier(path, trust_remote_code=trust_remote_code).eval()
    tokenizer = load_tokenizer(path, trust_remote_code)
    config = model.config
    bf16 = backend == "bf16"

    @torch.inference_mode()
    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {k: torch.as_tensor(v) for k, v in batch.items() if k in MODEL_INPUTS}
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            out = model(**inputs).logits
        return out.float().numpy()

    return Scorer(path, backend, tokenizer, config_label_names(config), config, run, torch_model=model)


def _load_onnx(path: str, int8: bool, threads: int | None) -> Scorer:
    import onnxruntime as ort

    from bertdistill.models import config_label_names, load_config, load_tokenizer

    from bertdistill.io import is_complete

    p = Path(path)
    if (p / "export_report.json").is_file() and not is_complete(p):
        raise UserError("ONNX export is unfinished (no completion marker)", path,
                        "run bertdistill export again")
    name = ONNX_INT8 if int8 else ONNX_FP32
    file = p / name
    if not file.is_file():
        raise UserError(f"no {name} in the ONNX directory", path,
                        "export with bertdistill export" + (" --int8" if int8 else ""))
    if not any((p / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        raise UserError("ONNX directory has no tokenizer files", path,
                        "re-export it with bertdistill export, which copies the tokenizer")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError(f"ONNX Runtime cannot load the model ({str(exc)[:160]})", str(file),
                        "re-export it with bertdistill export") from None
    input_names = {i.name for i in session.get_inputs()}
    config = load_config(str(p), option="the ONNX directory")
    tokenizer = load_tokenizer(str(p), option="the ONNX directory")

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in input_names}
        return session.run(["logits"], feeds)[0].astype(np.float32)

    extra = {}
    report = p / "export_report.json"
    if report.is_file():
        import json

        extra["num_parameters"] = json.loads(report.read_text()).get("num_parameters")
    return Scorer(str(p), "onnx-int8" if int8 else "onnx", tokenizer, config_label_names(config),
                  config, run, onnx_file=str(file), extra=extra)


def tokenize_batch(tokenizer, text_a: list[str], text_b: list[str] | None, max_length: int,
                   pad_token_id: int | None = None) -> dict[str, np.ndarray]:
    """Tokenize and pad one batch to its longest example, as numpy int64 arrays."""
    enc = encode_texts(tokenizer, text_a, text_b, max_length)
    features = [dict(zip(enc, values)) for values in zip(*enc.values())]
    pad = tokenizer.pad_token_id if pad_token_id is None else pad_token_id
    return {k: v.numpy() for k, v in pad_batch(features, pad or 0).items()}


def predict_logits(scorer: Scorer, data: TaskData, max_length: int, batch_size: int,
                   on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Logits for every row, in the data's order, computed in length-sorted batches."""
    text_a = data.column("text_a")
    text_b = data.column("text_b") if data.has_text_b else None
    enc = encode_texts(scorer.tokenizer, text_a, text_b, max_length)
    lengths = [len(x) for x in enc["input_ids"]]
    out: np.ndarray | None = None
    pad = scorer.tokenizer.pad_token_id or 0
    for idx in sorted_batches(lengths, batch_size):
        features = [{k: enc[k][i] for k in enc} for i in idx]
        batch = {k: v.numpy() for k, v in pad_batch(features, pad).items()}
        logits = scorer.logits(batch)
        if out is None:
            out = np.zeros((len(lengths), logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
        if on_batch:
            on_batch(len(idx))
    return out if out is not None else np.zeros((0, len(scorer.label_names)), dtype=np.float32)
