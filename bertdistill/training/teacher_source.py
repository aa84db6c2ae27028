"""Teacher features for the loss terms, from one of two sources behind one interface.

* ``StoreTeachers`` (offline): logits and stored [CLS] states of a ``bertdistill label`` store, read
  per batch by row number on the data side of the loop (``fetch``), so the step itself stays cheap.
* ``OnlineTeachers``: the teacher models run in the loop, under ``no_grad``, in the run's precision,
  on the student's device, in every process; they can give whatever a term asks for (all-token states,
  attentions, query/key/value), which would be far too large to store per row.

Both give ``features(batch) -> {teacher name: Features}`` and ``eval_logits(...)`` for evaluations.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from bertdistill.errors import UserError
from bertdistill.student.features import NOTHING, FeatureRequest, Features, forward_features, use_eager_attention
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


class OnlineTeachers:
    """Teacher models run in the training loop (frozen, no gradients)."""

    kind = "online"

    def __init__(self, specs: Sequence[str], label_names: Sequence[str], student_tokenizer,
                 trust_remote_code: bool = False):
        from bertdistill.models import load_classifier, load_config, load_tokenizer, weights_sha256
        from bertdistill.teachers.teacher import parse_teacher_specs

        self.models = []
        self.infos = []
        self.provenance = []
        student_vocab = student_tokenizer.get_vocab()
        for name, path in parse_teacher_specs(list(specs)):
            config = load_config(path, trust_remote_code, option="--teacher")
            model = load_classifier(path, list(label_names), trust_remote_code, option="--teacher").eval()
            model.requires_grad_(False)
            tokenizer = load_tokenizer(path, trust_remote_code, option="--teacher")
            if tokenizer.get_vocab() != student_vocab:
                raise UserError(f"teacher {name!r} tokenizes differently from the student", path,
                                "run such teachers offline (bertdistill label, then --labels STORE), where "
                                "each teacher uses its own tokenizer")
            self.models.append(model)
            self.infos.append(TeacherInfo(name=name, num_layers=config.num_hidden_layers,
                                          hidden_size=config.hidden_size,
                                          num_heads=getattr(config, "num_attention_heads", None), online=True))
            self.provenance.append({"name": name, "path": path, "weights_sha256": weights_sha256(path),
                                    "num_layers": config.num_hidden_layers, "hidden_size": config.hidden_size})
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

    @torch.no_grad()
    def features(self, batch: dict, logits_only: bool = False) -> dict[str, Features]:
        from bertdistill.data.tokenize import MODEL_INPUTS

        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        out = {}
        with self.autocast() if self.autocast is not None else contextlib.nullcontext():
            for info, model in zip(self.infos, self.models):
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
            batch = {k: v.to(self.device) for k, v in data.batch(idx).items() if isinstance(v, torch.Tensor)}
            for k, f in enumerate(self.features(batch, logits_only=True).values()):
                values = f.logits.float().cpu().numpy()
                if logits[k].shape[1] == 0:
                    logits[k] = np.zeros((len(data), values.shape[1]), dtype=np.float32)
                logits[k][idx] = values
        return logits

    def describe(self) -> dict:
        return {"source": "online", "teachers": self.provenance}
