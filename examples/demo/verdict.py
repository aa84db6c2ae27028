"""The demo's last word: does the student answer as well as the teacher, several times faster?

Reads the bench JSON and prints the student's share of the teacher's main metric and its speed against the
teacher's fastest backend, with the demo's targets (≥ 95% of the metric at ≥ 3× the teacher's fastest
backend). The verdict does not hang on which backend wins a timing race:

* the teacher's metric is its best over all its backends (whichever of them was timed fastest);
* the student's metric is its lowest over the backends within 10% of its fastest throughput: any of those
  could have won the race, so the verdict holds for each;
* the speed is the paired median (per timed round, the same batch through the student's fastest and the
  teacher's fastest backend), which a shared machine's slow moments sway less than the ratio of mean
  throughputs; both are printed. Near a tie the speed ratio barely moves whichever backend won.

Exit status 0 either way: the demo shows the figures; the tests check the commands.
    python examples/demo/verdict.py runs/demo/bench.json [--seconds N]
"""

from __future__ import annotations

import argparse
import json

MIN_RETENTION = 0.95
MIN_SPEEDUP = 3.0
CONTENDERS = 0.90
"""Backends within this share of a model's fastest throughput count as possible winners of its timing."""


def judge(result: dict) -> list[dict]:
    """One verdict per student model: its figures and whether both targets are met."""
    main = result["main_metric"]
    top_bs = str(result["settings"]["batch_sizes"][-1])
    rows = {m["name"]: m for m in result["models"]}
    fastest = result["fastest"]
    teacher = next(f for f in fastest if result["baseline"] in f["rows"])
    teacher_best_row = max(teacher["rows"], key=lambda r: rows[r]["metrics"].get(main, float("-inf")))
    teacher_best = rows[teacher_best_row]["metrics"][main]
    out = []
    for s in fastest:
        if s is teacher:
            continue
        top = s["throughput_ex_s"] or 0.0
        contenders = [r for r in s["rows"] if (rows[r]["throughput_ex_s"].get(top_bs) or 0.0) >= CONTENDERS * top]
        worst = min(contenders, key=lambda r: rows[r]["metrics"].get(main, float("inf")))
        metric = rows[worst]["metrics"][main]
        speedup = s.get("speedup_paired_median") or s["speedup_vs_baseline_fastest"]
        retention = metric / teacher_best
        out.append({"model": s["model"], "backend": s["backend"], "throughput": top, "speedup": speedup,
                    "speedup_means": s["speedup_vs_baseline_fastest"], "metric": metric, "metric_row": worst,
                    "contenders": contenders, "retention": retention, "teacher_best": teacher_best,
                    "teacher_best_row": teacher_best_row,
                    "met": retention >= MIN_RETENTION and speedup >= MIN_SPEEDUP})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench_json")
    parser.add_argument("--seconds", type=int, help="wall time of the demo, to print")
    args = parser.parse_args()
    result = json.load(open(args.bench_json))
    metric = result["main_metric"].upper() if result["main_metric"] == "map" else result["main_metric"]
    teacher = next(f for f in result["fastest"] if result["baseline"] in f["rows"])
    top_bs = result["settings"]["batch_sizes"][-1]
    verdicts = judge(result)
    print()
    print(f"teacher at its fastest backend ({teacher['backend']}): {teacher['throughput_ex_s']:.0f} ex/s at batch "
          f"{top_bs}; its best test {metric} over its backends: {verdicts[0]['teacher_best']:.4f} "
          f"({verdicts[0]['teacher_best_row']})" if verdicts else "")
    for v in verdicts:
        near = [r for r in v["contenders"] if r != v["model"]]
        print(f"{v['model']} at its fastest backend ({v['backend']}): {v['throughput']:.0f} ex/s, "
              f"{v['speedup']:.2f}× the teacher's fastest (paired median; ratio of mean throughputs "
              f"{v['speedup_means']:.2f}×), test {metric} {v['metric']:.4f} ({v['metric_row']}"
              + (f", the lowest of {', '.join(v['contenders'])}: within {100 - 100 * CONTENDERS:.0f}% of its fastest"
                 if near else "") + f") = {100 * v['retention']:.1f}% of the teacher's best "
              f"(targets ≥ {100 * MIN_RETENTION:.0f}% at ≥ {MIN_SPEEDUP:.0f}×: {'met' if v['met'] else 'MISSED'})")
    if args.seconds is not None:
        print(f"demo wall time: {args.seconds // 60} min {args.seconds % 60} s")


if __name__ == "__main__":
    main()
