"""Several machines: two `accelerate launch --num_machines 2 --machine_rank 0|1` processes started
together on this one machine (gloo on the CPU, 127.0.0.1 as the main node) give the same label store
and the same trained weights as one process.

Each "node" is launched as a user would on a cluster node; `--multi_gpu` on a machine without GPUs makes
Accelerate start torchrun (`--nnodes 2 --node_rank R`) and run MULTI_CPU with gloo. Helpers for the
training runs come from test_distributed (the one-machine, two-process case).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_bert, write_toy_pairs
from test_distributed import WORKER, _free_port, _no_dropout
from test_finetune import make_store, small_train

REPO = Path(__file__).resolve().parents[1]

PRETRAIN_WORKER = '''
import sys
from bertdistill.config import load_config
from bertdistill.training.config import PretrainConfig
from bertdistill.training.pretrain import pretrain_student
pretrain_student(load_config(PretrainConfig, sys.argv[1]), show_progress=False)
'''


def launch(script: list[str], machines: int, processes: int, timeout: int = 300) -> None:
    """Run ``accelerate launch`` once per machine, all at once, each with its ``--machine_rank``.
    ``script``: a Python file and its arguments, or ``-m module ...``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("LOCAL_RANK", None)
    port = _free_port()
    procs = []
    for rank in range(machines):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", str(machines), "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
               "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no", *script]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=timeout)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for rank, (proc, out) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"machine {rank}:\n{out[-3000:]}"


@pytest.mark.parametrize("machines", [1, 2], ids=["one-machine-2-processes", "two-machines"])
def test_label_distributed_matches_one_process(tmp_path, machines):
    from bertdistill.data.sources import DataSpec
    from bertdistill.teachers.label import LabelConfig, label
    from bertdistill.teachers.store import LabelStore

    t1 = make_tiny_bert(tmp_path / "t1", layers=2, seed=1)
    t2 = make_tiny_bert(tmp_path / "t2", layers=3, seed=2)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=45, seed=4)
    common = ["--teacher", f"a={t1}", "--teacher", f"b={t2}", "--data", str(data), "--max-length", "32",
              "--hidden-layers", "all", "--shard-rows", "7", "--batch-size", "4", "--device", "cpu", "--quiet"]
    launch(["-m", "bertdistill", "label", *common, "--output", str(tmp_path / "many")], machines, processes=2)
    one = label(LabelConfig(teachers=[f"a={t1}", f"b={t2}"], data=DataSpec(path=str(data)),
                            output=str(tmp_path / "one"), max_length=32, hidden_layers="all", shard_rows=7,
                            batch_size=4, device="cpu", quiet=True))
    a, b = LabelStore.open(one), LabelStore.open(tmp_path / "many")
    assert a.num_rows == b.num_rows == 45 and a.teacher_names == b.teacher_names == ["a", "b"]
    for t in ("a", "b"):
        np.testing.assert_allclose(b.logits(t), a.logits(t), atol=1e-5)
        layers = a.stored_layers(t)
        np.testing.assert_allclose(b.hidden(t, range(45), layers), a.hidden(t, range(45), layers), atol=1e-3)
    assert not list(tmp_path.glob("many.partial*")) and not list(tmp_path.glob(".many.input-*"))


def _same_weights(one: Path, many: Path, start: Path) -> None:
    w1 = load_file(str(one / "model.safetensors"))
    w2 = load_file(str(many / "model.safetensors"))
    w0 = load_file(str(start / "model.safetensors"))
    key = "encoder.layer.1.output.dense.weight"
    assert not torch.allclose(w1["bert." + key], w0.get(key, w0.get("bert." + key)))  # it trained
    assert set(w1) == set(w2)
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-4), k


def test_finetune_two_machines_matches_one_process(tmp_path):
    from bertdistill.config import save_config
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig, TrainConfig
    from bertdistill.training.finetune import finetune

    teacher = make_tiny_bert(tmp_path / "t", layers=2, seed=1)
    student = _no_dropout(make_tiny_bert(tmp_path / "s", layers=2, seed=2, classifier=False))
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    store = make_store(tmp_path / "store", train, {"t": teacher})

    def config(out, batch):
        return FinetuneConfig(train_data=DataSpec(path=str(train)), labels=str(store), output=str(tmp_path / out),
                              student=StudentConfig(source=str(student)),
                              train=TrainConfig(epochs=1, batch_size=batch, lr=1e-3, warmup_ratio=0, seed=0,
                                                max_length=32, save_every=None, best_metric="distill_loss"),
                              distill=DistillConfig(alpha=0.5, pkd="last", pkd_beta=1.0))

    finetune(config("one", 8), show_progress=False)
    save_config(config("two", 4), tmp_path / "two.json")  # 2 machines × 1 process × 4 = the same global batch
    (tmp_path / "worker.py").write_text(WORKER)
    launch([str(tmp_path / "worker.py"), str(tmp_path / "two.json")], machines=2, processes=2)
    _same_weights(tmp_path / "one", tmp_path / "two", student)


def test_pretrain_student_two_machines_matches_one_process(tmp_path):
    from bertdistill.config import save_config
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, PretrainConfig, StudentConfig
    from bertdistill.training.pretrain import pretrain_student

    teacher = make_tiny_bert(tmp_path / "t", layers=4, seed=1)
    source = _no_dropout(make_tiny_bert(tmp_path / "s", layers=4, seed=2))  # not the teacher: it has to learn
    corpus = write_toy_pairs(tmp_path / "corpus.tsv", n=32, seed=3)
    store = make_store(tmp_path / "corpus.store", corpus, {"t": teacher})

    def config(out, batch):
        # No held-out part: the final weights are kept (tiny random teachers make step 0 the "best").
        return PretrainConfig(train_data=DataSpec(path=str(corpus)), labels=str(store), eval_fraction=0.0,
                              output=str(tmp_path / out), student=StudentConfig(source=str(source), layers=2),
                              train=small_train(epochs=1, batch_size=batch, lr=2e-3, best_metric="distill_loss"),
                              distill=DistillConfig(temperature=1.0, pkd="skip", pkd_beta=1.0))

    pretrain_student(config("one", 8), show_progress=False)
    save_config(config("two", 4), tmp_path / "two.json")
    (tmp_path / "worker.py").write_text(PRETRAIN_WORKER)
    launch([str(tmp_path / "worker.py"), str(tmp_path / "two.json")], machines=2, processes=2)
    _same_weights(tmp_path / "one", tmp_path / "two", source)
