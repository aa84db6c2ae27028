"""finetune: plain fine-tuning learns a toy task; distillation (KD, TMKD heads, avg, PKD) end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import make_tiny_bert, write_toy_pairs


def make_store(path: Path, data_path: Path, teachers: dict[str, Path], layers: str = "all", **spec_kw) -> Path:
    """A label store from the teachers' direct forward passes (the format ``bertdistill label`` writes)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.teachers.store import write_label_store

    data = load_task_data(DataSpec(path=str(data_path), **spec_kw))
    logits, hidden, meta_teachers = [], [], []
    for name, tdir in teachers.items():
        model = AutoModelForSequenceClassification.from_pretrained(tdir).eval()
        tok = AutoTokenizer.from_pretrained(tdir)
        b = data.column("text_b") if data.has_text_b else None
        enc = tok(data.column("text_a"), b, padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        n_layers = model.config.num_hidden_layers
        stored = list(range(1, n_layers + 1)) if layers == "all" else []
        logits.append(out.logits.numpy())
        hidden.append(torch.stack([out.hidden_states[i][:, 0] for i in stored], 1).numpy() if stored else None)
        meta_teachers.append({"name": name, "path": str(tdir), "num_layers": n_layers,
                              "hidden_size": model.config.hidden_size, "stored_layers": stored})
    meta = {"label_names": data.label_names or ["0", "1"], "teachers": meta_teachers,
            "data": data.fingerprint(), "max_length": 64}
    return write_label_store(path, meta, logits, hidden)


def write_word_task(path: Path, n: int, seed: int) -> Path:
    """Linearly separable pairs: label 1 when the passage says "hot", 0 when it says "cold"."""
    import random

    rng = random.Random(seed)
    nouns = "river city water fire ice mountain sea cat dog bird fish tree book music song".split()
    lines = ["query\tpassage\tlabel"]
    for _ in range(n):
        pos = rng.random() < 0.5
        lines.append(f"what is the {rng.choice(nouns)}\tthe {rng.choice(nouns)} is "
                     f"{'hot' if pos else 'cold'} and {rng.choice(nouns)}\t{int(pos)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def small_train(**kw):
    from bertdistill.training.config import TrainConfig

    base = dict(epochs=2, batch_size=8, lr=1e-3, warmup_ratio=0.0, seed=0, max_length=32, save_every=None)
    base.update(kw)
    return TrainConfig(**base)


def test_plain_finetune_learns_separable_task(tmp_path):
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune
    from transformers import AutoModelForSequenceClassification

    model_dir = make_tiny_bert(tmp_path / "base", layers=2, hidden=32, classifier=False)
    train = write_word_task(tmp_path / "train.tsv", n=160, seed=1)
    dev = write_word_task(tmp_path / "dev.tsv", n=64, seed=2)
    cfg = FinetuneConfig(train_data=DataSpec(path=str(train)), eval_data=DataSpec(path=str(dev)),
                         output=str(tmp_path / "out"), student=StudentConfig(source=str(model_dir)),
                         train=small_train(epochs=6, batch_size=16, lr=3e-3))
    result = finetune(cfg, show_progress=False)
    assert result.best_metric == "accuracy"
    assert result.best_value >= 0.9, result.evaluations
    out = tmp_path / "out"
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "0", 1: "1"}
    record = json.loads((out / "training_record.json").read_text())
    assert record["data"]["train"]["rows"] == 160
    assert [e["step"] for e in record["evaluations"]] == [0, 10, 20, 30, 40, 50, 60]
    assert (out / "training_config.json").is_file() and (out / ".complete").is_file()
    assert not (out / "checkpoints").exists()


def test_distill_heads_pkd_end_to_end(tmp_path):
    """Two teachers with TMKD heads and PKD-skip: the saved model is the exact fold of the heads."""
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.guards import GuardConfig
    from bertdistill.student.model import load_saved_heads
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune
    from transformers import AutoModelForSequenceClassification

    t1 = make_tiny_bert(tmp_path / "t1", layers=4, hidden=32, seed=1)
    t2 = make_tiny_bert(tmp_path / "t2", layers=4, hidden=48, heads=2, seed=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=48, seed=1)
    dev = write_toy_pairs(tmp_path / "dev.tsv", n=24, seed=2)
    store = make_store(tmp_path / "store", train, {"small": t1, "wide": t2})
    dev_store = make_store(tmp_path / "dev_store", dev, {"small": t1, "wide": t2}, layers="none")
    cfg = FinetuneConfig(train_data=DataSpec(path=str(train)), eval_data=DataSpec(path=str(dev)),
                         labels=str(store), eval_labels=str(dev_store), output=str(tmp_path / "student"),
                         student=StudentConfig(source=str(t1), layers=2, layer_map="skip"),
                         train=small_train(epochs=1), distill=DistillConfig(alpha=0.7, pkd="skip", pkd_beta=5),
                         guards=GuardConfig(allow_collapsed=True))  # 6 updates of a tiny model: collapsing is fine
    result = finetune(cfg, show_progress=False)
    ev = result.evaluations[-1]
    assert {"accuracy", "f1", "distill_loss", "teacher_agreement"} <= set(ev)
    out = tmp_path / "student"
    names, heads = load_saved_heads(out)
    assert names == ["small", "wide"]
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_hidden_layers == 2
    assert torch.allclose(model.classifier.weight, (heads["head_0.weight"] + heads["head_1.weight"]) / 2)
    record = json.loads((out / "training_record.json").read_text())
    assert record["objective"]["pkd"]["pairs"] == {"small": [[1, 2]], "wide": [[1, 2]]}
    assert record["objective"]["pkd"]["projection"] == {"small": False, "wide": True}
    assert [t["name"] for t in record["teachers"]] == ["small", "wide"]


def test_store_from_other_data_and_missing_layers_are_user_errors(tmp_path):
    from bertdistill.data.sources import DataSpec
    from bertdistill.errors import UserError
    from bertdistill.training.config import DistillConfig, FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune

    t1 = make_tiny_bert(tmp_path / "t1", layers=4, hidden=32, seed=1)
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    other = write_toy_pairs(tmp_path / "other.tsv", n=32, seed=5)
    store = make_store(tmp_path / "store", train, {"t": t1}, layers="none")
    base = dict(labels=str(store), output=str(tmp_path / "s"), student=StudentConfig(source=str(t1), layers=2),
                train=small_train(epochs=1))
    with pytest.raises(UserError, match="other data"):
        finetune(FinetuneConfig(train_data=DataSpec(path=str(other)), **base), show_progress=False)
    with pytest.raises(UserError, match="no stored \\[CLS\\] states"):
        finetune(FinetuneConfig(train_data=DataSpec(path=str(train)), distill=DistillConfig(pkd="last"), **base),
                 show_progress=False)
    assert not (tmp_path / "s").exists()


def test_eval_file_with_other_columns_through_eval_data_config(tmp_path):
    from cli_helpers import run_cli

    model_dir = make_tiny_bert(tmp_path / "base", layers=1, hidden=32)
    train = write_word_task(tmp_path / "train.tsv", n=32, seed=1)
    # The eval file names and orders its columns differently: only its own data config can read it.
    rows = [line.split("\t") for line in write_word_task(tmp_path / "src.tsv", 24, 2).read_text().splitlines()[1:]]
    (tmp_path / "dev.tsv").write_text("gold\tq\tp\n" + "".join(f"{y}\t{q}\t{p}\n" for q, p, y in rows))
    config = tmp_path / "dev.json"
    config.write_text(json.dumps({"path": "dev.tsv", "text_a": "q", "text_b": "p", "label_column": "gold"}))
    out = tmp_path / "out"
    result = run_cli("finetune", "--data", train, "--eval-data-config", config, "--model", model_dir,
                     "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--allow-collapsed", "--output", out)
    assert result.code == 0, result.err
    record = json.loads((out / "training_record.json").read_text())
    assert record["data"]["eval"]["rows"] == 24 and record["data"]["eval"]["columns"]["label"] == "gold"
    assert record["evaluations"] and "accuracy" in record["evaluations"][-1]


def test_cli_time_budget_stops_with_a_checkpoint_and_resume_finishes(tmp_path):
    from cli_helpers import run_cli

    model_dir = make_tiny_bert(tmp_path / "base", layers=1, hidden=32)
    train = write_word_task(tmp_path / "train.tsv", n=48, seed=1)
    out = tmp_path / "out"
    common = ("finetune", "--data", train, "--model", model_dir, "--max-steps", "4", "--batch-size", "8",
              "--max-length", "32", "--allow-collapsed", "--output", out)
    stopped = run_cli(*common, "--time-budget", "1e-9")
    assert stopped.code == 0, stopped.err
    record = json.loads((out / "training_record.json").read_text())
    assert record["summary"]["stopped_by"] == "time_budget" and record["summary"]["steps"] == 1
    assert json.loads((out / "training_config.json").read_text())["train"]["time_budget"] == 1e-9
    assert "stopped: time_budget" in stopped.out and "--resume and a larger --time-budget" in stopped.err
    resumed = run_cli(*common, "--time-budget", "3600", "--resume")
    assert resumed.code == 0, resumed.err
    record = json.loads((out / "training_record.json").read_text())
    assert record["summary"]["stopped_by"] == "done" and record["summary"]["steps"] == 4
