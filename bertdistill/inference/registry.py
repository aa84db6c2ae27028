"""The inference backends by name, and the one rule for ``auto``.

Every command (label, predict, bench, export parity) resolves backend names here. A backend is a
module that builds a ``Scorer`` and registers itself with ``register_backend``; the package imports
the built-in ones (``bertdistill.inference.__init__``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bertdistill.errors import UserError
from bertdistill.inference.onnx_dir import is_onnx_dir
from bertdistill.inference.scorer import Scorer

AUTO = "auto"

Loader = Callable[..., Scorer]
"""(model path, CPU threads or None, trust_remote_code, device=auto|cpu|cuda|cuda:N) → a loaded Scorer."""


@dataclass(frozen=True)
class Backend:
    name: str
    load: Loader
    reads_onnx: bool
    """Loads an exported ONNX directory rather than a Hugging Face model directory."""
    hidden_states: bool
    """Can return [CLS] states of chosen layers (``label --hidden-layers``)."""


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    if backend.name == AUTO or backend.name in _BACKENDS:
        raise ValueError(f"backend name {backend.name!r} is already taken")
    _BACKENDS[backend.name] = backend


def registered_backends() -> tuple[Backend, ...]:
    return tuple(_BACKENDS.values())


def backend_names() -> tuple[str, ...]:
    """Every name a command accepts: ``auto`` and the registered backends."""
    return (AUTO, *_BACKENDS)


def get_backend(name: str, path: str | Path | None) -> Backend:
    """The backend called ``name``; ``auto`` is onnx for an exported ONNX directory, else torch."""
    if name not in backend_names():
        raise UserError(f"unknown backend {name!r}", None, f"use one of: {', '.join(backend_names())}")
    if name == AUTO:
        name = "onnx" if path is not None and is_onnx_dir(path) else "torch"
    return _BACKENDS[name]


def load_scorer(path: str, backend: str = AUTO, threads: int | None = None,
                trust_remote_code: bool = False, device: str = "cpu") -> Scorer:
    """Load a Hugging Face directory (torch / bf16) or an exported ONNX directory (onnx / onnx-int8) to run on
    ``device`` (auto | cpu | cuda | cuda:N; see ``bertdistill.devices``)."""
    chosen = get_backend(backend, path)
    if not chosen.reads_onnx and is_onnx_dir(path) and not (Path(path) / "model.safetensors").exists():
        raise UserError(f"backend {chosen.name} needs a PyTorch model, but this is an ONNX export", path,
                        "use --backend onnx or onnx-int8, or give the Hugging Face model directory")
    return chosen.load(path, threads, trust_remote_code, device=device)
