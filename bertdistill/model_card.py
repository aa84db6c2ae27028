"""Hugging Face model cards (``README.md`` with YAML front matter) for every model folder bertdistill writes.

``write_model_card(folder)`` reads what the folder already holds (``training_record.json`` of finetune and
pretrain-student, ``prune_report.json`` of prune) and writes ``README.md``: front matter (base_model, tags,
datasets with their content fingerprints, metrics) and a body naming the teachers, the data, the method and
its loss terms, the metrics and the command or recipe that made the model. It is called inside the
temporary folder, before the rename that publishes it, so a finished folder always carries its card.

``write_speed(folder, rows, ...)``: a bench that timed the model adds (or replaces) its card's
"Inference speed" section and ``bertdistill.speed`` in the front matter — examples/s per backend and batch
size, the machine and the date — through a temporary file renamed over the card (``distill`` calls it
from its bench step for the models the recipe made).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CARD_FILE = "README.md"
SPEED_BEGIN, SPEED_END = "<!-- bertdistill:speed -->", "<!-- /bertdistill:speed -->"
"""Around the card's speed section, so a later bench replaces it."""

_origin: list[str] = []
"""What made the models written now (``distill`` sets it to its recipe and step); empty: the single command."""


@contextmanager
def made_by(text: str) -> Iterator[None]:
    """Within the block, cards name ``text`` (e.g. the recipe and its step) as what made the model."""
    _origin.append(text)
    try:
        yield
    finally:
        _origin.pop()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()


def _number(value: Any) -> Any:
    return round(float(value), 6) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": k, "value": _number(v)} for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _training_card(record: dict[str, Any], config_file: str) -> tuple[dict, list[str]]:
    config = record.get("config") or {}
    command = record.get("command") or "finetune"
    student = config.get("student") or {}
    source = student.get("source") or (record.get("student") or {}).get("source")
    teachers = record.get("teachers") or []
    data = record.get("data") or {}
    summary = record.get("summary") or {}
    dev = (summary.get("dev_report") or {}).get("student") or {}
    objective = record.get("objective") or {}
    terms = objective.get("weights") or {}
    datasets = [{"source": fp.get("source"), "rows": fp.get("rows"), "content_sha256": fp.get("content_sha256")}
                for fp in data.values() if isinstance(fp, dict) and fp.get("content_sha256")]
    metrics = {k: v for k, v in dev.items() if k != "step"}
    if not metrics and summary.get("best_metric") and summary.get("best_value") is not None:
        metrics = {summary["best_metric"]: summary["best_value"]}
    front = {"library_name": "transformers", "pipeline_tag": "text-classification",
             "tags": ["bertdistill", "cross-encoder", "distillation" if teachers else "fine-tuned",
                      "tmkd-stage1" if command == "pretrain-student" else command],
             **({"base_model": str(source)} if source else {}),
             "datasets": [d["source"] for d in datasets if d["source"]],
             "bertdistill": {"command": command, "data_fingerprints": datasets,
                             "teachers": [t.get("name") for t in teachers if isinstance(t, dict)]},
             "model-index": [{"name": Path(str(config.get("output") or "model")).name, "results": [
                 {"task": {"type": "text-classification"}, "metrics": _metric_rows(metrics)}]}]}
    method = ("TMKD stage 1: the student imitates the teachers on an unlabeled corpus (soft losses only)"
              if command == "pretrain-student" else
              "distillation from teachers and the gold labels" if teachers else "supervised fine-tuning")
    body = [f"Trained by `bertdistill {command}`: {method}.", "", "## Teachers", ""]
    body += [f"- `{t.get('name')}`: {t.get('path', '')}" for t in teachers if isinstance(t, dict)] or ["- none"]
    body += ["", "## Data", ""]
    body += [f"- {d['source']}: {d['rows']} rows, content SHA-256 `{d['content_sha256']}`" for d in datasets]
    store = record.get("label_store")
    if store:
        body.append(f"- teacher label store: {store.get('path')} (max length {store.get('max_length')})")
    body += ["", "## Method and loss terms", "", f"- student source: {source}",
             f"- loss terms: `{json.dumps(terms, sort_keys=True)}`" if terms else "- loss terms: hard labels",
             f"- training: {summary.get('steps')} updates, {summary.get('epochs_done')} epochs, "
             f"max length {(config.get('train') or {}).get('max_length')}, "
             f"seed {(config.get('train') or {}).get('seed')}"]
    body += ["", "## Metrics", ""]
    body += [f"- {k}: {_number(v)}" for k, v in metrics.items()] or ["- no evaluation set"]
    if summary.get("examples_per_second"):
        body.append(f"- training speed: {summary['examples_per_second']:.1f} examples/s")
    body += ["", "## How it was made", "", _made_by(command, config_file)]
    return front, body


def _prune_card(report: dict[str, Any], config_file: str) -> tuple[dict, list[str]]:
    source = (report.get("source") or {}).get("model")
    calibration = report.get("calibration") or {}
    data = calibration.get("data") or {}
    pruned, kept = report.get("pruned") or {}, report.get("kept") or {}
    front = {"library_name": "transformers", "tags": ["bertdistill", "pruned", "cross-encoder"],
             **({"base_model": str(source)} if source else {}),
             "datasets": [data["source"]] if data.get("source") else [],
             "bertdistill": {"command": "prune", "data_fingerprints": [data] if data else [],
                             "shape": pruned, "flops_ratio": (report.get("flops_per_example") or {}).get("ratio")}}
    body = [f"Cut from `{source}` by `bertdistill prune` ({report.get('objective')} importance).", "",
            "## Data", "", f"- calibration: {data.get('source')}, {calibration.get('examples')} examples, "
                           f"content SHA-256 `{data.get('content_sha256')}`", "",
            "## Method", "", f"- shape: {json.dumps(pruned)}", f"- kept layers: {kept.get('layers')}",
            f"- params ×{(report.get('params') or {}).get('ratio', 0):.3f}, FLOPs per example "
            f"×{(report.get('flops_per_example') or {}).get('ratio', 0):.3f}", "",
            "## How it was made", "", _made_by("prune", config_file)]
    return front, body


def _made_by(command: str, config_file: str) -> str:
    if _origin:
        return _origin[-1]
    return f"`bertdistill {command} --config {config_file}` (the settings saved in this folder) reproduces it."


def write_model_card(folder: str | Path, name: str | None = None) -> Path | None:
    """Write ``folder/README.md`` from the run's record or prune report in ``folder`` (``name``: the model's
    final folder name, as ``folder`` may be its temporary sibling); None if it holds neither."""
    folder = Path(folder)
    record = _read(folder / "training_record.json")
    if record is not None:
        front, body = _training_card(record, "training_config.json")
    else:
        report = _read(folder / "prune_report.json")
        if report is None:
            return None
        front, body = _prune_card(report, "prune_config.json")
    title = name or folder.name
    text = f"---\n{_yaml(front)}\n---\n\n# {title}\n\n" + "\n".join(body) + "\n"
    path = folder / CARD_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _split_card(text: str) -> tuple[dict[str, Any], str]:
    """A card's front matter and its body (the text after it)."""
    import yaml

    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end > 0:
            front = yaml.safe_load(text[4:end]) or {}
            return (front if isinstance(front, dict) else {}), text[end + 5:]
    return {}, text


def write_speed(folder: str | Path, rows: list[dict[str, Any]], machine: dict[str, Any], date: str,
                metric: str | None = None, source: str = "bench") -> Path | None:
    """Add the measured inference speed to ``folder/README.md`` (None when the folder has no card).

    ``rows``: one per backend timed, ``{"backend", "row" (the bench's row name), "examples_per_second":
    {batch size: ex/s}, "metric" (optional)}``; ``machine``: the bench's machine (cpu, device_name, threads,
    torch, onnxruntime); ``date``: when it was measured. An earlier speed section is replaced; the card
    is written to a temporary sibling and renamed over the old one."""
    from bertdistill.io import atomic_write_text

    path = Path(folder) / CARD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    front, body = _split_card(text)
    start, end = body.find(SPEED_BEGIN), body.find(SPEED_END)
    if start >= 0 and end > start:  # the section of an earlier bench
        body = body[:start].rstrip("\n") + "\n" + body[end + len(SPEED_END):].lstrip("\n")
    sizes = list(dict.fromkeys(str(b) for r in rows for b in r.get("examples_per_second", {})))
    where = machine.get("device_name") or machine.get("cpu") or "unknown machine"
    what = (f"{where}, {machine.get('threads')} thread(s), torch {machine.get('torch')}, "
            f"onnxruntime {machine.get('onnxruntime')}")
    header = ["backend", "bench row"] + [f"examples/s at batch {b}" for b in sizes] + ([metric] if metric else [])
    table = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for r in rows:
        speed = r.get("examples_per_second", {})
        cells = [str(r["backend"]), f"`{r.get('row', '')}`"]
        cells += [f"{float(speed[b]):.1f}" if speed.get(b) is not None else "–" for b in sizes]
        if metric:
            cells.append(f"{float(r['metric']):.4f}" if r.get("metric") is not None else "–")
        table.append("| " + " | ".join(cells) + " |")
    section = [SPEED_BEGIN, "## Inference speed", "",
               f"Measured by {source} on {date}; machine: {what}.", "", *table, "", SPEED_END, ""]
    anchor = body.find("\n## How it was made")
    section_text = "\n".join(section)
    body = (body.rstrip("\n") + "\n\n" + section_text if anchor < 0 else
            body[:anchor].rstrip("\n") + "\n\n" + section_text + body[anchor:])
    info = front.setdefault("bertdistill", {})
    if isinstance(info, dict):
        info["speed"] = {"date": date, "machine": what,
                         "examples_per_second": {r["backend"]: {str(b): _number(v) for b, v in
                                                                r.get("examples_per_second", {}).items()}
                                                 for r in rows}}
    head = f"---\n{_yaml(front)}\n---\n" if front else ""
    atomic_write_text(path, head + body if body.startswith("\n") or not head else head + "\n" + body)
    return path


def read_front_matter(path: str | Path) -> dict[str, Any]:
    """The YAML front matter of a model card (empty when it has none)."""
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    return yaml.safe_load(text[4:end]) or {} if end > 0 else {}
