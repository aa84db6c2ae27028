"""ONNX Runtime backends: ``onnx`` (model.onnx) and ``onnx-int8`` (model_quantized.onnx, or the older
model.int8.onnx) of an exported directory."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from bertdistill.data.tokenize import MODEL_INPUTS
from bertdistill.errors import UserError
from bertdistill.inference.batches import Batch
from bertdistill.inference.onnx_dir import EXPORT_REPORT, ONNX_FP32, int8_file, is_onnx_dir
from bertdistill.inference.registry import Backend, register_backend
from bertdistill.inference.scorer import Scorer


GPU_INSTALL = "pip install 'bertdistill[gpu]' (onnxruntime-gpu, in place of onnxruntime)"


def onnx_providers(device: str | None, available: Sequence[str], env: dict[str, str] | None = None) -> list:
    """ONNX Runtime providers for ``device``: CUDA (then CPU for unsupported nodes) when asked for or, for
    ``auto``, when onnxruntime-gpu offers it and torch sees a GPU; else the CPU. CUDA asked for without
    onnxruntime-gpu is a UserError."""
    import torch

    from bertdistill.devices import AUTO, local_rank, parse_device, under_accelerate_launch

    kind, index = parse_device(device)
    has_cuda = "CUDAExecutionProvider" in available
    if kind == "cpu" or (kind == AUTO and not (has_cuda and torch.cuda.is_available())):
        return ["CPUExecutionProvider"]
    if kind == AUTO and str((env if env is not None else os.environ).get("ACCELERATE_USE_CPU", "")).lower() in (
            "1", "true", "yes", "on"):
        return ["CPUExecutionProvider"]
    if not has_cuda:
        raise UserError(f"device {device} asked for, but this ONNX Runtime has no CUDAExecutionProvider "
                        f"(providers: {', '.join(available)})", "--device",
                        f"install {GPU_INSTALL}, or use --device cpu")
    if index is None:
        index = local_rank(env) if under_accelerate_launch(env) else 0
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def load_onnx(path: str, threads: int | None = None, trust_remote_code: bool = False, int8: bool = False,
              device: str = "cpu") -> Scorer:
    """An ONNX Runtime session on the CPU, or on a GPU with onnxruntime-gpu; the graph returns logits only."""
    import onnxruntime as ort

    from bertdistill.io import is_complete, read_json
    from bertdistill.models import config_label_names, load_config, load_tokenizer

    p = Path(path)
    if (p / EXPORT_REPORT).is_file() and not is_complete(p):
        raise UserError("ONNX export is unfinished (no completion marker)", path,
                        "run bertdistill export again")
    file = int8_file(p) if int8 else p / ONNX_FP32
    name = file.name
    if not file.is_file():
        raise UserError(f"no {name} in the ONNX directory", path,
                        "export with bertdistill export" + (" --int8" if int8 else ""))
    if not any((p / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        raise UserError("ONNX directory has no tokenizer files", path,
                        "re-export it with bertdistill export, which copies the tokenizer")
    providers = onnx_providers(device, ort.get_available_providers())
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # ONNX Runtime's idle pool threads busy-wait by default. Where one process holds several models (bench,
    # label with ONNX teachers) or PyTorch runs beside it, they take the cores from whichever model runs:
    # on 2 cores a bench timed a 2-layer int8 student 3.5x slower than alone. Alone, spinning gains nothing
    # measurable at the batch sizes served here (docs/bench_schema.md, "How figures are measured").
    for pool in ("intra_op", "inter_op"):
        options.add_session_config_entry(f"session.{pool}.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(file), options, providers=providers)
    except Exception as exc:
        raise UserError(f"ONNX Runtime cannot load the model ({str(exc)[:160]})", str(file),
                        "re-export it with bertdistill export") from None
    graph_inputs = {i.name for i in session.get_inputs()}
    input_names = tuple(k for k in MODEL_INPUTS if k in graph_inputs)
    config = load_config(str(p), option="the ONNX directory")
    tokenizer = load_tokenizer(str(p), option="the ONNX directory")

    def forward(batch: Batch, layers: Sequence[int]) -> tuple[np.ndarray, None]:
        if layers:
            raise UserError("[CLS] hidden states cannot be read from an ONNX model", path,
                            "use --backend torch or bf16 with the Hugging Face model directory")
        feeds = {k: np.asarray(batch[k], dtype=np.int64) for k in input_names if k in batch}
        return session.run(["logits"], feeds)[0].astype(np.float32), None

    report = p / EXPORT_REPORT
    num_parameters = read_json(report).get("num_parameters") if report.is_file() else None
    on_gpu = session.get_providers()[0] == "CUDAExecutionProvider"
    gpu_index = providers[0][1]["device_id"] if on_gpu else None
    return Scorer(str(p), "onnx-int8" if int8 else "onnx", tokenizer, config_label_names(config), config,
                  input_names, forward, model_file=str(file), num_parameters=num_parameters,
                  device=f"cuda:{gpu_index}" if on_gpu else "cpu")


_READS = "an exported ONNX directory (model.onnx, model_quantized.onnx)"
_MAKE = "export it with bertdistill export (--int8 for onnx-int8)"
register_backend(Backend("onnx", load_onnx, is_onnx_dir, "ONNX", _READS, hidden_states=False, how_to_make=_MAKE,
                         export=True))
register_backend(Backend("onnx-int8", partial(load_onnx, int8=True), is_onnx_dir, "ONNX", _READS, hidden_states=False,
                         how_to_make=_MAKE, export=True))
