"""Score a data file with a Hugging Face model or an exported ONNX directory (``bertdistill predict``).

Rows are processed in chunks (tokenized, length-sorted into batches, put back in order) and written
as they are scored to a temporary file that is renamed when complete. Per row: index, the text
columns, the predicted label, one probability per label (names from the model's config) and the
gold label when the data has one.

Ranking data also gets ``<name>.ranked<suffix>``: each query's candidates in ranked order by
P(positive). A query is complete only once all its rows are scored, so the (small) per-row
P(positive) is kept in memory and the ranked file is written at the end, reading the texts again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from bertdistill.data.sources import DataSpec, TaskData, load_task_data
from bertdistill.errors import UserError
from bertdistill.io import atomic_file, check_not_inputs, check_output_file, input_paths, mark_written

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".txt": "tsv"}
RESERVED = ("index", "group", "rank", "prediction", "gold", "score", "probabilities")


@dataclass
class PredictConfig:
    model: str | None = None
    """Hugging Face model directory or exported ONNX directory."""
    data: DataSpec = field(default_factory=DataSpec)
    output: str = ""
    """``.jsonl`` or ``.tsv``."""
    backend: str = "auto"
    """auto (ONNX for an ONNX directory, else torch) or a registered backend (``inference.backend_names()``)."""
    max_length: int = 128
    batch_size: int = 32
    chunk_rows: int = 10_000
    threads: int | None = None
    device: str = "auto"
    """auto | cpu | cuda | cuda:N (bertdistill.devices)."""
    include_text: bool = True
    overwrite: bool = False
    trust_remote_code: bool = False


@dataclass
class PredictSummary:
    output: str
    ranked_output: str | None
    rows: int
    backend: str
    model: str
    label_names: list[str]
    kind: str
    seconds: float
    examples_per_second: float
    metrics: dict[str, Any] | None = None
    dropped: int = 0
    """Rows whose gold label is in the drop list (SNLI's "-"): predicted, gold left empty, not in the metrics."""
    device: str = "cpu"


def _output_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown output type {path.suffix!r}", str(path), "name the output .jsonl or .tsv")
    return fmt


def ranked_path(output: str | os.PathLike) -> Path:
    """Where the per-query ranked output of ``output`` goes: ``preds.jsonl`` → ``preds.ranked.jsonl``."""
    p = Path(output)
    return p.with_name(f"{p.stem}.ranked{p.suffix}")


def config_path(output: str | os.PathLike) -> Path:
    """The config sidecar of ``output``: ``preds.jsonl`` → ``preds.jsonl.config.json``."""
    p = Path(output)
    return p.with_name(p.name + ".config.json")


def _check_output(path: Path, overwrite: bool, inputs: list) -> None:
    check_not_inputs(path, inputs)
    if path.is_dir():
        raise UserError("output is a folder", str(path), "name an output file ending in .jsonl or .tsv")
    check_output_file(path, overwrite)


class _RowWriter:
    """Writes prediction rows as JSON lines or TSV with a header."""

    def __init__(self, fh: TextIO, fmt: str, text_fields: list[tuple[str, str]], label_names: list[str],
                 has_gold: bool, has_group: bool, ranked: bool, score: bool = False):
        self.fh, self.fmt, self.text_fields, self.label_names = fh, fmt, text_fields, label_names
        self.score = score
        """A 1-logit model: its raw score is written too (probabilities are σ(score); ranking is by score)."""
        self.lead = (["group", "rank"] if ranked else ["group"] if has_group else []) + ["index"]
        self.has_gold = has_gold
        if fmt == "tsv":
            header = (self.lead + [name for name, _ in text_fields] + ["prediction"]
                      + [f"p_{n}" for n in label_names] + (["score"] if score else []) + (["gold"] if has_gold else []))
            fh.write("\t".join(header) + "\n")

    def write(self, lead: dict[str, Any], texts: list[str], probs: np.ndarray, gold: str | None,
              score: float | None = None) -> None:
        prediction = self.label_names[int(probs.argmax())]
        if self.fmt == "jsonl":
            row = {k: lead[k] for k in self.lead}
            row.update({name: text for (name, _), text in zip(self.text_fields, texts)})
            row["prediction"] = prediction
            row["probabilities"] = {n: round(float(p), 6) for n, p in zip(self.label_names, probs)}
            if score is not None:
                row["score"] = round(float(score), 6)
            if self.has_gold:
                row["gold"] = gold
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            cells = [str(lead[k]) for k in self.lead] + [_tsv_cell(t) for t in texts] + [prediction]
            cells += [f"{float(p):.6f}" for p in probs]
            if self.score:
                cells.append(f"{float(score):.6f}")
            if self.has_gold:
                cells.append(gold or "")
            self.fh.write("\t".join(cells) + "\n")


def _tsv_cell(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _text_fields(data: TaskData, include_text: bool) -> list[tuple[str, str]]:
    """(output name, canonical column): the user's column names, canonical ones if they clash."""
    if not include_text:
        return []
    fields = []
    for canonical in ("text_a", "text_b"):
        if canonical not in data.dataset.column_names:
            continue
        name = data.column_map.get(canonical, canonical)
        if name in RESERVED or name.startswith("p_") or name in [f for f, _ in fields]:
            name = canonical
        fields.append((name, canonical))
    return fields


def _label_names_for(scorer, data_spec: DataSpec) -> tuple[TaskData, list[str]]:
    """Load the data with the model's label order, so gold ids and logits columns agree."""
    from bertdistill.models import is_score_config, task_label_names

    if is_score_config(scorer.config):  # one relevance logit: the task's labels are kept beside it, if known
        known = task_label_names(scorer.config)
        data = load_task_data(data_spec, label_names=known)
        names = known or (list(data.label_names) if data.has_labels else ["0", "1"])
        if len(names) != 2:
            raise UserError(f"a score model (1 logit) ranks binary data, the data has {len(names)} labels",
                            data.spec.describe(), "use a model with one logit per label for this task")
        return data, names
    model_names = list(scorer.label_names)
    generic = all(n == f"LABEL_{i}" for i, n in enumerate(model_names))
    # Rows with a dropped label (SNLI's "-") are kept, unlabeled: every input row gets a prediction.
    data = load_task_data(data_spec, label_names=None if generic else model_names, keep_dropped=True)
    names = model_names
    if generic and data.has_labels and len(data.label_names) == len(model_names):
        names = list(data.label_names)  # an unnamed head: the data's own label names are the best guess
    if data.has_labels and len(data.label_names) > len(model_names):
        raise UserError(f"the data has {len(data.label_names)} labels but the model predicts {len(model_names)}",
                        data.spec.describe(), "use a model trained on this task, or pass --unlabeled")
    return data, names


def predict_file(config: PredictConfig, on_rows: Callable[[int], None] | None = None) -> PredictSummary:
    """Score ``config.data`` and write the predictions (and ranked output for ranking data)."""
    from bertdistill.data.tokenize import check_max_length
    from bertdistill.inference import is_onnx_dir, load_scorer
    from bertdistill.config import save_config
    from bertdistill.metrics import compute_metrics, positive_label_index, probabilities, relevance_scores
    from bertdistill.models import is_score_config, resolve_model

    if not config.output:
        raise UserError("no output file given", None, "pass --output preds.jsonl (or .tsv)")
    output = Path(config.output)
    fmt = _output_format(output)
    inputs = input_paths(config.model, config.data.path)
    _check_output(output, config.overwrite, inputs)
    _check_output(config_path(output), config.overwrite, inputs)
    for value, option in ((config.batch_size, "--batch-size"), (config.chunk_rows, "--chunk-rows")):
        if value < 1:
            raise UserError(f"{option} {value} must be at least 1", None, f"use {option} 1 or more")
    from bertdistill.devices import parse_device

    parse_device(config.device)
    model = config.model if config.model and is_onnx_dir(config.model) else resolve_model(config.model)
    start = time.perf_counter()
    scorer = load_scorer(model, config.backend, threads=config.threads, trust_remote_code=config.trust_remote_code,
                         device=config.device)
    check_max_length(scorer.tokenizer, scorer.config, config.max_length)
    from bertdistill.models import is_classifier

    if not is_classifier(scorer.config):
        raise UserError("is a base encoder without a trained classifier head, so predictions would be random",
                        str(model), "pass --model a model trained with bertdistill finetune, or its ONNX export")
    data, label_names = _label_names_for(scorer, config.data)
    ranked = data.kind == "ranking" and data.has_groups
    if ranked:
        _check_output(ranked_path(output), config.overwrite, inputs)
    text_fields = _text_fields(data, config.include_text)
    gold_names = data.label_names if data.has_labels else None

    n = data.num_rows
    logits_all: np.ndarray | None = None
    score_model = is_score_config(scorer.config)
    width = 1 if score_model else len(label_names)
    with atomic_file(output) as fh:
        writer = _RowWriter(fh, fmt, text_fields, label_names, data.has_labels, data.has_groups, ranked=False,
                            score=score_model)
        for begin in range(0, n, config.chunk_rows):
            end = min(n, begin + config.chunk_rows)
            chunk = data.subset(range(begin, end))
            logits = _chunk_logits(scorer, chunk, config)
            if logits.shape[1] != width:
                raise UserError(f"the model returns {logits.shape[1]} logits but names {width} labels",
                                str(model), "check id2label in the model's config.json")
            if logits_all is None:
                logits_all = np.zeros((n, logits.shape[1]), dtype=np.float32)
            logits_all[begin:end] = logits
            _write_rows(writer, chunk, range(begin, end), text_fields, probabilities(logits, label_names), gold_names,
                        logits[:, 0] if score_model else None)
            if on_rows:
                on_rows(end - begin)
    assert logits_all is not None  # load_task_data refuses empty data
    probs_all = probabilities(logits_all, label_names)

    ranked_out = None
    if ranked:
        ranked_out = ranked_path(output)
        rank_by = relevance_scores(logits_all, label_names) if score_model else \
            probs_all[:, positive_label_index(label_names)]
        _write_ranked(ranked_out, fmt, data, text_fields, label_names, probs_all, rank_by, gold_names,
                      config.chunk_rows, logits_all[:, 0] if score_model else None)

    metrics = None
    if data.has_labels:
        gold = data.column("label")
        keep = np.array([g is not None for g in gold], dtype=bool)
        groups = data.column("group") if data.has_groups else None
        if keep.any():
            metrics = compute_metrics(data.kind, label_names, [g for g in gold if g is not None], logits_all[keep],
                                      [g for g, k in zip(groups, keep) if k] if groups is not None else None)
    seconds = time.perf_counter() - start
    summary = PredictSummary(output=str(output), ranked_output=str(ranked_out) if ranked_out else None, rows=n,
                             backend=scorer.backend, model=str(model), label_names=label_names, kind=data.kind,
                             seconds=round(seconds, 2), examples_per_second=round(n / max(seconds, 1e-9), 1),
                             metrics=metrics, dropped=data.dropped, device=scorer.device)
    save_config(config, config_path(output))
    for path in (output, ranked_out, config_path(output)):
        if path is not None:
            mark_written(path, "predict")
    return summary


def _chunk_logits(scorer, chunk: TaskData, config: PredictConfig) -> np.ndarray:
    from bertdistill.inference import predict_logits

    return predict_logits(scorer, chunk, config.max_length, config.batch_size)


def _write_rows(writer: _RowWriter, chunk: TaskData, indices: range, text_fields: list[tuple[str, str]],
                probs: np.ndarray, gold_names: list[str] | None, scores: np.ndarray | None = None) -> None:
    columns = {canonical: chunk.column(canonical) for _, canonical in text_fields}
    groups = chunk.column("group") if chunk.has_groups else None
    labels = chunk.column("label") if gold_names else None
    for j, index in enumerate(indices):
        lead = {"index": index}
        if groups is not None:
            lead["group"] = groups[j]
        texts = [columns[c][j] for _, c in text_fields]
        writer.write(lead, texts, probs[j], _gold(gold_names, labels, j), None if scores is None else scores[j])


def _gold(gold_names: list[str] | None, labels: list | None, j: int) -> str | None:
    """Row ``j``'s gold label name; None (written empty) without labels or for a dropped label."""
    if labels is None or labels[j] is None:
        return None
    return gold_names[labels[j]]


def _write_ranked(path: Path, fmt: str, data: TaskData, text_fields: list[tuple[str, str]],
                  label_names: list[str], probs: np.ndarray, rank_by: np.ndarray, gold_names: list[str] | None,
                  chunk_rows: int, scores: np.ndarray | None = None) -> None:
    """Queries in order of first appearance; candidates by ``rank_by`` (P(positive), or a score model's score),
    ties in input order."""
    groups = data.column("group")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    order: list[int] = []
    ranks: list[int] = []
    for rows in members.values():
        ranked_rows = sorted(rows, key=lambda i: -rank_by[i])  # stable: ties keep input order
        order.extend(ranked_rows)
        ranks.extend(range(1, len(ranked_rows) + 1))
    with atomic_file(path) as fh:
        writer = _RowWriter(fh, fmt, text_fields, label_names, gold_names is not None, True, ranked=True,
                            score=scores is not None)
        for begin in range(0, len(order), chunk_rows):
            idx = order[begin:begin + chunk_rows]
            chunk = data.subset(idx)
            columns = {canonical: chunk.column(canonical) for _, canonical in text_fields}
            labels = chunk.column("label") if gold_names else None
            for j, i in enumerate(idx):
                lead = {"group": groups[i], "rank": ranks[begin + j], "index": i}
                texts = [columns[c][j] for _, c in text_fields]
                writer.write(lead, texts, probs[i], _gold(gold_names, labels, j),
                             None if scores is None else scores[i])


def predict(config: PredictConfig) -> Path:
    """Score a file; returns the path of the predictions (see ``predict_file`` for the summary)."""
    return Path(predict_file(config).output)
