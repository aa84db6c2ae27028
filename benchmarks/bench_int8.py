"""int8 recipes on real students: agreement with PyTorch fp32 and ONNX Runtime speed of every recipe
``bertdistill export --int8`` can choose (``bertdistill.export.onnx_int8.recipes``), side by side.

    python benchmarks/bench_int8.py --model runs/student --data ../shared/datasets/glue/QNLI/dev.tsv \\
        --max-length 128 [--limit-rows 1000] [--rounds 10]

For each recipe: the int8 file is written from the model's fp32 export, its logits on ``--parity`` rows of the
data (the export's own parity rows: same seed and sampling) are compared with PyTorch fp32 (argmax agreement;
for a 1-logit score model, pair-order agreement, which is what the export checks), and the ONNX Runtime
sessions of fp32 and every recipe are timed interleaved on batches of 32 real rows (2 threads), reported as
ex/s and as a ratio to fp32. Static recipes calibrate on other rows of the data, as the export does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    from bertdistill.data.sources import DataSpec
    from bertdistill.export import ExportConfig, export_model
    from bertdistill.export.exporter import _calibration_batches, _num_layers
    from bertdistill.export.onnx_int8 import Int8Recipe, quantize_int8, recipes
    from bertdistill.export.parity import compare_logits, real_batches, run_batches
    from bertdistill.inference import ONNX_FP32, ONNX_INT8, load_scorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--columns", help="for headerless files, e.g. query,passage,label")
    parser.add_argument("--text-a")
    parser.add_argument("--text-b")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--parity", type=int, default=256, help="parity rows (the export's default)")
    parser.add_argument("--rounds", type=int, default=10, help="timed batches per session")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--more", action="store_true", help="also static with percentile and entropy calibration")
    args = parser.parse_args()
    spec = DataSpec(path=args.data, columns=args.columns.split(",") if args.columns else None, text_a=args.text_a,
                    text_b=args.text_b, unlabeled=True)
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        out = Path(tmp) / "export"
        config = ExportConfig(model=args.model, output=str(out), data=spec, parity_examples=args.parity,
                              max_length=args.max_length, threads=args.threads)
        export_model(config)
        torch_scorer = load_scorer(args.model, "torch", threads=args.threads)
        batches, info = real_batches(torch_scorer.tokenizer, spec, args.parity, args.max_length, 32, 0)
        reference = run_batches(torch_scorer, batches)
        calibration = _calibration_batches(torch_scorer.tokenizer, config)
        sessions = {"fp32": load_scorer(str(out), "onnx", threads=args.threads)}
        rows = []
        candidates = recipes(_num_layers(torch_scorer.config), calibration=True)
        if args.more:  # other calibrations of the static recipe, to compare
            candidates += [Int8Recipe(static=True, calibration=c) for c in ("percentile", "entropy")]
        for k, recipe in enumerate(candidates):
            target = Path(tmp) / f"r{k}"
            target.mkdir()
            for f in out.iterdir():  # tokenizer, config, report: a loadable directory per recipe
                if f.is_file() and f.suffix != ".onnx":
                    (target / f.name).write_bytes(f.read_bytes())
            (target / ONNX_FP32).symlink_to(out / ONNX_FP32)
            start = time.perf_counter()
            quantize_int8(out / ONNX_FP32, target / ONNX_INT8, "legacy", target, True, recipe, calibration)
            seconds = time.perf_counter() - start
            scorer = load_scorer(str(target), "onnx-int8", threads=args.threads)
            result = compare_logits(reference, run_batches(scorer, batches))
            agreement = result.order_agreement if result.order_agreement is not None else result.argmax_agreement
            rows.append((recipe.name, agreement, result.argmax_agreement, result.max_abs_diff, seconds))
            sessions[recipe.name] = scorer
        timing = {name: [] for name in sessions}
        names = list(sessions)
        for name in names:  # warm-up
            sessions[name].logits(batches[0])
        for r in range(args.rounds):
            batch = batches[r % len(batches)]
            for k in range(len(names)):
                name = names[(k + r) % len(names)]
                t0 = time.perf_counter()
                sessions[name].logits(batch)
                timing[name].append(time.perf_counter() - t0)
        fp32 = timing["fp32"]
        kind = "pair-order" if len(reference.shape) == 2 and reference.shape[1] == 1 else "argmax"
        print(f"{args.model}: {info['rows_used']} parity rows of {info['source']} (mean {info['mean_tokens']:.0f} "
              f"tokens, max {info['max_tokens']}); agreement = {kind} agreement with PyTorch fp32; speed: ONNX "
              f"Runtime, batches of 32, {args.threads} threads, {args.rounds} rounds interleaved, "
              f"time ratio = median over rounds of recipe/fp32 on the same batch")
        print(f"  {'recipe':34s} {'agreement':>9s} {'argmax':>7s} {'max |diff|':>10s} {'ex/s':>7s} "
              f"{'time vs fp32':>12s} {'quantize s':>10s}")
        for name in names:
            ts = timing[name]
            ratio = statistics.median(t / f for t, f in zip(ts, fp32))
            rate = statistics.median(len(batches[r % len(batches)]["input_ids"]) / t for r, t in enumerate(ts))
            row = next((x for x in rows if x[0] == name), None)
            if row is None:
                print(f"  {'fp32':34s} {'1.0000':>9s} {'1.0000':>7s} {'-':>10s} {rate:7.1f} {ratio:11.2f}x {'-':>10s}")
            else:
                print(f"  {name:34s} {row[1]:9.4f} {row[2]:7.4f} {row[3]:10.3g} {rate:7.1f} {ratio:11.2f}x "
                      f"{row[4]:10.1f}")


if __name__ == "__main__":
    main()
