"""pretrain-student (TMKD stage 1): imitates the teachers on unlabeled pairs; finetune takes its output."""

import json

import pytest

from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store, small_train


def _config(tmp_path, corpus, store, teacher, out="stage1", **kw):
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, PretrainConfig, StudentConfig

    train = kw.pop("train", None) or small_train(epochs=4, batch_size=8, lr=2e-3, save_every=None)
    return PretrainConfig(train_data=DataSpec(path=str(corpus)), labels=str(store), eval_fraction=0.25,
                          output=str(tmp_path / out), student=StudentConfig(source=str(teacher), layers=2),
                          train=train, distill=DistillConfig(temperature=1.0, pkd="skip", pkd_beta=1.0), **kw)


@pytest.fixture()
def stage1_inputs(tmp_path):
    t1 = make_tiny_bert(tmp_path / "t1", layers=4, seed=1)
    t2 = make_tiny_bert(tmp_path / "t2", layers=4, seed=2)
    corpus = write_toy_pairs(tmp_path / "corpus.tsv", n=64, seed=3)
    store = make_store(tmp_path / "corpus.store", corpus, {"t1": t1, "t2": t2})
    return t1, t2, corpus, store


def test_stage1_learns_teachers_and_feeds_stage2(tmp_path, stage1_inputs):
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune
    from bertdistill.training.pretrain import pretrain_student

    t1, t2, corpus, store = stage1_inputs
    result = pretrain_student(_config(tmp_path, corpus, store, t1), show_progress=False)
    first, best = result.evaluations[0], min(result.evaluations, key=lambda e: e["distill_loss"])
    assert first["step"] == 0 and "accuracy" not in first
    assert best["distill_loss"] < 0.8 * first["distill_loss"], result.evaluations
    assert best["teacher_agreement"] >= first["teacher_agreement"]
    assert all(-1 <= e["teacher_rank_corr"] <= 1 for e in result.evaluations)  # 16 held-out rows: too few to trend
    out = tmp_path / "stage1"
    assert (out / "teacher_heads.json").is_file()
    record = json.loads((out / "training_record.json").read_text())
    assert record["objective"]["weights"]["hard"] == 0 and record["command"] == "pretrain-student"

    train = write_toy_pairs(tmp_path / "train.tsv", n=24, seed=4)
    train_store = make_store(tmp_path / "train.store", train, {"t1": t1, "t2": t2}, layers="none")
    cfg = FinetuneConfig(train_data=DataSpec(path=str(train)), labels=str(train_store),
                         output=str(tmp_path / "stage2"), student=StudentConfig(source=str(out)),
                         train=small_train(epochs=1), distill=DistillConfig(alpha=0.5))
    finetune(cfg, show_progress=False)
    record = json.loads((tmp_path / "stage2" / "training_record.json").read_text())
    assert record["student"]["heads_from"] == "restored from the source's per-teacher heads"
    assert record["student"]["layers"] == 2


def test_stage1_time_budget_then_resume(tmp_path, stage1_inputs):
    from bertdistill.training.pretrain import pretrain_student

    t1, _, corpus, store = stage1_inputs
    budget = small_train(max_steps=5, batch_size=8, save_every=None, time_budget=1e-6)
    stopped = pretrain_student(_config(tmp_path, corpus, store, t1, train=budget), show_progress=False)
    assert stopped.stopped_by == "time_budget" and stopped.steps == 1
    assert (tmp_path / "stage1" / "checkpoints").is_dir()
    more = small_train(max_steps=5, batch_size=8, save_every=None)
    done = pretrain_student(_config(tmp_path, corpus, store, t1, train=more, resume=True), show_progress=False)
    assert done.steps == 5 and done.stopped_by == "done"
    assert not (tmp_path / "stage1" / "checkpoints").exists()
