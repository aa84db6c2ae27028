"""What a recipe file holds: typed dataclasses, read and validated like every ``--config`` (``config.py``).

Settings shared by several steps (max length, mixed precision, seeds, task data, output root) are stated
once. Each step's own settings are a partial override of that step's config dataclass (``FinetuneConfig``,
``PretrainConfig``, ``LabelConfig``, ``CorpusConfig``, ``PruneConfig``, ``ExportConfig``, ``BenchConfig``):
the planner lays them over the shared settings and validates the result against the dataclass, so no field
is declared twice and a wrong key or type in an override is the same one-line error as in ``--config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bertdistill.data.sources import DataSpec


@dataclass
class TaskDataSpec:
    """The task's data: train (teachers, label, prune, stage 2), dev (evaluation), test (export parity, bench)."""

    train: DataSpec = field(default_factory=DataSpec)
    dev: DataSpec | None = None
    test: DataSpec | None = None


@dataclass
class TeacherSpec:
    """A teacher: an existing model folder (``path``), or one fine-tuned here (``finetune``: FinetuneConfig
    settings laid over the shared ones, e.g. ``{train: {epochs: 2, seed: 1}}``)."""

    path: str | None = None
    finetune: dict[str, Any] | None = None


@dataclass
class CorpusSpec:
    """The stage-1 corpus: a given file (``file``: JSON lines with query and passage), or one built by
    ``bertdistill corpus`` (``build``: CorpusConfig settings; its sources default to the training data)."""

    file: str | None = None
    build: dict[str, Any] | None = None


@dataclass
class StudentSpec:
    """The student: where its layers come from (a teacher's name or a model folder), how many, its head;
    ``prune``: PruneConfig settings (layers, hidden, heads, ffn, layer_map...) to cut it from ``source`` first."""

    source: str | None = None
    layers: int | None = None
    layer_map: str = "first"
    head: str = "classes"
    dropout: float | None = None
    """Every dropout probability of the student in stage 1 and stage 2 (None: the source's)."""
    prune: dict[str, Any] | None = None


@dataclass
class DeploySpec:
    """ONNX export (ExportConfig settings in ``settings``) of every student and of the listed teachers."""

    teachers: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchSpec:
    """The bench on the test data: every teacher listed and every student, on every backend listed
    (``torch``, ``bf16``, ``onnx``, ``onnx-int8``...; the ONNX ones need ``export``); ``settings``: BenchConfig
    settings (batch_sizes, repeats, threads...)."""

    teachers: list[str] | None = None
    backends: list[str] = field(default_factory=lambda: ["torch"])
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Targets:
    """What the end report judges: the student's share of the teacher's main metric (each at its fastest
    backend) and its speed over the teacher's fastest backend."""

    retention: float | None = None
    speedup: float | None = None


@dataclass
class Recipe:
    """``bertdistill distill --config recipe.yaml``: teachers → corpus → labels → student → stage 1 → stage 2 →
    export → bench, each step's output under ``output``."""

    output: str = ""
    data: TaskDataSpec = field(default_factory=TaskDataSpec)
    teachers: dict[str, TeacherSpec] = field(default_factory=dict)
    max_length: int = 128
    mixed_precision: str | None = None
    seeds: list[int] = field(default_factory=lambda: [42])
    """Student steps (stage 1, stage 2, their export) run once per seed; the report gives mean ± std."""
    label: dict[str, Any] = field(default_factory=dict)
    """LabelConfig settings shared by every label step (backend, batch_size, hidden_layers...)."""
    corpus: CorpusSpec | None = None
    """Stage 1's corpus; none: no stage 1 (MKDM)."""
    student: StudentSpec = field(default_factory=StudentSpec)
    pretrain: dict[str, Any] | None = None
    """PretrainConfig settings of stage 1 (train, distill...); needs ``corpus``."""
    finetune: dict[str, Any] = field(default_factory=dict)
    """FinetuneConfig settings of stage 2 (train, distill, dev_fraction...)."""
    export: DeploySpec | None = None
    bench: BenchSpec | None = None
    targets: Targets = field(default_factory=Targets)
