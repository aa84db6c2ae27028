"""Export a sequence classifier to a self-contained ONNX directory, with a parity check against PyTorch.

The directory follows the convention ``bertdistill.inference`` loads: ``model.onnx`` (and with int8
``model_quantized.onnx``), inputs ``input_ids``/``attention_mask`` (and ``token_type_ids`` for models that
read them; int64, dynamic ``batch`` and ``sequence`` axes), output ``logits``, tokenizer files, ``config.json`` (id2label),
``export_report.json`` and ``export_config.json``. Everything is built in a temporary directory and
renamed into place only when parity passes.

This module orchestrates; the steps are ``export.onnx_fp32`` (the graph), ``export.onnx_int8``
(quantization) and ``export.parity`` (inputs and the comparison).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError
from bertdistill.export.onnx_fp32 import EXPORTERS, MIN_OPSET, export_fp32
from bertdistill.export.onnx_int8 import choose_int8
from bertdistill.export.parity import (compare_logits, generated_batches, real_batches,
                                       run_batches)
from bertdistill.inference import ONNX_FP32, ONNX_INT8, load_scorer
from bertdistill.inference.onnx_dir import EXPORT_REPORT as REPORT_FILE
from bertdistill.io import atomic_dir, check_output_dir, write_json

CONFIG_FILE = "export_config.json"


@dataclass
class ExportConfig:
    """What to export and how strictly to check it."""

    model: str | None = None
    """Hugging Face classifier directory (or hub id); None means the packaged MiniLM."""
    output: str = ""
    int8: bool = False
    """Also write ``model_quantized.onnx`` (int8): the first recipe of ``export.onnx_int8.recipes`` (dynamic,
    calibrated static, then the head and top layers kept in fp32) that passes the int8 parity check. When none
    does, the fp32 export is still written and the report says why int8 is missing (``failed``)."""
    int8_per_channel: bool = True
    """One int8 scale per output channel of each weight, not one per tensor: as fast and as small, and
    it keeps ranking scores much closer to fp32 (WikiQA MAP lost: 0.2 vs 1.5 points)."""
    opset: int = MIN_OPSET
    exporter: str = "legacy"
    """``legacy`` (TorchScript tracing; its output quantizes as is) or ``dynamo`` (needs onnxscript)."""
    data: DataSpec | None = None
    """Real examples for the parity check; None means generated inputs (random tokens)."""
    parity_examples: int = 256
    max_length: int = 128
    batch_size: int = 32
    fp32_max_abs_diff: float = 1e-4
    """fp32 fails above this maximum absolute logit difference."""
    int8_min_agreement: float = 0.99
    """int8 fails below this argmax agreement on real data (not checked on generated inputs)."""
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    """Where the parity check runs the exported model: auto | cpu | cuda | cuda:N (ONNX Runtime's CUDA
    provider needs onnxruntime-gpu; auto uses it when installed and a GPU is there). The PyTorch reference
    and the export itself run on the CPU, in fp32."""
    overwrite: bool = False
    allow_untrained_head: bool = False
    """Allow a base encoder (it gets a random classifier head): for speed tests only."""
    keep_failed: bool = True
    """On parity failure keep the report (not the models) in ``<output>.failed/`` for debugging."""
    trust_remote_code: bool = False


@dataclass
class ExportReport:
    """The figures that prove the export computes what the PyTorch model computes."""

    output: str
    source_model: str
    source_weights_sha256: str | None
    exporter: str
    opset: int
    max_length: int
    label_names: list[str]
    num_parameters: int
    parity_source: str
    """``data`` (real examples, with ``parity_data``) or ``generated`` (random tokens)."""
    parity_data: dict[str, Any] | None
    parity: dict[str, dict[str, Any]]
    tolerances: dict[str, float]
    files: dict[str, int]
    versions: dict[str, str]
    passed: bool
    """The fp32 model and every file written passed their checks."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    untrained_head: bool = False
    parity_device: str = "cpu"
    """Where ONNX Runtime ran the exported model for the parity check (cpu or cuda:N)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Optional files asked for but not written because they failed their check (``int8``): why."""
    int8_recipes: list[dict[str, Any]] = field(default_factory=list)
    """Every int8 recipe tried, in order, with its agreement; the last one is in the directory (if it passed)."""


def _check_config(config: ExportConfig) -> None:
    import onnx

    if not config.output:
        raise UserError("no output directory given", None, "pass --output DIR")
    if config.exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {config.exporter!r}", None, f"use one of: {', '.join(EXPORTERS)}")
    highest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= config.opset <= highest:
        raise UserError(f"--opset {config.opset} is not supported", None,
                        f"use an opset from {MIN_OPSET} to {highest}")
    if not math.isfinite(config.fp32_max_abs_diff) or config.fp32_max_abs_diff < 0:
        raise UserError(f"--fp32-tolerance {config.fp32_max_abs_diff} must be a finite number, 0 or more", None,
                        "use e.g. --fp32-tolerance 1e-4")
    if not math.isfinite(config.int8_min_agreement) or not 0 <= config.int8_min_agreement <= 1:
        raise UserError(f"--int8-min-agreement {config.int8_min_agreement} must be between 0 and 1", None,
                        "use e.g. --int8-min-agreement 0.99")
    import onnxruntime

    from bertdistill.inference.onnx_backend import onnx_providers

    onnx_providers(config.device, onnxruntime.get_available_providers())  # CUDA without onnxruntime-gpu fails now
    if config.parity_examples < 1:
        raise UserError(f"--parity-examples {config.parity_examples} must be at least 1", None,
                        "use 256 (the default) or more")
    if config.batch_size < 1:
        raise UserError(f"--batch-size {config.batch_size} must be at least 1", None, "use --batch-size 32")
    if not 0.0 <= config.int8_min_agreement <= 1.0:
        raise UserError(f"int8 agreement threshold {config.int8_min_agreement} is not a fraction", None,
                        "use a value between 0 and 1, e.g. 0.99")


def _export_onnx(model, file: Path, config: ExportConfig) -> None:
    """The fp32 step with this export's settings (tests swap it for a deliberately wrong graph)."""
    from bertdistill.io import os_error_as_user_error

    try:
        export_fp32(model, file, config.exporter, config.opset, config.seed, where=config.model)
    except UserError as exc:
        # export_fp32 words any failure as the exporter's; a full disk is no exporter problem.
        disk = os_error_as_user_error(exc.__context__) if exc.__context__ is not None else None
        if disk is not None:
            raise disk from None
        raise


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    from bertdistill import __version__

    return {"bertdistill": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def _save_model_files(scorer, out: Path) -> list[str]:
    """Tokenizer and config.json (id2label) next to the ONNX files, so the directory stands alone."""
    notes = []
    scorer.tokenizer.save_pretrained(str(out))
    config = scorer.torch_model.config
    config.architectures = [type(scorer.torch_model).__name__]
    config.save_pretrained(str(out))
    if not (out / "tokenizer.json").is_file():
        notes.append("the tokenizer is not a fast tokenizer, so there is no tokenizer.json: "
                     "serving with the tokenizers library alone is not possible")
    return notes


def export_model(config: ExportConfig) -> ExportReport:
    """Export ``config.model`` to ONNX in ``config.output``; raise UserError if parity fails."""
    from bertdistill.models import is_classifier, resolve_model, weights_sha256

    _check_config(config)
    output = check_output_dir(config.output, config.overwrite)
    from bertdistill.io import check_not_inputs, input_paths, output_lock

    check_not_inputs(output, input_paths(config.model, config.data.path if config.data else None))
    with output_lock(output):  # one writer per output: a second one gets the holder's pid
        return _export_locked(config, output)


def _export_locked(config: ExportConfig, output: Path) -> ExportReport:
    from bertdistill.models import is_classifier, resolve_model, weights_sha256

    start = time.perf_counter()
    source = resolve_model(config.model)
    scorer = load_scorer(source, "torch", threads=config.threads, trust_remote_code=config.trust_remote_code)
    untrained = not is_classifier(scorer.config)
    if untrained and not config.allow_untrained_head:
        raise UserError("is a base encoder without a trained classifier head, so the export would score at random",
                        source, "export a model trained with bertdistill finetune, or pass "
                                "--allow-untrained-head for speed tests")
    from bertdistill.data.tokenize import check_max_length

    check_max_length(scorer.tokenizer, scorer.config, config.max_length)

    # Parity inputs are built before exporting so bad data fails fast.
    if config.data is not None:
        batches, parity_data = real_batches(scorer.tokenizer, config.data, config.parity_examples,
                                            config.max_length, config.batch_size, config.seed, scorer.input_names)
    else:
        batches = generated_batches(scorer.tokenizer, scorer.config.vocab_size, config.parity_examples,
                                    config.max_length, config.batch_size, config.seed, scorer.input_names)
        parity_data = None
    reference = run_batches(scorer, batches)

    failed_dir = output.with_name(output.name + ".failed")
    with atomic_dir(output, config.overwrite) as tmp:
        notes = _save_model_files(scorer, tmp)
        _export_onnx(scorer.torch_model, tmp / ONNX_FP32, config)
        parity: dict[str, dict[str, Any]] = {}
        onnx_fp32 = load_scorer(str(tmp), "onnx", threads=config.threads, device=config.device)
        fp32 = run_batches(onnx_fp32, batches)
        parity["fp32"] = compare_logits(reference, fp32).check_fp32(config.fp32_max_abs_diff)
        failed: dict[str, str] = {}
        recipes: list[dict[str, Any]] = []
        if config.int8 and parity["fp32"]["passed"]:
            def check_int8() -> dict[str, Any]:
                int8 = run_batches(load_scorer(str(tmp), "onnx-int8", threads=config.threads, device=config.device),
                                   batches)
                return compare_logits(reference, int8).check_int8(config.int8_min_agreement,
                                                                   real_data=parity_data is not None)

            calibration = _calibration_batches(scorer.tokenizer, config) if parity_data is not None else None
            parity["int8"], recipes = choose_int8(tmp / ONNX_FP32, tmp / ONNX_INT8, config.exporter, tmp,
                                                  config.int8_per_channel, _num_layers(scorer.config), calibration,
                                                  check_int8)
            if parity_data is None:
                notes.append(f"int8 {'order' if 'order_agreement' in parity['int8'] else 'argmax'} agreement was "
                             "measured on generated inputs (random tokens), not real data, so its threshold was "
                             "not applied; pass parity data to check it")
        if "int8" in parity and not parity["int8"]["passed"]:
            failed["int8"] = _parity_line({"int8": parity["int8"]})
            (tmp / ONNX_INT8).unlink(missing_ok=True)  # the directory holds only models that passed
        files = {f.name: f.stat().st_size for f in sorted(tmp.glob("*.onnx"))}
        report = ExportReport(
            output=str(output), source_model=source,
            source_weights_sha256=weights_sha256(source) if Path(source).is_dir() else None,
            exporter=config.exporter, opset=config.opset, max_length=config.max_length,
            label_names=list(scorer.label_names), num_parameters=scorer.num_parameters,
            parity_source="data" if parity_data is not None else "generated", parity_data=parity_data,
            parity=parity,
            tolerances={"fp32_max_abs_diff": config.fp32_max_abs_diff,
                        "int8_min_argmax_agreement": config.int8_min_agreement},
            files=files, versions=_versions(),
            passed=all(p["passed"] for name, p in parity.items() if name not in failed),
            notes=notes, seconds=round(time.perf_counter() - start, 2), untrained_head=untrained,
            parity_device=onnx_fp32.device, failed=failed, int8_recipes=recipes)
        write_json(tmp / REPORT_FILE, report)
        write_json(tmp / CONFIG_FILE, config)
        if not report.passed:
            _keep_failed(tmp, failed_dir, config.keep_failed)
            raise UserError(f"parity check failed: {_parity_line(parity)}", str(output),
                            "nothing was written; check the model (see the report in "
                            f"{failed_dir})" if config.keep_failed else "nothing was written; check the model")
    if failed_dir.is_dir() and not (failed_dir / ".complete").exists():
        shutil.rmtree(failed_dir, ignore_errors=True)  # a stale failed attempt of this same output
    return report


def _num_layers(config) -> int:
    return int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or 1)


def _calibration_batches(tokenizer, config: ExportConfig) -> list:
    """Real rows for static int8 ranges: up to ``parity_examples`` rows of the export's data drawn with another
    seed than the parity rows (rows may overlap on small data)."""
    return real_batches(tokenizer, config.data, config.parity_examples, config.max_length, config.batch_size,
                        config.seed + 1)[0]


def _keep_failed(tmp: Path, failed_dir: Path, keep: bool) -> None:
    """Keep the report and config of a failed attempt, never the models, so nothing looks finished."""
    if not keep:
        return
    if failed_dir.exists():
        shutil.rmtree(failed_dir)
    failed_dir.mkdir(parents=True)
    for name in (REPORT_FILE, CONFIG_FILE):
        shutil.copy2(tmp / name, failed_dir / name)
    (failed_dir / "FAILED.txt").write_text(
        "This export failed its parity check; the ONNX files were not kept.\n"
        f"See {REPORT_FILE} for the figures.\n")


def _parity_line(parity: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, p in parity.items():
        agreement = (f"order_agreement={p['order_agreement']:.4f}" if "order_agreement" in p
                     else f"argmax_agreement={p['argmax_agreement']:.4f}")
        parts.append(f"{name} max_abs_diff={p['max_abs_diff']:.3g} {agreement}"
                     + ("" if p["passed"] else f" ({p['failure']})"))
    return "; ".join(parts)


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """The export report of an ONNX directory."""
    from bertdistill.io import read_json

    return read_json(Path(path) / REPORT_FILE)


def summary_rows(report: ExportReport) -> list[dict[str, Any]]:
    """One table row per exported file, for the command's output."""
    rows = []
    for name, p in report.parity.items():
        file = ONNX_FP32 if name == "fp32" else ONNX_INT8
        rows.append({"model": file + (f" ({p['recipe']})" if "recipe" in p else ""),
                     "size_mb": report.files.get(file, 0) / 1e6, "n": p["n"],
                     "max_abs_diff": f"{p['max_abs_diff']:.2e}", "argmax_agreement": p["argmax_agreement"],
                     **({"order_agreement": p["order_agreement"]} if "order_agreement" in p else {}),
                     "passed": "not checked" if p.get("checked") is False else (
                         "yes" if p["passed"] else "NO: not written")})
    return rows


__all__ = ["ExportConfig", "ExportReport", "export_model", "read_report", "summary_rows"]
