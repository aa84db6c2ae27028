"""Two CPU processes (gloo) give the same result as one process with the same global batch.

Launched with `accelerate launch --multi_gpu --num_processes 2`: on a machine without GPUs that starts
two processes through torchrun and Accelerate runs them as MULTI_CPU with gloo (its `--cpu` mode would
need mpirun for more than one process).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store

WORKER = '''
import json, sys
from bertdistill.config import load_config
from bertdistill.training.config import FinetuneConfig
from bertdistill.training.finetune import finetune
finetune(load_config(FinetuneConfig, sys.argv[1]), show_progress=False)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_dropout(model_dir: Path) -> Path:
    # Dropout masks depend on how the batch is split, so compare without dropout.
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model_dir / "config.json").write_text(json.dumps(cfg))
    return model_dir


def test_two_processes_match_one(tmp_path):
    from bertdistill.config import save_config
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig, TrainConfig
    from bertdistill.training.finetune import finetune
    from bertdistill.training.guards import GuardConfig

    teacher = make_tiny_bert(tmp_path / "t", layers=2, seed=1)
    student = _no_dropout(make_tiny_bert(tmp_path / "s", layers=2, seed=2, classifier=False))
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    dev = write_toy_pairs(tmp_path / "dev.tsv", n=16, seed=2)
    store = make_store(tmp_path / "store", train, {"t": teacher})
    dev_store = make_store(tmp_path / "dev_store", dev, {"t": teacher}, layers="none")

    def config(out, batch):
        return FinetuneConfig(train_data=DataSpec(path=str(train)), eval_data=DataSpec(path=str(dev)),
                              labels=str(store), eval_labels=str(dev_store), output=str(tmp_path / out),
                              student=StudentConfig(source=str(student)),
                              train=TrainConfig(epochs=1, batch_size=batch, lr=1e-3, warmup_ratio=0, seed=0,
                                                max_length=32, save_every=None, best_metric="distill_loss"),
                              distill=DistillConfig(alpha=0.5, pkd="last", pkd_beta=1.0),
                              guards=GuardConfig(allow_collapsed=True))  # a tiny run: its verdict is not the point

    finetune(config("one", 8), show_progress=False)
    save_config(config("two", 4), tmp_path / "two.json")
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(tmp_path / "worker.py"), str(tmp_path / "two.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    start = load_file(str(student / "model.safetensors"))
    key = "encoder.layer.1.output.dense.weight"
    assert not torch.allclose(one["bert." + key], start.get(key, start.get("bert." + key)))  # it trained
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-4), key
    rec1 = json.loads((tmp_path / "one" / "training_record.json").read_text())
    rec2 = json.loads((tmp_path / "two" / "training_record.json").read_text())
    assert rec1["summary"]["steps"] == rec2["summary"]["steps"] == 4
    e1, e2 = rec1["evaluations"][-1], rec2["evaluations"][-1]
    assert abs(e1["distill_loss"] - e2["distill_loss"]) < 1e-4 and e1["accuracy"] == e2["accuracy"]
