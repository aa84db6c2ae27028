"""OpenVINO against the existing inference backends (issue 34): speed and agreement on real exported models.

For each ``--model-dir`` / ``--export-dir`` pair (a Hugging Face model directory and what ``bertdistill export
--int8`` wrote from it), the existing backends — ``bf16`` (torch autocast) on the model directory, ``onnx`` and
``onnx-int8`` on the export, each loaded through the registry as the commands load them — are timed beside
OpenVINO runs of the same ``model.onnx``: compiled with ``INFERENCE_PRECISION_HINT`` bf16 and f32, and (unless
``--no-nncf``) an int8 model quantized by NNCF (OpenVINO's own post-training quantization, transformer
preset) calibrated on ``--calib-rows`` rows of ``--calib-data``, run with bf16 and with f32 for what stays
unquantized. Every runtime scores the same length-sorted batches of ``--data`` (as ``predict`` and ``label``
batch them); runtimes take turns batch set by batch set, the order rotating each round, so load from other
processes hits them alike. The table gives median ex/s and two ratios to the best existing backend
(the fastest of bf16, onnx and onnx-int8): of the medians, and the median (quartiles) of the per-round
ratios, which pairs runs made seconds apart and so says more on a loaded machine. Agreement is with ORT
fp32 on all rows of ``--data``: max |logit diff|, argmax agreement (several logits) or pair-order agreement
(a one-logit score model), the measures the export's parity check uses.

    PYTHONPATH=. python benchmarks/bench_openvino.py \\
        --model-dir /tmp/demo-cmp-rc/student --export-dir /tmp/demo-cmp-rc/onnx/student \\
        --model-dir /tmp/demo-cmp-rc/teachers/t1 --export-dir /tmp/demo-cmp-rc/onnx/t1 \\
        --data bertdistill/demo_data/demo_qa_test.tsv --calib-data bertdistill/demo_data/demo_qa_train.tsv \\
        --max-length 48 --rounds 20

Needs ``openvino`` (and ``nncf`` for the int8 rows); without openvino it says so and exits 0, without nncf it
skips the int8 rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXISTING = ("bf16", "onnx", "onnx-int8")
"""The backends OpenVINO has to beat (torch fp32 is never faster than bf16 or ORT fp32 on the CPU)."""

Forward = Callable[[dict], np.ndarray]


def openvino_forward(compiled) -> Forward:
    request = compiled.create_infer_request()  # one request, reused: what a backend would hold
    names = [i.get_any_name() for i in compiled.inputs]
    output = compiled.output(0)

    def forward(batch: dict) -> np.ndarray:
        result = request.infer({k: batch[k] for k in names})
        return np.asarray(result[output], dtype=np.float32)
    return forward


def openvino_runs(export_dir: Path, threads: int, calib: list[dict] | None) -> dict[str, Forward]:
    import openvino as ov

    core = ov.Core()
    common = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    fp32_model = ov.convert_model(str(export_dir / "model.onnx"))
    runs = {f"openvino {p}": openvino_forward(core.compile_model(
        fp32_model, "CPU", {**common, "INFERENCE_PRECISION_HINT": p})) for p in ("bf16", "f32")}
    if calib is not None:
        import nncf

        names = [i.get_any_name() for i in fp32_model.inputs]
        start = time.perf_counter()
        # every calibration batch, not a subset of them
        int8_model = nncf.quantize(ov.convert_model(str(export_dir / "model.onnx")),
                                   nncf.Dataset([{k: b[k] for k in names} for b in calib]),
                                   model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calib))
        print(f"  nncf int8 quantization of {export_dir}: {time.perf_counter() - start:.1f} s", flush=True)
        for p in ("bf16", "f32"):
            runs[f"openvino int8 (nncf, {p})"] = openvino_forward(core.compile_model(
                int8_model, "CPU", {**common, "INFERENCE_PRECISION_HINT": p}))
    return runs


def agreement(reference: np.ndarray, other: np.ndarray) -> str:
    from bertdistill.export.parity import compare_logits

    result = compare_logits(reference, other)
    if result.order_agreement is not None:
        return f"{result.max_abs_diff:.3f} | order {result.order_agreement:.4f}"
    return f"{result.max_abs_diff:.3f} | argmax {result.argmax_agreement:.4f}"


def bench_pair(model_dir: Path, export_dir: Path, args, data, calib_data) -> list[tuple]:
    from bertdistill.inference import load_scorer

    scorers = {name: load_scorer(str(model_dir if name == "bf16" else export_dir), name, threads=args.threads)
               for name in EXISTING}
    ort = scorers["onnx"]
    rows = ort.encode(data.column("text_a"), data.column("text_b") if data.has_text_b else None, args.max_length)
    batches = [b for _, b in rows.sorted_batches(args.batch_size, ort.pad_token_id)]
    calib = None
    if calib_data is not None:
        n = min(args.calib_rows, calib_data.num_rows)
        c = ort.encode(calib_data.column("text_a")[:n],
                       calib_data.column("text_b")[:n] if calib_data.has_text_b else None, args.max_length)
        calib = [b for _, b in c.sorted_batches(args.batch_size, ort.pad_token_id)]
    runs: dict[str, Forward] = {name: s.logits for name, s in scorers.items()}
    runs.update(openvino_runs(export_dir, args.threads, calib))

    reference = np.concatenate([runs["onnx"](b) for b in batches])
    agree = {name: agreement(reference, np.concatenate([f(b) for b in batches])) for name, f in runs.items()}
    for _ in range(2):  # warm-up: first calls of each shape pick kernels and allocate
        for f in runs.values():
            for b in batches:
                f(b)
    names = list(runs)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for b in batches:
                runs[name](b)
            rates[name].append(len(rows) / (time.perf_counter() - start))
    best = max(EXISTING, key=lambda n: statistics.median(rates[n]))
    table = []
    for name in names:
        paired = sorted(a / b for a, b in zip(rates[name], rates[best]))
        q = len(paired) // 4
        table.append((model_dir.name, name, statistics.median(rates[name]),
                      statistics.median(rates[name]) / statistics.median(rates[best]),
                      f"{statistics.median(paired):.2f}x ({paired[q]:.2f}–{paired[-1 - q]:.2f})", agree[name],
                      name == best))
    print(f"  {model_dir.name}: load average after timing {os.getloadavg()[0]:.2f}", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", action="append", required=True, type=Path,
                        help="Hugging Face model directory (repeat, paired in order with --export-dir)")
    parser.add_argument("--export-dir", action="append", required=True, type=Path,
                        help="its bertdistill export (model.onnx, model_quantized.onnx, tokenizer)")
    parser.add_argument("--data", required=True, help="rows to score (tsv/csv/jsonl with its text columns)")
    parser.add_argument("--calib-data", help="rows for NNCF's int8 calibration (default: --data)")
    parser.add_argument("--calib-rows", type=int, default=320)
    parser.add_argument("--no-nncf", action="store_true", help="skip the NNCF int8 rows")
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if len(args.model_dir) != len(args.export_dir):
        parser.error("give one --export-dir per --model-dir")
    try:
        import openvino  # noqa: F401
    except ImportError:
        print("openvino is not installed (pip install openvino); nothing to compare, skipped")
        return
    use_nncf = not args.no_nncf
    if use_nncf:
        try:
            import nncf  # noqa: F401
        except ImportError:
            print("nncf is not installed (pip install nncf): the OpenVINO int8 rows are skipped")
            use_nncf = False

    import torch

    from bertdistill.data.sources import DataSpec, load_task_data

    torch.set_num_threads(args.threads)
    data = load_task_data(DataSpec(path=args.data))
    calib_data = load_task_data(DataSpec(path=args.calib_data or args.data)) if use_nncf else None
    print(f"load average before start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    table = []
    for model_dir, export_dir in zip(args.model_dir, args.export_dir):
        table += bench_pair(model_dir, export_dir, args, data, calib_data)

    print(f"\nbatch {args.batch_size}, max_length {args.max_length}, {args.threads} threads, {args.rounds} "
          f"interleaved rounds, {data.num_rows} rows of {args.data}; ratios to the best existing backend (*)")
    print("| model | runtime | ex/s | vs best (medians) | vs best, per round: median (quartiles) "
          "| max \\|diff\\| vs ORT fp32 | agreement with ORT fp32 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model, name, rate, ratio, paired, agree, best in table:
        print(f"| {model} | {name}{' *' if best else ''} | {rate:.1f} | {ratio:.2f}x | {paired} | {agree} |")


if __name__ == "__main__":
    main()
