"""Benchmark ``bertdistill corpus --mine bm25``: time and peak memory of mining ~200k pairs.

Target (issue 15): 200k mined pairs (~10k queries x top-20 over a ~100k-passage pool) in <= 2 minutes
and <= 2 GB peak RSS on 2 cores.

    python benchmarks/bench_mine.py                     # 10,000 queries, top-20, the shared pool
    python benchmarks/bench_mine.py --queries 5000 --top-k 8 --random-ratio 0.25

Pool (all ../shared/datasets): WikiQA train sentences (the --data passages), QNLI dev/test sentences,
MRPC train/dev/test sentences, SST-2 train/dev/test sentences, SNLI dev/test sample sentences:
100,448 distinct passages after normalization (about 100k, so the figures are at the real size;
``--replicate N`` adds N varied copies of every pool passage to test a larger pool).
Queries: WikiQA train questions (the --data queries) and QNLI dev/test questions give 7,574
distinct questions; the rest, up to ``--queries``, are MRPC train first sentences used as queries.

The miner runs as its own ``python -m bertdistill corpus`` process: the wall time includes start-up
and reading the sources, and the peak RSS is that process's, from ``resource.getrusage``
(RUSAGE_CHILDREN) once it has exited. Nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
W = SHARED / "wikiqa"
GLUE = SHARED / "glue"
SNLI = SHARED / "snli_sample"

POOL = [f"{GLUE}/QNLI/dev.tsv:sentence", f"{GLUE}/QNLI/test.tsv:sentence",
        f"{GLUE}/MRPC/train.tsv:#1 String,#2 String", f"{GLUE}/MRPC/dev.tsv:#1 String,#2 String",
        f"{GLUE}/MRPC/msr_paraphrase_test.txt:#1 String,#2 String",
        f"{GLUE}/SST-2/train.tsv:sentence", f"{GLUE}/SST-2/dev.tsv:sentence", f"{GLUE}/SST-2/test-labeled.tsv:sentence",
        f"{SNLI}/snli_1.0_dev.head.jsonl:sentence1,sentence2", f"{SNLI}/snli_1.0_test.head.jsonl:sentence1,sentence2"]
QUESTIONS = [f"{GLUE}/QNLI/dev.tsv:question", f"{GLUE}/QNLI/test.tsv:question"]
FILL_QUERIES = f"{GLUE}/MRPC/train.tsv:#1 String"
VARIATIONS = ["{} (revised)", "In short, {}", "{} - as reported", "Note: {}", "{} (see above)"]


def query_file(path: Path, n: int) -> tuple[Path, int, int]:
    """Questions beyond WikiQA's, then MRPC sentences, up to ``n`` distinct queries in all."""
    from bertdistill.data.texts import iter_texts, parse_text_source, text_key

    seen = {text_key(t) for t in iter_texts(parse_text_source(f"{W}/WikiQA-train.txt:1"), "query")}
    lines: list[str] = []
    questions = len(seen)
    for src in QUESTIONS + [FILL_QUERIES]:
        for text in iter_texts(parse_text_source(src), "query"):
            key = text_key(text)
            if len(seen) >= n:
                break
            if key and key not in seen and "\t" not in text:
                seen.add(key)
                lines.append(text)
                questions += src in QUESTIONS
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, questions, len(seen) - questions


def replicated_pool(path: Path, copies: int) -> Path:
    """``copies`` varied copies of every pool passage, one per line (for pools larger than the shared one)."""
    from bertdistill.data.texts import iter_texts, parse_text_source

    with path.open("w", encoding="utf-8") as fh:
        for src in POOL:
            for text in iter_texts(parse_text_source(src), "passage"):
                text = " ".join(text.split())
                for c in range(copies):
                    fh.write(VARIATIONS[c % len(VARIATIONS)].format(text) + (f" [{c}]" if c >= len(VARIATIONS) else "")
                             + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10_000, help="distinct queries in all (default 10,000)")
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--random-ratio", type=float, default=0.0)
    ap.add_argument("--replicate", type=int, default=0, help="add N varied copies of every pool passage")
    ap.add_argument("--keep", type=Path, help="also copy the corpus here")
    args = ap.parse_args()
    if not W.is_dir():
        sys.exit(f"shared data sets not found at {SHARED}")

    with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp:
        tmp = Path(tmp)
        queries, questions, fill = query_file(tmp / "queries.txt", args.queries)
        passages = list(POOL)
        if args.replicate:
            passages.append(str(replicated_pool(tmp / "pool.txt", args.replicate)))
        out = tmp / "corpus.jsonl"
        cmd = [sys.executable, "-m", "bertdistill", "corpus",
               "--data", str(W / "WikiQA-train.txt"), "--columns", "query,passage,label", "--task", "ranking",
               "--mine", "bm25", "--top-k", str(args.top_k), "--random-ratio", str(args.random_ratio),
               "--queries", str(queries), *[a for p in passages for a in ("--passages", p)],
               "--output", str(out)]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        if proc.returncode != 0:
            sys.exit(f"corpus failed ({proc.returncode}):\n{proc.stdout}")
        report = json.loads(Path(str(out) + ".meta.json").read_text())["report"]
        if args.keep:
            args.keep.write_bytes(out.read_bytes())

    mined = report["new_bm25"] + report["new_cross_query"]
    print(" ".join(proc.stdout.split()))
    print(f"queries: {report['queries']:,} ({questions:,} WikiQA/QNLI questions + {fill:,} MRPC sentences); "
          f"pool: {report['passages']:,} passages" + (" (below 100k: real size)" if report["passages"] < 100_000 else ""))
    print(f"pairs: {report['total_pairs']:,} written, {mined:,} mined (top-{args.top_k}, random ratio "
          f"{args.random_ratio}), origins {report['origins']}")
    print(f"time: {wall:.1f} s wall for the whole process ({report['seconds']:.1f} s inside mine_corpus), "
          f"{mined / wall:,.0f} mined pairs/s; peak RSS: {peak_mb:,.0f} MB")
    ok_time, ok_mem = wall <= 120, peak_mb <= 2048
    print(f"target <= 120 s and <= 2048 MB: {'met' if ok_time and ok_mem else 'MISSED'}"
          f" (time {'ok' if ok_time else 'over'}, memory {'ok' if ok_mem else 'over'})")


if __name__ == "__main__":
    main()
