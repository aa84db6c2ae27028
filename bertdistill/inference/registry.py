"""The inference backends by name, and the one rule for ``auto``.

Every command (label, predict, bench, export parity) resolves backend names here, and the commands'
``--backend`` choices come from here. A backend is a module named ``*_backend.py`` in this package that
builds a ``Scorer`` and registers itself with ``register_backend``, saying which model folders it
loads; the package imports every such module (``bertdistill.inference.__init__``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bertdistill.errors import UserError
from bertdistill.inference.scorer import Scorer

AUTO = "auto"

Loader = Callable[..., Scorer]
"""(model path, CPU threads or None, trust_remote_code, device=auto|cpu|cuda|cuda:N) → a loaded Scorer."""


@dataclass(frozen=True)
class Backend:
    name: str
    load: Loader
    accepts: Callable[[Path], bool]
    """Whether a folder is one this backend loads (a Hugging Face model directory, an export of ``export``)."""
    kind: str
    """The runtime's name in messages: "PyTorch", "ONNX"."""
    reads: str
    """What it loads, for messages: e.g. "a PyTorch model (...)", "an exported ONNX directory (...)"."""
    hidden_states: bool
    """Can return [CLS] states of chosen layers (``label --hidden-layers``)."""
    how_to_make: str = ""
    """How to make what it loads, for a folder it does not accept (e.g. "export it with bertdistill export")."""
    export: bool = False
    """Loads a folder ``bertdistill export`` wrote (its config and tokenizer, not training weights)."""


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
    """The backend called ``name``; ``auto`` is the first registered backend that loads ``path`` (torch for a
    Hugging Face model directory, onnx for an exported ONNX directory), torch when none does."""
    if name not in backend_names():
        raise UserError(f"unknown backend {name!r}", None, f"use one of: {', '.join(backend_names())}")
    if name == AUTO:
        found = next((b for b in _BACKENDS.values() if path is not None and b.accepts(Path(path))), None)
        return found or _BACKENDS["torch"]
    return _BACKENDS[name]


def load_scorer(path: str, backend: str = AUTO, threads: int | None = None,
                trust_remote_code: bool = False, device: str = "cpu") -> Scorer:
    """Load a Hugging Face directory (torch / bf16) or an exported ONNX directory (onnx / onnx-int8) to run on
    ``device`` (auto | cpu | cuda | cuda:N; see ``bertdistill.devices``)."""
    chosen = get_backend(backend, path)
    able = [b.name for b in _BACKENDS.values() if Path(path).is_dir() and b.accepts(Path(path))]
    if able and chosen.name not in able:  # a folder another backend loads (one none loads: the loader says why)
        raise UserError(f"backend {chosen.name} needs {chosen.reads}, which this folder is not", path,
                        f"use --backend {' or '.join(able)}, or {chosen.how_to_make or 'give ' + chosen.reads}")
    return chosen.load(path, threads, trust_remote_code, device=device)
