"""Teachers as ``label`` sees them: ``--teacher`` specs, their checked description, their outputs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bertdistill.errors import UserError
from bertdistill.inference import Scorer, get_backend, load_scorer, registered_backends, score_rows
from bertdistill.teachers.layers import parse_hidden_layers


@dataclass
class Teacher:
    """A teacher's identity, shape and stored layers (read from its config) and, once loaded, its scorer."""

    name: str
    path: str
    backend: str
    config: Any
    label_names: list[str]
    num_layers: int
    hidden_size: int
    layers: list[int]
    weights_sha256: str | None
    trust_remote_code: bool = False
    scorer: Scorer | None = None

    def load(self, threads: int | None, device: str = "cpu") -> None:
        self.scorer = load_scorer(self.path, self.backend, threads, trust_remote_code=self.trust_remote_code,
                                  device=device)

    def outputs(self, text_a: list[str], text_b: list[str] | None, max_length: int, batch_size: int,
                on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (n, C) float32 and [CLS] states (n, layers, H) float16 (None without layers), in input order."""
        rows = self.scorer.encode(text_a, text_b, max_length)
        return score_rows(self.scorer, rows, batch_size, self.layers, on_batch)

    def info(self) -> dict:
        """Provenance for meta.json (the tokenizer is loaded for it when the scorer is not)."""
        tok = self.scorer.tokenizer if self.scorer is not None else None
        if tok is None:
            from bertdistill.models import load_tokenizer

            with contextlib.suppress(UserError):
                tok = load_tokenizer(self.path, self.trust_remote_code, option="--teacher")
        local = Path(self.path)
        # the absolute directory too: a store read from another working directory still finds its teacher
        # (a student starts from the teacher's layers by default; a relative path alone silently missed it)
        return {"name": self.name, "path": self.path,
                "directory": str(local.resolve()) if local.is_dir() else None, "backend": self.backend,
                "weights_sha256": self.weights_sha256,
                "tokenizer": None if tok is None else {"class": type(tok).__name__, "vocab_size": len(tok),
                                                       "name_or_path": getattr(tok, "name_or_path", None)},
                "model_type": getattr(self.config, "model_type", None), "num_layers": self.num_layers,
                "hidden_size": self.hidden_size, "stored_layers": list(self.layers)}


def parse_teacher_specs(specs: list[str]) -> list[tuple[str, str]]:
    """``PATH`` or ``NAME=PATH`` → (name, path); default names are the directory names, made unique."""
    if not specs:
        raise UserError("no teacher given", None, "pass --teacher PATH (repeat it for several teachers)")
    parsed: list[tuple[str | None, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name and "/" not in name and not Path(spec).exists():
            parsed.append((name.strip(), path.strip()))
        else:
            parsed.append((None, spec))
    explicit = [n for n, _ in parsed if n]
    dup = next((n for n in explicit if explicit.count(n) > 1), None)
    if dup:
        raise UserError(f"teacher name {dup!r} is used twice", None, "give each --teacher NAME=PATH a unique name")
    out, used = [], set(explicit)
    for i, (name, path) in enumerate(parsed):
        if name is None:
            base = Path(path.rstrip("/")).name or f"t{i}"
            name = base if base not in used else f"{base}-{i}"
            if name in used:
                name = f"t{i}"
        used.add(name)
        out.append((name, path))
    return out


def describe_teachers(specs: list[str], backend: str, hidden_layers: str, student_layers: int | None,
                      trust_remote_code: bool = False) -> list[Teacher]:
    """Read each teacher's config (not weights yet): labels, depth, width, stored layers, weight hash."""
    from bertdistill.models import config_label_names, is_classifier, load_config, resolve_model, weights_sha256

    get_backend(backend, None)  # an unknown name fails before any teacher is read
    wants_layers = (hidden_layers or "none").lower() != "none"
    teachers = []
    for name, path in parse_teacher_specs(specs):
        chosen = get_backend(backend, path)
        able = [b.name for b in registered_backends() if Path(path).is_dir() and b.accepts(Path(path))]
        if able and chosen.name not in able:  # a folder another backend loads (one no backend loads: below)
            raise UserError(f"teacher {name!r} is not {chosen.reads} (backend {chosen.name})", path,
                            f"use --backend {' or '.join(able)}, or {chosen.how_to_make}")
        if wants_layers and not chosen.hidden_states:
            able = " or ".join(b.name for b in registered_backends() if b.hidden_states)
            raise UserError(f"[CLS] hidden states cannot be read from an {chosen.kind} teacher (backend {chosen.name})",
                            path,
                            f"use --backend {able} with --hidden-layers, or --hidden-layers none")
        if chosen.export and Path(path).is_dir() and chosen.accepts(Path(path)):
            model_config = load_config(path, option="--teacher")
        else:
            path = resolve_model(path, option="--teacher")
            model_config = load_config(path, trust_remote_code, option="--teacher")
            if not is_classifier(model_config):
                raise UserError(f"teacher {name!r} has no trained classification head (a base encoder)", path,
                                "fine-tune it first with bertdistill finetune, then label with the result")
        num_layers = int(getattr(model_config, "num_hidden_layers", 0) or 0)
        hidden_size = int(getattr(model_config, "hidden_size", 0) or 0)
        layers = parse_hidden_layers(hidden_layers, num_layers, student_layers, f"teacher {name!r}")
        teachers.append(Teacher(name, str(path), chosen.name, model_config, config_label_names(model_config),
                                num_layers, hidden_size, layers,
                                weights_sha256(path) if Path(path).is_dir() else None, trust_remote_code))
    first = teachers[0]
    for t in teachers[1:]:
        if t.label_names != first.label_names:
            raise UserError(f"teachers disagree on labels: {first.name} has {first.label_names}, "
                            f"{t.name} has {t.label_names}", t.path,
                            "label with teachers trained on the same task and label order")
    return teachers
