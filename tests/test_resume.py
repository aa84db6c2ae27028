"""An interrupted (Ctrl-C) distillation run resumed with --resume ends exactly like an uninterrupted one."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store, small_train


def _config(tmp_path, out, store, train, teacher, **kw):
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig

    return FinetuneConfig(train_data=DataSpec(path=str(train)), labels=str(store), output=str(tmp_path / out),
                          student=StudentConfig(source=str(teacher), layers=2),
                          train=small_train(epochs=2, grad_accum=2, save_every=1, lr=5e-4),
                          distill=DistillConfig(alpha=0.5, pkd="skip", pkd_beta=1.0), **kw)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from bertdistill.errors import UserError
    from bertdistill.io import read_json
    from bertdistill.training import batches
    from bertdistill.training.checkpoints import STATE_FILE, latest_checkpoint
    from bertdistill.training.finetune import finetune

    teacher = make_tiny_bert(tmp_path / "t", layers=4, seed=1)
    train = write_toy_pairs(tmp_path / "train.tsv", n=40, seed=1)
    store = make_store(tmp_path / "store", train, {"t": teacher})

    straight = finetune(_config(tmp_path, "a", store, train, teacher), show_progress=False)
    assert straight.steps == 6

    calls = {"n": 0}
    real_batch = batches.TrainSet.batch

    def interrupting_batch(self, indices):
        if self.teachers is not None:  # training batches only, not evaluation batches
            calls["n"] += 1
            if calls["n"] == 8:  # first micro-batch of the 2nd update of epoch 2
                raise KeyboardInterrupt
        return real_batch(self, indices)

    monkeypatch.setattr(batches.TrainSet, "batch", interrupting_batch)
    with pytest.raises(UserError, match="--resume"):
        finetune(_config(tmp_path, "b", store, train, teacher), show_progress=False)
    state = read_json(latest_checkpoint(tmp_path / "b") / STATE_FILE)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (4, 1, 2)
    monkeypatch.setattr(batches.TrainSet, "batch", real_batch)

    with pytest.raises(UserError, match="already exists"):
        finetune(_config(tmp_path, "b", store, train, teacher), show_progress=False)
    resumed = finetune(_config(tmp_path, "b", store, train, teacher, resume=True), show_progress=False)
    assert resumed.steps == 6
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(UserError, match="already finished"):
        finetune(_config(tmp_path, "b", store, train, teacher, resume=True), show_progress=False)
