"""int8 recipes on real students: agreement with PyTorch fp32 and ONNX Runtime speed of every recipe
``bertdistill export --int8`` can choose (``bertdistill.export.onnx_int8.recipes``), side by side.

    python benchmarks/bench_int8.py --model runs/student --data ../shared/datasets/glue/QNLI/dev.tsv \\
        --max-length 128 [--limit-rows 1000] [--rounds 10]

For each recipe: the int8 file is written from the model's fp32 export, its logits on ``--parity`` rows of the
data (the export's own parity rows: same seed and sampling) are compared with PyTorch fp32 (argmax agreement;
for a 1-logit score model, pair-order agreement, which is what the export checks), and the ONNX Runtime
sessions of fp32 and every recipe are timed interleaved on batches of 32 real rows (2 threads), reported as
ex/s and as a ratio to fp32. Static recipes calibrate on other rows of the data, as the export does.
"kept" marks the recipe ``export --int8`` keeps: the first, in the export's order, whose agreement reaches
``--min-agreement`` (the export's threshold, 0.99 by default); the export compares the same parity rows with
the same rule. With ``--eval-data`` (labeled rows, e.g. the MRPC test set) each model's accuracy on every
row of it is reported too: PyTorch fp32, ONNX fp32 and every recipe.

    python benchmarks/bench_int8.py --model runs/mpnet-mrpc/students/a-kd-s1 \
        --data ../shared/datasets/glue/MRPC/dev.tsv --eval-data ../shared/datasets/glue/MRPC/msr_paraphrase_test.txt
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
    import numpy as np

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
    parser.add_argument("--min-agreement", type=float, default=0.99,
                        help="the export's --int8-min-agreement, to mark the recipe it keeps")
    parser.add_argument("--eval-data", help="labeled rows: accuracy of fp32 and every recipe on all of them")
    parser.add_argument("--eval-recipes", choices=("all", "before-after"), default="all",
                        help="which recipes get a test accuracy: all, or dynamic and the kept one (large models)")
    parser.add_argument("--stop-at-kept", action="store_true",
                        help="stop at the recipe the export keeps, as the export does, and time only fp32, "
                             "dynamic and that one (for large models on small machines)")
    parser.add_argument("--eval-columns", help="for a headerless --eval-data, e.g. query,passage,label")
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
        accuracy = {}
        if args.eval_data:
            from bertdistill.data.sources import load_task_data
            from bertdistill.metrics import predicted_ids
            from bertdistill.inference.scorer import predict_logits

            test = load_task_data(DataSpec(path=args.eval_data, columns=args.eval_columns.split(",")
                                           if args.eval_columns else None), label_names=torch_scorer.label_names,
                                  require_labels=True)
            gold = np.asarray(test.column("label"))

            def test_accuracy(scorer) -> float:
                logits = predict_logits(scorer, test, args.max_length, 32)
                return float((predicted_ids(logits, torch_scorer.label_names) == gold).mean())

            accuracy["PyTorch fp32"] = test_accuracy(torch_scorer)
            accuracy["fp32"] = test_accuracy(sessions["fp32"])
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
            passed = recipe in recipes(_num_layers(torch_scorer.config), calibration=True) and \
                agreement >= args.min_agreement
            if not args.stop_at_kept or recipe.name == "dynamic" or passed:
                sessions[recipe.name] = scorer
            if args.eval_data and args.eval_recipes == "all":
                accuracy[recipe.name] = test_accuracy(scorer)
            print(f"  {recipe.name}: agreement {agreement:.4f}"
                  + (f", test accuracy {accuracy[recipe.name]:.4f}" if recipe.name in accuracy else ""), flush=True)
            if args.stop_at_kept and passed:
                break
        base = [r for r in recipes(_num_layers(torch_scorer.config), calibration=True)]
        kept = next((r[0] for r in rows if any(r[0] == b.name for b in base) and r[1] >= args.min_agreement), None)
        if args.eval_data and args.eval_recipes == "before-after":  # dynamic (before) and the kept one (after)
            for name in {"dynamic", kept} - {None}:
                accuracy[name] = test_accuracy(sessions[name])
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
              f"time ratio = median over rounds of recipe/fp32 on the same batch"
              + (f"; test acc = accuracy on all {len(gold)} rows of {test.spec.describe()}" if args.eval_data else ""))
        if args.eval_data:
            print(f"  PyTorch fp32 test accuracy {accuracy['PyTorch fp32']:.4f}")
        print(f"  {'recipe':34s} {'agreement':>9s} {'argmax':>7s} {'max |diff|':>10s} {'ex/s':>7s} "
              f"{'time vs fp32':>12s} {'quantize s':>10s}" + (f" {'test acc':>8s}" if args.eval_data else "")
              + "  export keeps")
        for name in ["fp32"] + [x[0] for x in rows]:  # recipes not timed (--stop-at-kept) show "-"
            ts = timing.get(name)
            if ts:
                ratio = f"{statistics.median(t / f for t, f in zip(ts, fp32)):11.2f}x"
                rate = f"{statistics.median(len(batches[r % len(batches)]['input_ids']) / t for r, t in enumerate(ts)):7.1f}"
            else:
                ratio, rate = f"{'-':>12s}", f"{'-':>7s}"
            row = next((x for x in rows if x[0] == name), None)
            acc = (f" {accuracy[name]:8.4f}" if name in accuracy else f" {'-':>8s}") if args.eval_data else ""
            if row is None:
                print(f"  {'fp32':34s} {'1.0000':>9s} {'1.0000':>7s} {'-':>10s} {rate} {ratio} {'-':>10s}{acc}")
            else:
                print(f"  {name:34s} {row[1]:9.4f} {row[2]:7.4f} {row[3]:10.3g} {rate} {ratio} "
                      f"{row[4]:10.1f}{acc}  {'<- kept' if name == kept else ''}")
        if kept is None:
            print(f"  export keeps no int8 file: no recipe reaches agreement {args.min_agreement:g}")


if __name__ == "__main__":
    main()
