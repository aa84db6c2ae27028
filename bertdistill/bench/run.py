"""``run_bench``: task metrics and speed of several models, measured in one run on the same data.

Metrics use every row of the evaluation set (``predict_logits``, length-sorted batches). Speed uses a
fixed, seeded sample of real rows: ``repeats`` batches per batch size, each padded to its longest
example (or to ``seq_len`` when given), the same rows for every model, timed interleaved across
models with the thread count fixed. The JSON form is documented in docs/bench_schema.md.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertdistill.bench.timing import Timing, fixed_threads, time_interleaved
from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError
from bertdistill.models import label_permutation

SCHEMA_VERSION = 1
SCHEMA_ID = "bertdistill.bench"
RANKING_NOTE = ("MAP/MRR are per query over queries with at least one correct answer; queries without "
                "any are left out (WikiQA convention)")


@dataclass
class ModelSpec:
    """One model to bench: display name, directory, inference backend."""

    name: str
    path: str
    backend: str = "auto"


def parse_model_spec(text: str) -> ModelSpec:
    """``[NAME=]PATH[:BACKEND]``, e.g. ``student-int8=exports/s:onnx-int8``; the name defaults to the
    directory name (plus the backend when one is given)."""
    from bertdistill.inference import backend_names

    raw = text.strip()
    if not raw:
        raise UserError("empty --model value", None, "write --model [NAME=]PATH[:BACKEND]")
    name = None
    if "=" in raw and "/" not in raw.split("=", 1)[0]:  # "runs/a=b" is a path, not NAME=PATH
        name, raw = raw.split("=", 1)
        name = name.strip()
        if not name:
            raise UserError(f"empty model name in {text!r}", "--model", "write --model NAME=PATH or just PATH")
    backend = "auto"
    head, sep, tail = raw.rpartition(":")
    if sep and tail in backend_names():
        raw, backend = head, tail
    elif sep and tail and "/" not in tail and not Path(raw).exists():
        raise UserError(f"unknown backend {tail!r} in {text!r}", "--model",
                        f"use one of: {', '.join(backend_names())}")
    if not raw:
        raise UserError(f"no path in {text!r}", "--model", "write --model [NAME=]PATH[:BACKEND]")
    if name is None:
        name = Path(raw.rstrip("/")).name or raw
        if backend != "auto":
            name = f"{name}-{backend}"
    return ModelSpec(name, raw, backend)


@dataclass
class BenchConfig:
    """Everything a bench run depends on; saved inside the JSON result."""

    models: list[str] = field(default_factory=list)
    """Model specs ``[NAME=]PATH[:BACKEND]`` (see ``parse_model_spec``)."""
    data: DataSpec = field(default_factory=DataSpec)
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32])
    threads: int | None = None
    """Intra-op threads for every model (torch and ONNX Runtime); None keeps torch's current count."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N for every model (ONNX on CUDA needs onnxruntime-gpu)."""
    warmup: int = 2
    """Untimed calls per model and batch size before timing."""
    repeats: int = 20
    """Timed calls per model and batch size (each on a different real batch)."""
    seq_len: int | None = None
    """Pad/truncate every timed example to exactly this many tokens instead of real lengths."""
    max_length: int = 128
    metric_batch_size: int = 64
    baseline: str | None = None
    """Name of the model ratios are relative to; default the first."""
    seed: int = 0
    """Seeds the timing sample and any freshly initialized classifier head (base encoders)."""
    trust_remote_code: bool = False
    """Allow model code from the hub (off unless --trust-remote-code)."""


@dataclass
class ModelResult:
    name: str
    path: str
    backend: str
    label_names: list[str]
    params: int | None
    size_bytes: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    throughput_ex_s: dict[str, float]
    padded_len_mean: dict[str, float]
    speedup_vs_baseline: float | None
    latency_speedup_vs_baseline: float | None
    retention_vs_baseline: float | None
    is_baseline: bool
    flops_per_example: float | None = None
    """Analytic FLOPs per example at the data's real token lengths (``bertdistill.flops``); None if not BERT-shaped."""
    source_weights_sha256: str | None = None
    """Hash of the PyTorch weights this row runs (an ONNX export: of the model it was exported from);
    rows with the same hash are one model on several backends."""


@dataclass
class FastestBackend:
    """One model (rows with the same source weights) at its fastest backend, against the baseline model's."""

    model: str
    """Name of the row that was fastest at the largest batch size."""
    rows: list[str]
    """Every row of this model (its backends)."""
    backend: str
    throughput_ex_s: float | None
    main_metric: float | None
    speedup_vs_baseline_fastest: float | None
    """This row's throughput ÷ the baseline model's fastest row's (largest batch size)."""
    retention_vs_baseline_fastest: float | None
    """This row's main metric ÷ the baseline model's fastest row's."""
    metric_spread: float | None
    """Largest minus smallest main metric over this model's backends (what bf16/int8 cost)."""
    speedup_paired_median: float | None = None
    """Median over the timed rounds of (baseline fastest row's seconds ÷ this row's seconds) on the same
    batch: the same comparison, robust to a noisy machine's slow moments."""
    retention_vs_baseline_best: float | None = None
    """This row's main metric ÷ the baseline model's best main metric over all its backends: unlike
    ``retention_vs_baseline_fastest`` it does not change with which of the baseline's backends won the timing."""


@dataclass
class BenchResult:
    schema: str
    schema_version: int
    created: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    data: dict[str, Any]
    main_metric: str
    metric_names: list[str]
    baseline: str
    models: list[ModelResult]
    notes: list[str]
    config: dict[str, Any]
    fastest: list[FastestBackend] = field(default_factory=list)
    """One entry per model (rows grouped by source weights), in first-row order."""

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.name == name)


def _clean(obj: Any) -> Any:
    """JSON has no NaN/inf: write null instead."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


# ---------------------------------------------------------------------------------------------


def check_config(config: BenchConfig) -> list[ModelSpec]:
    """Validate settings before any model is loaded; return the parsed model specs."""
    if not config.models:
        raise UserError("no models given", None, "pass --model PATH once per model (teacher first)")
    specs = [parse_model_spec(m) for m in config.models]
    names = [s.name for s in specs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise UserError(f"two models are named {dup!r}", "--model", "name them: --model NAME=PATH[:BACKEND]")
    if not config.batch_sizes or any(b < 1 for b in config.batch_sizes):
        raise UserError(f"batch sizes {config.batch_sizes} must be at least 1", "--batch-sizes",
                        "use e.g. --batch-sizes 1,32")
    for option, value, low in (("--repeats", config.repeats, 1), ("--warmup", config.warmup, 0),
                               ("--metric-batch-size", config.metric_batch_size, 1)):
        if value < low:
            raise UserError(f"{option} {value} must be at least {low}", None, f"use {option} {max(low, 1)} or more")
    if config.threads is not None and config.threads < 1:
        raise UserError(f"--threads {config.threads} must be at least 1", None, "use --threads 1 or more")
    if config.baseline is not None and config.baseline not in names:
        raise UserError(f"baseline {config.baseline!r} is not one of the models {names}", "--baseline",
                        "give the NAME of one --model")
    return specs


def _count_onnx_params(onnx_file: str) -> int | None:
    try:
        import onnx

        model = onnx.load(onnx_file, load_external_data=False)
        return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if len(t.dims) > 0))
    except Exception:  # a count is informative only; never fail a bench over it
        return None


def _sample_batches(num_rows: int, batch_size: int, count: int, rng: np.random.Generator) -> list[list[int]]:
    """``count`` batches of distinct random rows (rows repeat only when the data is smaller)."""
    replace = batch_size > num_rows
    return [rng.choice(num_rows, size=batch_size, replace=replace).tolist() for _ in range(count)]


def machine_info(threads: int, device: str = "cpu") -> dict[str, Any]:
    """Versions and hardware; ``device`` / ``device_name``: where the models ran (the GPU's or CPU's model)."""
    import onnxruntime
    import torch
    import transformers

    from bertdistill import __version__
    from bertdistill.devices import cpu_name, device_name

    names = "; ".join(dict.fromkeys(device_name(d) for d in device.split(",")))  # "cpu,cuda:0" when mixed
    return {"cpu": cpu_name(), "device": device, "device_name": names,
            "logical_cpus": os.cpu_count(), "threads": threads, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "bertdistill": __version__}


def _flops(scorer, text_a, text_b, max_length: int, fixed: bool) -> float | None:
    """Mean FLOPs per example at the model's own token lengths of the data (or the fixed --seq-len)."""
    from bertdistill.flops import flops_per_example
    from bertdistill.inference.batches import encode_rows

    try:
        lengths = ([max_length] if fixed else
                   encode_rows(scorer.tokenizer, text_a, text_b, max_length, input_names=("input_ids",)).lengths)
        return float(flops_per_example(scorer.config, lengths, num_labels=len(scorer.label_names)))
    except (AttributeError, TypeError, ValueError):  # not a BERT-shaped config
        return None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not math.isfinite(num) or not math.isfinite(den) or den == 0:
        return None
    return num / den


def _source_weights(path: str, model_file: str | None, hashed: dict[str, str | None]) -> str | None:
    """The PyTorch weights behind a row: the export report's source hash for an export, else the directory's
    (hashed once per directory: its torch and bf16 rows share it)."""
    from bertdistill.io import read_json
    from bertdistill.models import weights_sha256

    if model_file:
        try:
            return read_json(Path(model_file).parent / "export_report.json").get("source_weights_sha256")
        except (UserError, OSError):  # no report: the row is a model of its own
            return None
    if path not in hashed:
        hashed[path] = weights_sha256(path) if Path(path).is_dir() else None
    return hashed[path]


def fastest_backends(models: list[ModelResult], main: str, top_bs: int,
                     seconds: dict[str, list[float]] | None = None) -> list[FastestBackend]:
    """Group rows into models by source weights (by path when unknown) and compare each model's fastest
    row with the baseline model's fastest row: a student is only as fast as the teacher's best backend allows.
    ``seconds``: each row's timed calls at ``top_bs`` in round order (round i: every row on the same batch)."""
    groups: dict[str, list[ModelResult]] = {}
    for m in models:
        groups.setdefault(m.source_weights_sha256 or f"path:{m.path}", []).append(m)

    def best(rows: list[ModelResult]) -> ModelResult:
        return max(rows, key=lambda r: r.throughput_ex_s.get(str(top_bs)) or 0.0)

    base_rows = next(rows for rows in groups.values() if any(r.is_baseline for r in rows))
    base = best(base_rows)
    base_values = [r.metrics.get(main) for r in base_rows if r.metrics.get(main) is not None]
    base_best = max(base_values) if base_values else None
    out = []
    for rows in groups.values():
        top = best(rows)
        values = [r.metrics.get(main) for r in rows if r.metrics.get(main) is not None]
        out.append(FastestBackend(
            model=top.name, rows=[r.name for r in rows], backend=top.backend,
            throughput_ex_s=top.throughput_ex_s.get(str(top_bs)), main_metric=top.metrics.get(main),
            speedup_vs_baseline_fastest=_ratio(top.throughput_ex_s.get(str(top_bs)),
                                               base.throughput_ex_s.get(str(top_bs))),
            retention_vs_baseline_fastest=_ratio(top.metrics.get(main), base.metrics.get(main)),
            metric_spread=(max(values) - min(values)) if values else None,
            speedup_paired_median=_paired_median(seconds, base.name, top.name),
            retention_vs_baseline_best=_ratio(top.metrics.get(main), base_best)))
    return out


def _paired_median(seconds: dict[str, list[float]] | None, base: str, row: str) -> float | None:
    if not seconds or base not in seconds or row not in seconds:
        return None
    ratios = [b / r for b, r in zip(seconds[base], seconds[row]) if r > 0]
    return float(np.median(ratios)) if ratios else None


def run_bench(config: BenchConfig, show_progress: bool = True) -> BenchResult:
    """Load every model, check its labels, compute metrics on the full data, time them interleaved."""
    import torch

    from bertdistill.data.sources import load_task_data
    from bertdistill.data.tokenize import check_max_length
    from bertdistill.devices import parse_device, synchronize
    from bertdistill.inference import load_scorer, predict_logits, tokenize_batch
    from bertdistill.metrics import compute_metrics, main_metric
    from bertdistill.ui import progress

    specs = check_config(config)
    parse_device(config.device)
    if config.seq_len is not None and config.seq_len < 8:
        raise UserError(f"--seq-len {config.seq_len} is too small", None, "use at least 8, or leave it out")
    data = load_task_data(config.data, require_labels=True)
    label_names = list(data.label_names)
    labels = np.asarray(data.column("label"))
    groups = data.column("group") if data.has_groups else None
    text_a = data.column("text_a")
    text_b = data.column("text_b") if data.has_text_b else None
    baseline = config.baseline or specs[0].name
    batch_sizes = sorted(set(config.batch_sizes))

    with fixed_threads(config.threads) as threads, _quiet_transformers():
        scorers, perms = [], []
        for spec in specs:
            torch.manual_seed(config.seed)  # a base encoder's fresh head is then the same in every run
            scorer = load_scorer(spec.path, spec.backend, threads=threads,
                                 trust_remote_code=config.trust_remote_code, device=config.device)
            perms.append(_score_columns(scorer, label_names, f"--model {spec.name} ({spec.path})"))
            check_max_length(scorer.tokenizer, scorer.config, config.max_length)
            if config.seq_len is not None:
                check_max_length(scorer.tokenizer, scorer.config, config.seq_len)
            scorers.append(scorer)
        torch.set_num_threads(threads)  # load_scorer may have changed it
        devices = sorted({scorer.device for scorer in scorers})
        gpus = [torch.device(d) for d in devices if d.startswith("cuda")]
        # Logits come back to host memory (which waits for the GPU), and each timed call is bracketed by a
        # device synchronization as well, so no queued GPU work is charged to the next model.
        sync = (lambda: [synchronize(g) for g in gpus]) if gpus else None

        metrics: list[dict[str, float]] = []
        bar = progress(transient=True) if show_progress else None
        with bar or contextlib.nullcontext():
            for spec, scorer, perm in zip(specs, scorers, perms):
                task = bar.add_task(f"metrics {spec.name}", total=data.num_rows) if bar else None
                logits = predict_logits(scorer, data, config.max_length, config.metric_batch_size,
                                        on_batch=(lambda n, t=task: bar.advance(t, n)) if bar else None)
                metrics.append(compute_metrics(data.kind, label_names, labels,
                                               logits if perm is None else logits[:, perm], groups))

            rng = np.random.default_rng(config.seed)
            timings: dict[int, dict[str, Timing]] = {}
            padded: dict[int, list[float]] = {}
            for b in batch_sizes:
                rows = _sample_batches(data.num_rows, b, config.repeats, rng)
                inputs = []
                for scorer in scorers:
                    batches = [tokenize_batch(scorer.tokenizer, [text_a[i] for i in idx],
                                              [text_b[i] for i in idx] if text_b is not None else None,
                                              config.max_length, pad_to=config.seq_len) for idx in rows]
                    inputs.append(batches)
                padded[b] = [float(np.mean([x["input_ids"].shape[1] for x in batches])) for batches in inputs]
                runners = [(spec.name, (lambda i, s=scorer, xs=batches: s.logits(xs[i])))
                           for spec, scorer, batches in zip(specs, scorers, inputs)]
                task = bar.add_task(f"timing batch {b}", total=config.repeats) if bar else None
                timings[b] = time_interleaved(runners, config.warmup, config.repeats, batch_size=b,
                                              on_round=(lambda t=task: bar.advance(t)) if bar else None,
                                              sync=sync)

    latency_bs = batch_sizes[0]
    top_bs = batch_sizes[-1]
    main = main_metric(data.kind, label_names)
    if main not in metrics[0]:
        main = "accuracy"
    results = []
    hashed: dict[str, str | None] = {}
    for k, (spec, scorer) in enumerate(zip(specs, scorers)):
        t_lat = timings[latency_bs][spec.name]
        params = scorer.num_parameters
        if params is None and scorer.model_file and scorer.model_file.endswith(".onnx"):
            params = _count_onnx_params(scorer.model_file)
        results.append(ModelResult(
            name=spec.name, path=str(spec.path), backend=scorer.backend, label_names=list(scorer.label_names),
            params=params, flops_per_example=_flops(scorer, text_a, text_b, config.seq_len or config.max_length,
                                                    fixed=config.seq_len is not None),
            size_bytes=int(scorer.size_on_disk()), metrics=metrics[k],
            latency_ms={"batch_size": latency_bs, "p50": t_lat.percentile_ms(50),
                        "p95": t_lat.percentile_ms(95), "mean": t_lat.mean_ms},
            throughput_ex_s={str(b): timings[b][spec.name].throughput for b in batch_sizes},
            padded_len_mean={str(b): padded[b][k] for b in batch_sizes},
            source_weights_sha256=_source_weights(str(spec.path), scorer.model_file, hashed),
            speedup_vs_baseline=None, latency_speedup_vs_baseline=None, retention_vs_baseline=None,
            is_baseline=spec.name == baseline))
    base = next(r for r in results if r.is_baseline)
    for r in results:
        r.speedup_vs_baseline = _ratio(r.throughput_ex_s[str(top_bs)], base.throughput_ex_s[str(top_bs)])
        r.latency_speedup_vs_baseline = _ratio(base.latency_ms["p50"], r.latency_ms["p50"])
        r.retention_vs_baseline = _ratio(r.metrics.get(main), base.metrics.get(main))

    data_info: dict[str, Any] = {"source": data.spec.describe(), "kind": data.kind, "rows": data.num_rows,
                                 "label_names": label_names, "fingerprint": data.fingerprint()["content_sha256"]}
    notes = []
    if data.kind == "ranking" and groups is not None:
        scored, left_out = metrics[0]["queries_scored"], metrics[0]["queries_without_positive"]
        data_info.update({"queries": scored + left_out, "queries_scored": scored, "queries_without_positive": left_out})
        notes.append(f"{RANKING_NOTE}: {data_info['queries_without_positive']} of {data_info['queries']} "
                     f"queries left out")
    else:
        data_info.update({"queries": None, "queries_scored": None, "queries_without_positive": None})
    notes.append(f"speedup = throughput at batch {top_bs} / {baseline}'s; latency speedup = {baseline}'s "
                 f"p50 at batch {latency_bs} / the model's; retention = {main} / {baseline}'s")
    fastest = fastest_backends(results, main, top_bs, {name: t.seconds for name, t in timings[top_bs].items()})
    base_fastest = next(f for f in fastest if baseline in f.rows)
    if len(base_fastest.rows) == 1 and len(fastest) > 1:
        notes.append(f"{baseline} was timed on one backend only ({base_fastest.backend}): add its bf16 or ONNX "
                     f"int8 rows to compare against its fastest backend")
    settings = {"batch_sizes": batch_sizes, "warmup": config.warmup, "repeats": config.repeats,
                "seq_len": config.seq_len, "max_length": config.max_length,
                "metric_batch_size": config.metric_batch_size, "seed": config.seed, "threads": threads,
                "device": ",".join(devices), "interleaved": True, "synchronized": bool(gpus)}
    metric_names = [m for m in ("accuracy", "f1", "f1_macro", "map", "mrr") if m in metrics[0]]
    return BenchResult(
        schema=SCHEMA_ID, schema_version=SCHEMA_VERSION,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        machine=machine_info(threads, ",".join(devices)),
        settings=settings, data=data_info, main_metric=main,
        metric_names=metric_names, baseline=baseline, models=results, notes=notes, config=asdict(config),
        fastest=fastest)



@contextlib.contextmanager
def _quiet_transformers():
    """No per-model "Loading weights" bars from transformers; bench shows its own progress."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _score_columns(scorer, label_names: list[str], where: str) -> list[int] | None:
    """Logit columns in the data's label order; None for a 1-logit score model (ranks by its score,
    relevant when score > 0), which needs binary data labeled as it was trained."""
    from bertdistill.models import is_score_config, task_label_names

    if not is_score_config(scorer.config):
        return label_permutation(list(scorer.label_names), label_names, where)
    known = task_label_names(scorer.config)
    if len(label_names) != 2 or (known and sorted(known) != sorted(label_names)):
        raise UserError(f"a score model (1 logit, trained on labels {known or 'not recorded'}) cannot be judged on "
                        f"labels {label_names}", where, "bench it on binary relevance data of its task")
    if known and known != label_names:
        raise UserError(f"score model labels {known} are the data's labels {label_names} in another order", where,
                        f"set the data's label order with --label-names {','.join(known)}")
    return None
