"""Teacher features for the loss terms, from one of two sources behind one interface.

* ``StoreTeachers`` (offline): logits and stored [CLS] states of a ``bertdistill label`` store, read
  per batch by row number on the data side of the loop (``fetch``), so the step itself stays cheap.
* ``OnlineTeachers``: the teacher models run in the loop, under ``no_grad``, in the run's precision,
  on the student's device, in every process; they can give whatever a term asks for (all-token states,
  attentions, query/key/value), which would be far too large to store per row. A teacher that tokenizes
  differently from the student (another vocabulary, or inputs the student does not read) gets the same
  rows tokenized its own way, once per run (``teacher_columns``), carried in each batch as
  ``teacher_inputs[name]``; its token positions then differ from the student's, which the terms that
  compare positions refuse (``TeacherInfo.token_aligned``).

Both give ``features(batch) -> {teacher name: Features}`` and ``eval_logits(...)`` for evaluations.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from bertdistill.devices import move_batch
from bertdistill.errors import UserError
from bertdistill.families import input_names
from bertdistill.models import load_config, load_tokenizer, resolve_model
from bertdistill.teachers.store import LabelStore
from bertdistill.teachers.teacher import parse_teacher_specs
from bertdistill.student.features import NOTHING, FeatureRequest, Features, forward_features, use_eager_attention
from bertdistill.training.student_setup import student_source_from_teacher
from bertdistill.training.terms import TeacherInfo


def teacher_mode(requested: str | None, teachers: Sequence[str]) -> str:
    """heads (one student head per teacher, TMKD) by default for several teachers, else avg."""
    return requested or ("heads" if len(teachers) > 1 else "avg")


class StoreTeachers:
    """Teachers read from a label store."""

    kind = "store"

    def __init__(self, store, names: Sequence[str] | None = None):
        self.store = store
        names = list(names or store.teacher_names)
        self.index = [store.teacher_index(t) for t in names]
        self.infos = [TeacherInfo(name=n, num_layers=int(store.teachers[i]["num_layers"]),
                                  hidden_size=int(store.teachers[i]["hidden_size"]), online=False,
                                  stored_layers=store.stored_layers(i)) for n, i in zip(names, self.index)]
        self._logits = [store.logits(i) for i in self.index]
        self._cls_views: dict[str, tuple] = {}

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.infos]

    def prepare(self, requests: dict[str, FeatureRequest], device=None, autocast=None) -> None:
        """Plan the per-batch reads: a one-column view per teacher whose [CLS] states a term needs."""
        for info, t in zip(self.infos, self.index):
            layers = sorted(requests.get(info.name, NOTHING).hidden)
            if layers:
                self.store.require_layers(t, layers)
                have = self.store.stored_layers(t)
                # A one-column view: reading a batch of states then skips the other teachers' columns.
                column = self.store.cls_column(t)
                view = self.store.dataset.select_columns([column])
                self._cls_views[info.name] = (view, column, layers, [have.index(layer) for layer in layers])

    def fetch(self, rows: np.ndarray) -> dict:
        """CPU tensors for a batch of store rows (joined to the batch by the data side of the loop)."""
        rows = np.asarray(rows)
        out = {"teacher_logits": torch.from_numpy(np.stack([lg[rows] for lg in self._logits]))}
        if self._cls_views:
            states = {}
            for name, (view, column, _layers, pick) in self._cls_views.items():
                block = np.asarray(view[rows.tolist()][column], dtype=np.float32)[:, pick, :]
                states[name] = torch.from_numpy(np.ascontiguousarray(block))
            out["teacher_cls"] = states
        return out

    def features(self, batch: dict) -> dict[str, Features]:
        out = {}
        for k, info in enumerate(self.infos):
            cls = {}
            if info.name in self._cls_views:
                block = batch["teacher_cls"][info.name]
                cls = {layer: block[:, j] for j, layer in enumerate(self._cls_views[info.name][2])}
            out[info.name] = Features(logits=batch["teacher_logits"][k], cls=cls, mask=batch.get("attention_mask"))
        return out

    def eval_logits(self, rows: np.ndarray | None = None, store=None, data=None) -> list[np.ndarray]:
        """Teacher logits of eval rows: rows of this store, or all rows of another store of the same teachers."""
        if store is not None:
            return [store.logits(t.name) for t in self.infos]
        return [lg[np.asarray(rows)] for lg in self._logits]

    def describe(self) -> dict:
        return {"source": "label store", "path": str(self.store.path), "teachers": self.names}


TEACHER_COLUMN = "teacher:{name}:{input}"
"""Column of a training set holding a teacher's own tokenization of the rows (``teacher_columns``)."""


def _same_tokens(tokenizer, student_tokenizer) -> bool:
    """Both tokenize text into the same ids: one vocabulary, and the same ids for a sample pair (specials,
    casing and pair template included)."""
    if tokenizer.get_vocab() != student_tokenizer.get_vocab():
        return False
    pair = (["What is the Capital of France?", "ok"], ["Paris is its capital, on the Seine.", "fine"])
    return tokenizer(*pair)["input_ids"] == student_tokenizer(*pair)["input_ids"]


class OnlineTeachers:
    """Teacher models run in the training loop (frozen, no gradients)."""

    kind = "online"

    def __init__(self, specs: Sequence[str], label_names: Sequence[str], student_tokenizer,
                 trust_remote_code: bool = False, student_inputs: Sequence[str] | None = None):
        """``student_inputs``: the inputs the student reads (default: all three); a teacher that reads others
        (token types the student has no use for) or tokenizes differently gets its own inputs."""
        from bertdistill.data.tokenize import MODEL_INPUTS
        from bertdistill.families import input_names, shape_of
        from bertdistill.models import load_classifier, load_config, load_tokenizer, resolve_model, weights_sha256
        from bertdistill.teachers.teacher import parse_teacher_specs

        student_inputs = set(student_inputs or MODEL_INPUTS)
        self.models = []
        self.infos = []
        self.provenance = []
        self.tokenizers: dict[str, object] = {}
        self.input_names: dict[str, tuple[str, ...]] = {}
        self.own_inputs: dict[str, int] = {}
        """Teachers fed their own tokenization: name → its pad token id."""
        for name, path in parse_teacher_specs(list(specs)):
            path = resolve_model(path, "--teacher")
            config = load_config(path, trust_remote_code, option="--teacher")
            model = load_classifier(path, list(label_names), trust_remote_code, option="--teacher").eval()
            model.requires_grad_(False)
            tokenizer = load_tokenizer(path, trust_remote_code, option="--teacher")
            names = input_names(model.config, model)
            aligned = _same_tokens(tokenizer, student_tokenizer)
            if not aligned or not set(names) <= student_inputs:
                self.own_inputs[name] = tokenizer.pad_token_id or 0
            shape = shape_of(config)
            layers = shape.layers if shape else int(config.num_hidden_layers)
            width = shape.hidden if shape else int(config.hidden_size)
            heads = shape.heads if shape else getattr(config, "num_attention_heads", None)
            self.models.append(model)
            self.tokenizers[name] = tokenizer
            self.input_names[name] = names
            self.infos.append(TeacherInfo(name=name, num_layers=layers, hidden_size=width, num_heads=heads,
                                          online=True, token_aligned=aligned))
            self.provenance.append({"name": name, "path": path, "weights_sha256": weights_sha256(path),
                                    "num_layers": layers, "hidden_size": width,
                                    "model_type": getattr(config, "model_type", None),
                                    "tokenization": "the student's" if name not in self.own_inputs else "its own"})
        self.requests: dict[str, FeatureRequest] = {}
        self.device = torch.device("cpu")
        self.autocast = None

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.infos]

    def prepare(self, requests: dict[str, FeatureRequest], device=None, autocast=None) -> None:
        """Move the teachers to the student's device; ``autocast()`` gives the run's precision context."""
        self.requests = dict(requests)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.autocast = autocast
        for info, model in zip(self.infos, self.models):
            if self.requests.get(info.name, NOTHING).attentions:
                use_eager_attention(model)
            model.to(self.device)

    def fetch(self, rows: np.ndarray) -> dict:
        return {}

    def check_max_length(self, max_length: int) -> None:
        """Refuse a length a teacher cannot embed (its own position limit)."""
        from bertdistill.data.tokenize import check_max_length

        for info, model in zip(self.infos, self.models):
            check_max_length(self.tokenizers[info.name], model.config, max_length)

    def teacher_columns(self, task_data, max_length: int):
        """The rows tokenized by each teacher that needs its own inputs, as a ``datasets.Dataset`` of
        ``teacher:NAME:INPUT`` columns (row for row with ``task_data``), computed once per run; None if none."""
        from datasets import concatenate_datasets

        from bertdistill.data.tokenize import encode_task

        parts = []
        for name in self.own_inputs:
            encoded = encode_task(self.tokenizers[name], task_data, max_length, input_names=self.input_names[name])
            keep = [c for c in encoded.column_names if c in self.input_names[name]]
            encoded = encoded.select_columns(keep)
            parts.append(encoded.rename_columns({c: TEACHER_COLUMN.format(name=name, input=c) for c in keep}))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else concatenate_datasets(parts, axis=1)

    @torch.no_grad()
    def features(self, batch: dict, logits_only: bool = False) -> dict[str, Features]:
        out = {}
        with self.autocast() if self.autocast is not None else contextlib.nullcontext():
            for info, model in zip(self.infos, self.models):
                if info.name in self.own_inputs:
                    inputs = batch["teacher_inputs"][info.name]
                else:
                    inputs = {k: batch[k] for k in self.input_names[info.name] if k in batch}
                request = NOTHING if logits_only else self.requests.get(info.name, NOTHING)
                out[info.name] = forward_features(model, inputs, request)[1]
        return out

    def eval_logits(self, rows=None, store=None, data=None, batch_size: int = 64) -> list[np.ndarray]:
        """Teacher logits for every row of an eval ``TrainSet`` (computed once, in length-sorted batches)."""
        from bertdistill.data.tokenize import sorted_batches

        if data is None:
            raise ValueError("online teachers need the eval rows to compute their logits")
        logits = [np.zeros((len(data), 0), dtype=np.float32) for _ in self.models]
        for idx in sorted_batches(data.lengths, batch_size):
            batch = move_batch(data.batch(idx), self.device)
            for k, f in enumerate(self.features(batch, logits_only=True).values()):
                values = f.logits.float().cpu().numpy()
                if logits[k].shape[1] == 0:
                    logits[k] = np.zeros((len(data), values.shape[1]), dtype=np.float32)
                logits[k][idx] = values
        return logits

    def describe(self) -> dict:
        return {"source": "online", "teachers": self.provenance}


def teacher_provenance(teachers) -> list[dict]:
    """Where each teacher of a source came from (its store's record, or the online models' paths and hashes)."""
    if teachers is None:
        return []
    if teachers.kind == "store":
        return teachers.store.teachers
    return teachers.describe()["teachers"]


def open_teachers(labels: str | None, teacher_models: list[str] | None, only: list[str] | None, label_names,
                  student_cfg):
    """The teacher source of a run: a label store (offline), teacher models (online), or None.

    Online teachers must tokenize as the student will: like its source, or like the first teacher when the
    student is to start from it (``student_source_from_teacher``)."""
    if labels and teacher_models:
        raise UserError("both --labels and --teacher given", None,
                        "use --labels STORE (teachers labeled offline) or --teacher NAME=DIR (run in the loop)")
    if labels:
        return StoreTeachers(LabelStore.open(labels), only)
    if teacher_models:
        trust_remote_code = student_cfg.trust_remote_code
        tokenizer_source = student_cfg.source
        specs = [(n, p) for n, p in parse_teacher_specs(list(teacher_models)) if not only or n in only]
        if specs:
            name, path = specs[0]
            path = resolve_model(path, "--teacher")
            layers = getattr(load_config(path, trust_remote_code, option="--teacher"), "num_hidden_layers", None)
            planned = student_source_from_teacher(student_cfg, {"name": name, "path": path, "num_layers": layers})
            if planned is not None and planned[0] is not None:
                tokenizer_source = planned[0]
        student_source = resolve_model(tokenizer_source, "--student-from")
        tokenizer = load_tokenizer(student_source, trust_remote_code, option="--student-from")
        student_inputs = input_names(load_config(student_source, trust_remote_code, option="--student-from"))
        teachers = OnlineTeachers(teacher_models, label_names, tokenizer, trust_remote_code, student_inputs)
        if only:
            unknown = [t for t in only if t not in teachers.names]
            if unknown:
                raise UserError(f"teacher {unknown[0]!r} is not among the --teacher models", "--teachers",
                                f"use one of: {', '.join(teachers.names)}")
        return teachers
    return None


def first_teacher(teachers) -> dict | None:
    """Provenance (``name``, ``path``, ``num_layers``, ...) of the first teacher the run uses."""
    if teachers is None:
        return None
    return next((t for t in teacher_provenance(teachers) if t.get("name") in teachers.names), None)


def own_inputs(teachers) -> dict[str, int]:
    """Teachers fed their own tokenization → pad id (online teachers of another tokenizer)."""
    return dict(getattr(teachers, "own_inputs", None) or {})
