"""The demo's last word: does the student answer as well as the teacher, several times faster?

Reads the bench JSON (its `fastest` entries: each model at its fastest backend) and prints the student's
share of the teacher's main metric and its speed against the teacher's fastest backend, with the demo's
targets (≥ 95% of the metric at ≥ 3× the teacher's fastest backend). The speed target is judged on the
paired median (per timed round, the same batch through both models), which a shared machine's slow
moments sway less than the ratio of mean throughputs; both are printed. Exit status 0 either way: the
demo shows the figures; the tests check the commands.
    python examples/demo/verdict.py runs/demo/bench.json [--seconds N]
"""

from __future__ import annotations

import argparse
import json

MIN_RETENTION = 0.95
MIN_SPEEDUP = 3.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench_json")
    parser.add_argument("--seconds", type=int, help="wall time of the demo, to print")
    args = parser.parse_args()
    result = json.load(open(args.bench_json))
    metric = result["main_metric"].upper() if result["main_metric"] == "map" else result["main_metric"]
    fastest = result["fastest"]
    teacher = next(f for f in fastest if result["baseline"] in f["rows"])
    students = [f for f in fastest if f is not teacher]
    top_bs = result["settings"]["batch_sizes"][-1]
    print()
    print(f"teacher at its fastest backend ({teacher['backend']}): {teacher['throughput_ex_s']:.0f} ex/s at batch "
          f"{top_bs}, test {metric} {teacher['main_metric']:.4f}")
    for s in students:
        speedup = s.get("speedup_paired_median") or s["speedup_vs_baseline_fastest"]
        ok = s["retention_vs_baseline_fastest"] >= MIN_RETENTION and speedup >= MIN_SPEEDUP
        print(f"{s['model']} at its fastest backend ({s['backend']}): {s['throughput_ex_s']:.0f} ex/s, "
              f"{speedup:.2f}× the teacher's fastest (paired median; ratio of mean throughputs "
              f"{s['speedup_vs_baseline_fastest']:.2f}×), test {metric} {s['main_metric']:.4f} = "
              f"{100 * s['retention_vs_baseline_fastest']:.1f}% of the teacher's "
              f"(targets ≥ {100 * MIN_RETENTION:.0f}% at ≥ {MIN_SPEEDUP:.0f}×: {'met' if ok else 'MISSED'})")
    if args.seconds is not None:
        print(f"demo wall time: {args.seconds // 60} min {args.seconds % 60} s")


if __name__ == "__main__":
    main()
