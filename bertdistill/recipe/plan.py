"""A recipe → an ordered list of steps, each with its typed config, its output and the equivalent command.

Every step config is built the same way: the config dataclass's defaults, then the settings the recipe
states once (data, max length, mixed precision, seed, the outputs of earlier steps), then the step's own
settings from the recipe, validated by ``config.config_from_dict`` (one line naming a wrong key or type).
A step's own setting that contradicts a shared one (another max length, say) is refused: the recipe
states it once. Nothing runs here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertdistill.config import config_from_dict, config_to_dict, merge_dicts
from bertdistill.devices import AUTO, MIXED_PRECISION, native_bf16, training_device
from bertdistill.errors import UserError
from bertdistill.packaged import PACKAGED
from bertdistill.recipe.spec import Recipe
from bertdistill.training.config import STAGE1_TRAIN_DEFAULTS

#: Step kind → (the command that runs it alone, its config dataclass (module, name)).
COMMANDS = {
    "finetune": ("finetune", "bertdistill.training.config", "FinetuneConfig"),
    "pretrain": ("pretrain-student", "bertdistill.training.config", "PretrainConfig"),
    "label": ("label", "bertdistill.teachers.label", "LabelConfig"),
    "corpus": ("corpus", "bertdistill.data.corpus_spec", "CorpusConfig"),
    "prune": ("prune", "bertdistill.prune.config", "PruneConfig"),
    "export": ("export", "bertdistill.export.exporter", "ExportConfig"),
    "bench": ("bench", "bertdistill.bench.run", "BenchConfig"),
}
#: Settings that only say how a step shows or replaces its output: no part of its fingerprint.
VOLATILE = ("overwrite", "resume", "quiet", "show_progress")
#: Backend → suffix of the bench row name (the demo's names).
ROW_SUFFIX = {"torch": "", "bf16": "-bf16", "onnx": "-onnx", "onnx-int8": "-int8"}
STEPS_DIR = ".distill"
"""Folder under the recipe's output holding each step's config file (the argument of its --config)."""


def config_class(kind: str) -> type:
    import importlib

    _, module, name = COMMANDS[kind]
    return getattr(importlib.import_module(module), name)


@dataclass
class Step:
    name: str
    """Unique, readable: ``teacher t1``, ``corpus``, ``label corpus``, ``prune``, ``stage 1 seed 1``..."""
    kind: str
    config: Any
    output: Path
    needs: list[str] = field(default_factory=list)
    """Earlier steps whose outputs this one reads (a change there reruns this one)."""
    seed: int | None = None
    role: str = ""
    """teacher, student, student-export, teacher-export, or "" (corpus, labels, prune, bench)."""
    extra_args: list[str] = field(default_factory=list)
    """Options of the single command that are no part of its config (bench's --json, --markdown, --plot)."""
    cards: dict[str, str] = field(default_factory=dict)
    """Bench only: bench row → the model folder made by the recipe (a trained teacher, a student) whose
    model card gets that row's measured speed."""
    fingerprint: str = ""

    @property
    def command(self) -> str:
        return COMMANDS[self.kind][0]

    @property
    def slug(self) -> str:
        return self.name.replace(" ", "-")

    def config_file(self, root: Path) -> Path:
        return root / STEPS_DIR / f"{self.slug}.json"

    def command_line(self, root: Path) -> str:
        import shlex

        return shlex.join(["bertdistill", self.command, "--config", str(self.config_file(root)), *self.extra_args])

    def is_file_output(self) -> bool:
        return self.kind in ("corpus", "bench")


@dataclass
class Plan:
    recipe: Recipe
    root: Path
    steps: list[Step]
    teachers: dict[str, str]
    """Teacher name → model folder."""

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def fingerprint(config: Any, upstream: list[str]) -> str:
    from bertdistill.training.config import without_later_defaults

    data = {k: v for k, v in without_later_defaults(config_to_dict(config)).items() if k not in VOLATILE}
    text = json.dumps({"config": data, "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _disagree(override: dict | None, path: str, value: Any, where: str, shared: str) -> None:
    """Refuse a step setting at dotted ``path`` of ``override`` that differs from the shared ``value``."""
    node: Any = override or {}
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if node != value:
        raise UserError(f"{where}.{path} is {node!r} but the recipe's {shared} is {value!r}", where,
                        f"state {shared} once, at the top of the recipe (drop {path} here)")


def _build(kind: str, base: dict, override: dict | None, where: str) -> Any:
    cls = config_class(kind)
    if override is not None and not isinstance(override, dict):
        raise UserError("expected a mapping of settings", where, "write the step's settings as key: value lines")
    merged = merge_dicts(merge_dicts(config_to_dict(cls()), base), override or {})
    return config_from_dict(cls, merged, where)


def _exists(path: str | None, where: str, packaged_ok: bool = False) -> None:
    if path is None:
        return
    if packaged_ok and path in PACKAGED:
        return
    if not Path(path).exists():
        raise UserError("path does not exist", f"{where}: {path}", "fix the path in the recipe")


def _source_exists(text: str, where: str) -> None:
    """A corpus source FILE, FILE:COLUMN or FILE:N exists (the part before the last colon when the whole does not)."""
    if Path(text).exists():
        return
    head = text.rsplit(":", 1)[0] if ":" in text else text
    _exists(head, where)


def _spec(spec: Any) -> dict | None:
    return None if spec is None else config_to_dict(spec)


def make_plan(recipe: Recipe, where: str = "recipe") -> Plan:
    """Every step of ``recipe`` in order, validated; raises UserError before anything runs."""
    if not recipe.output:
        raise UserError("the recipe names no output folder", where, "add output: runs/NAME")
    root = Path(recipe.output)
    L, mp = recipe.max_length, recipe.mixed_precision
    if mp is not None and mp not in MIXED_PRECISION:
        raise UserError(f"unknown mixed_precision {mp!r}", where, f"use one of: {', '.join(MIXED_PRECISION)}")
    if mp == AUTO and training_device().type == "cpu" and not native_bf16("cpu"):
        recipe = _without_emulated_bf16(recipe)
    if not recipe.seeds:
        raise UserError("seeds is empty", where, "give at least one seed, e.g. seeds: [1]")
    if len(set(recipe.seeds)) < len(recipe.seeds):
        raise UserError(f"seeds {recipe.seeds} repeat a seed", where, "list each seed once")
    data = recipe.data
    if not (data.train.path or data.train.dataset):
        raise UserError("the recipe has no training data", f"{where}: data.train", "add data: {train: {path: FILE}}")
    for name in ("train", "dev", "test"):
        spec = getattr(data, name)
        _exists(spec.path if spec is not None else None, f"{where}: data.{name}.path")
    train, dev, test = _spec(data.train), _spec(data.dev), _spec(data.test)
    if not recipe.teachers:
        raise UserError("the recipe defines no teacher", f"{where}: teachers",
                        "add teachers: {t1: {path: DIR}} or {t1: {finetune: {...}}}")
    steps: list[Step] = []
    teachers: dict[str, str] = {}
    shared_train = {"max_length": L, **({"mixed_precision": mp} if mp is not None else {})}

    def train_checks(override: dict | None, at: str) -> None:
        _disagree(override, "train.max_length", L, at, "max_length")
        if mp is not None:
            _disagree(override, "train.mixed_precision", mp, at, "mixed_precision")

    # 1. Teachers: given, or fine-tuned here.
    for name, spec in recipe.teachers.items():
        at = f"{where}: teachers.{name}"
        if (spec.path is None) == (spec.finetune is None):
            raise UserError("a teacher is either a model folder (path) or trained here (finetune)", at,
                            "give exactly one of path: DIR and finetune: {...}")
        if spec.path is not None:
            _exists(spec.path, at + ".path", packaged_ok=True)
            teachers[name] = spec.path
            continue
        train_checks(spec.finetune, at + ".finetune")
        out = root / "teachers" / name
        config = _build("finetune", {"train_data": train, "eval_data": dev, "output": str(out),
                                     "train": shared_train}, spec.finetune, at + ".finetune")
        _exists(config.student.source, at + ".finetune.student.source", packaged_ok=True)
        teachers[name] = str(out)
        steps.append(Step(f"teacher {name}", "finetune", config, out, role="teacher"))
    teacher_specs = [f"{name}={path}" for name, path in teachers.items()]
    teacher_steps = [s.name for s in steps]

    def teacher_of(text: str | None, at: str) -> tuple[str | None, list[str]]:
        """A teacher's name → its folder (and its step); anything else must exist as a path."""
        if text is None:
            return None, []
        if text in teachers:
            return teachers[text], [f"teacher {text}"] if f"teacher {text}" in teacher_steps else []
        if "/" not in text and "." not in text and text not in PACKAGED:
            raise UserError(f"teacher {text!r} is not defined", at,
                            f"use one of the recipe's teachers: {', '.join(teachers)} (or a model folder)")
        _exists(text, at, packaged_ok=True)
        return text, []

    label_base = {"teachers": teacher_specs, "max_length": L, "quiet": True}
    _disagree(recipe.label, "max_length", L, f"{where}: label", "max_length")
    for key in ("teachers", "data", "output"):
        if key in (recipe.label or {}):
            raise UserError(f"label.{key} is set by the recipe", f"{where}: label",
                            "drop it: label steps use the recipe's teachers, data and output folder")

    # 2. Stage-1 corpus and its labels.
    corpus_path = labels_corpus = None
    corpus_needs: list[str] = []
    if recipe.pretrain is not None and recipe.corpus is None:
        raise UserError("pretrain (stage 1) needs a corpus", f"{where}: pretrain",
                        "add corpus: {file: FILE} or corpus: {build: {...}}, or drop pretrain")
    if recipe.corpus is not None and recipe.pretrain is None:
        raise UserError("a corpus is given but no stage 1 uses it", f"{where}: corpus",
                        "add pretrain: {...} (stage 1 settings), or drop corpus")
    if recipe.corpus is not None:
        at = f"{where}: corpus"
        if (recipe.corpus.file is None) == (recipe.corpus.build is None):
            raise UserError("a corpus is either a file (file) or built here (build)", at,
                            "give exactly one of file: FILE and build: {...}")
        if recipe.corpus.file is not None:
            _exists(recipe.corpus.file, at + ".file")
            corpus_path = recipe.corpus.file
        else:
            out = root / "corpus.jsonl"
            config = _build("corpus", {"sources": [_unlabeled(train)], "output": str(out), "show_progress": False},
                            recipe.corpus.build, at + ".build")
            for key in ("queries", "passages", "exclude"):
                for text in getattr(config, key):
                    _source_exists(text, f"{at}.build.{key}")
            for spec in config.sources:
                _exists(spec.path, f"{at}.build.sources")
            corpus_path = str(out)
            steps.append(Step("corpus", "corpus", config, out))
            corpus_needs = ["corpus"]
        out = root / "labels" / "corpus"
        config = _build("label", {**label_base, "data": {"path": corpus_path, "unlabeled": True},
                                  "output": str(out)}, recipe.label, f"{where}: label")
        steps.append(Step("label corpus", "label", config, out, needs=teacher_steps + corpus_needs))
        labels_corpus = str(out)
    out = root / "labels" / "train"
    config = _build("label", {**label_base, "data": train, "output": str(out)}, recipe.label, f"{where}: label")
    steps.append(Step("label train", "label", config, out, needs=list(teacher_steps)))
    labels_train = str(out)

    # 3. The student's starting point: a teacher, a folder, or pruned from one.
    student = recipe.student
    source, source_needs = teacher_of(student.source, f"{where}: student.source")
    layers = student.layers
    if student.prune is not None:
        at = f"{where}: student.prune"
        _disagree(student.prune, "max_length", L, at, "max_length")
        prune_source = source or (next(iter(teachers.values())))
        prune_needs = source_needs or ([teacher_steps[0]] if source is None and teacher_steps else [])
        out = root / "student-pruned"
        config = _build("prune", {"model": prune_source, "data": train, "output": str(out), "max_length": L,
                                  "quiet": True}, student.prune, at)
        _exists(config.data.path, at + ".data.path")
        steps.append(Step("prune", "prune", config, out, needs=prune_needs))
        source, source_needs, layers = str(out), ["prune"], None

    # 4. Per seed: stage 1, stage 2, export.
    several = len(recipe.seeds) > 1
    student_steps: list[Step] = []
    for seed in recipe.seeds:
        base = root / f"seed{seed}" if several else root
        tag = f" seed {seed}" if several else ""
        shape = {"source": source, "layers": layers, "layer_map": student.layer_map, "head": student.head,
                 "dropout": student.dropout}
        needs = list(source_needs)
        train_seed = {**shared_train, "seed": seed}
        if recipe.pretrain is not None:
            at = f"{where}: pretrain"
            train_checks(recipe.pretrain, at)
            _disagree(recipe.pretrain, "train.seed", seed, at, "seed (from seeds)")
            out = base / "student-stage1"
            config = _build("pretrain", {"train_data": {"path": corpus_path, "unlabeled": True},
                                         "labels": labels_corpus, "output": str(out), "student": shape,
                                         "train": {**STAGE1_TRAIN_DEFAULTS, **train_seed}},
                            recipe.pretrain, at)
            steps.append(Step(f"stage 1{tag}", "pretrain", config, out, needs=needs + ["label corpus"], seed=seed,
                              role="stage1"))
            shape = {"source": str(out), "layers": None, "layer_map": "first", "head": student.head,
                     "dropout": student.dropout}
            needs = [f"stage 1{tag}"]
        at = f"{where}: finetune"
        train_checks(recipe.finetune, at)
        _disagree(recipe.finetune, "train.seed", seed, at, "seed (from seeds)")
        out = base / "student"
        config = _build("finetune", {"train_data": train, "eval_data": dev, "labels": labels_train,
                                     "output": str(out), "student": shape, "train": train_seed},
                        recipe.finetune, at)
        step = Step(f"stage 2{tag}", "finetune", config, out, needs=needs + ["label train"], seed=seed, role="student")
        steps.append(step)
        student_steps.append(step)
    for step in steps:
        if step.kind in ("finetune", "pretrain"):
            check = copy.deepcopy(step.config)
            check.distill.check()
            unknown = [t for t in check.distill.teachers or [] if t not in teachers] if step.role != "teacher" else []
            if unknown:
                raise UserError(f"teacher {unknown[0]!r} is not defined", f"{where}: {step.kind}.distill.teachers",
                                f"use some of the recipe's teachers: {', '.join(teachers)}")

    # 5. Export and bench.
    exported: dict[str, str] = {}
    if recipe.export is not None:
        at = f"{where}: export.settings"
        _disagree(recipe.export.settings, "max_length", L, at, "max_length")
        for name in recipe.export.teachers:
            path, needs = teacher_of(name, f"{where}: export.teachers")
            out = root / "onnx" / name
            config = _build("export", {"model": path, "data": _unlabeled(test), "output": str(out), "max_length": L},
                            recipe.export.settings, at)
            steps.append(Step(f"export {name}", "export", config, out, needs=needs, role="teacher-export"))
            exported[name] = str(out)
        for step in student_steps:
            tag = f" seed {step.seed}" if several else ""
            out = root / "onnx" / (f"student-seed{step.seed}" if several else "student")
            config = _build("export", {"model": str(step.output), "data": _unlabeled(test), "output": str(out),
                                       "max_length": L}, recipe.export.settings, at)
            steps.append(Step(f"export student{tag}", "export", config, out, needs=[step.name], seed=step.seed,
                              role="student-export"))
            exported[f"student{tag}"] = str(out)
    if recipe.bench is not None:
        steps.append(_bench_step(recipe, root, test, teachers, teacher_of, exported, student_steps, several, where))
    _fingerprints(steps)
    return Plan(recipe=recipe, root=root, steps=steps, teachers=teachers)


def _without_emulated_bf16(recipe: Recipe) -> Recipe:
    """``mixed_precision: auto`` reaches the recipe's bf16 inference too: on a CPU that emulates bf16 (several
    times slower than fp32, bertdistill.devices) the teachers label in fp32 and the bench leaves out its bf16
    rows, which cannot be the fastest there."""
    recipe = copy.deepcopy(recipe)
    if (recipe.label or {}).get("backend") == "bf16":
        recipe.label["backend"] = "torch"
    if recipe.bench is not None and set(recipe.bench.backends) - {"bf16"}:  # a bench of bf16 alone stays
        recipe.bench.backends = [b for b in recipe.bench.backends if b != "bf16"]
    return recipe


def _unlabeled(spec: dict | None) -> dict | None:
    return None if spec is None else {**spec, "unlabeled": True}


def _bench_step(recipe, root, test, teachers, teacher_of, exported, student_steps, several, where) -> Step:
    from bertdistill.inference.registry import registered_backends

    at = f"{where}: bench"
    bench = recipe.bench
    if test is None:
        raise UserError("the bench runs on the test data, which the recipe does not give", at,
                        "add data: {test: {path: FILE}}, or drop bench")
    known = {b.name: b for b in registered_backends()}
    for backend in bench.backends:
        if backend not in known:
            raise UserError(f"unknown backend {backend!r}", f"{at}.backends", f"use some of: {', '.join(known)}")
    _disagree(bench.settings, "max_length", recipe.max_length, at + ".settings", "max_length")
    if "models" in bench.settings or "data" in bench.settings:
        raise UserError("bench.settings.models and .data are set by the recipe", at,
                        "list teachers and backends under bench instead; the data is data.test")
    models, needs, cards = [], [], {}
    names = bench.teachers if bench.teachers is not None else list(teachers)[:1]
    rows = [(name, *teacher_of(name, f"{at}.teachers"), name) for name in names]
    rows += [(f"student-seed{s.seed}" if several else "student", str(s.output), [s.name],
              f"student seed {s.seed}" if several else "student") for s in student_steps]
    for row, path, row_needs, export_key in rows:
        made_here = bool(row_needs)  # a trained teacher or a student, not a folder the recipe was given
        for backend in bench.backends:
            folder = path
            if known[backend].export:
                if export_key not in exported:
                    raise UserError(f"backend {backend} needs {row} exported to ONNX", f"{at}.backends",
                                    f"add export: {{teachers: [{row}]}}" if not row.startswith("student")
                                    else "add export: {settings: {int8: true}}")
                folder = exported[export_key]
                row_needs = row_needs + [f"export {export_key}"]
            name = f"{row}{ROW_SUFFIX.get(backend, '-' + backend)}"
            models.append(f"{name}={folder}" + ("" if backend == "torch" else f":{backend}"))
            if made_here:
                cards[name] = path
        needs += row_needs
    config = _build("bench", {"models": models, "data": test, "max_length": recipe.max_length}, bench.settings,
                    at + ".settings")
    out = root / "bench.json"
    extra = ["--json", str(out), "--markdown", str(root / "bench.md"), "--overwrite"]
    if _has_matplotlib():
        extra[-1:-1] = ["--plot", str(root / "bench.png")]
    return Step("bench", "bench", config, out, needs=list(dict.fromkeys(needs)), extra_args=extra, cards=cards)


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _fingerprints(steps: list[Step]) -> None:
    by_name = {}
    for step in steps:
        step.fingerprint = fingerprint(step.config, [by_name[n] for n in step.needs if n in by_name])
        by_name[step.name] = step.fingerprint
