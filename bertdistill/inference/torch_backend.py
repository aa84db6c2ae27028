"""PyTorch backends: ``torch`` (fp32) and ``bf16`` (the same model under bfloat16 autocast)."""

from __future__ import annotations

import contextlib
from functools import lru_cache, partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bertdistill.inference.batches import Batch
from bertdistill.inference.registry import Backend, register_backend
from bertdistill.inference.scorer import Scorer


def load_torch(path: str, threads: int | None = None, trust_remote_code: bool = False, bf16: bool = False,
               device: str | torch.device = "cpu") -> Scorer:
    """A Hugging Face sequence classifier in eval mode on ``device`` (auto | cpu | cuda | cuda:N); ``bf16``
    runs it under autocast in the device's reduced precision (bf16; fp16 on GPUs without bf16)."""
    from bertdistill.devices import autocast_dtype, emulated_bf16_warning, resolve_device
    from bertdistill.models import config_label_names, load_classifier, load_tokenizer, resolve_model

    device = device if isinstance(device, torch.device) else resolve_device(device)
    if bf16:
        _warn_once(emulated_bf16_warning(device, "the bf16 backend", "use --backend torch or onnx-int8"))
    if threads is not None:
        torch.set_num_threads(threads)
    path = resolve_model(path)
    model = load_classifier(path, trust_remote_code=trust_remote_code).eval().to(device)
    tokenizer = load_tokenizer(path, trust_remote_code)
    input_names = model_input_names(model, tokenizer)
    cuda = device.type == "cuda"
    dtype = autocast_dtype(device)

    def to_device(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        # Pinned host memory lets the copy to the GPU run asynchronously; on the CPU nothing moves.
        return tensor.pin_memory().to(device, non_blocking=True) if cuda else tensor

    @torch.inference_mode()
    def forward(batch: Batch, layers: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
        inputs = {k: to_device(batch[k]) for k in input_names if k in batch}
        autocast = torch.autocast(device.type, dtype=dtype) if bf16 else contextlib.nullcontext()
        with autocast:
            out = model(**inputs, output_hidden_states=bool(layers))
        logits = out.logits.float().cpu().numpy()
        if not layers:
            return logits, None
        cls = torch.stack([out.hidden_states[layer][:, 0, :] for layer in layers], dim=1)
        return logits, cls.float().cpu().numpy().astype(np.float16)

    return Scorer(path, "bf16" if bf16 else "torch", tokenizer, config_label_names(model.config), model.config,
                  input_names, forward, torch_model=model,
                  num_parameters=sum(p.numel() for p in model.parameters()), device=str(device))


@lru_cache(maxsize=None)
def _warn_once(line: str | None) -> None:
    """Print a warning line once per process (bench and label load one model per backend and teacher)."""
    if line:
        from bertdistill.ui import err_console

        err_console.print(f"warning: {line}", soft_wrap=True)


def model_input_names(model, tokenizer=None) -> tuple[str, ...]:
    """The inputs the model reads: its family adapter's (token types only where its config has several),
    or for a family without one what ``model.forward`` names (``bertdistill.families.input_names``)."""
    from bertdistill.families import input_names

    return input_names(model.config, model)


def is_model_dir(path: Path) -> bool:
    """A Hugging Face model directory with PyTorch weights (safetensors, or a .bin)."""
    return (path / "config.json").is_file() and (any(path.glob("*.safetensors")) or any(path.glob("*.bin")))


_READS = "a PyTorch model (a Hugging Face model directory with its weights)"
_MAKE = "give the Hugging Face model directory the export was made from"
register_backend(Backend("torch", load_torch, is_model_dir, "PyTorch", _READS, hidden_states=True, how_to_make=_MAKE))
register_backend(Backend("bf16", partial(load_torch, bf16=True), is_model_dir, "PyTorch", _READS, hidden_states=True,
                         how_to_make=_MAKE))
