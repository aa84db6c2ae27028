"""bertdistill label: stored outputs equal a direct forward pass, heterogeneous teachers, refusals."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_bert, write_toy_pairs

from bertdistill.data.sources import DataSpec, load_task_data
from bertdistill.errors import UserError
from bertdistill.io import is_complete, read_json
from bertdistill.teachers.label import LabelConfig, label
from bertdistill.teachers.layers import parse_hidden_layers, pkd_teacher_layers
from bertdistill.teachers.layout import partial_dir
from bertdistill.teachers.store import LabelStore
from bertdistill.teachers.teacher import parse_teacher_specs

RARE = ("quokka", "zebra", "platypus")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    a = make_tiny_bert(root / "a", layers=3, hidden=32, seed=1)
    # Another width, depth and vocabulary: the rare words are single tokens only for this teacher.
    b = make_tiny_bert(root / "b", layers=2, hidden=48, heads=3, seed=2, vocab_extra=RARE)
    return a, b


def write_mixed_pairs(path: Path, n: int = 45, seed: int = 3) -> Path:
    """Pairs of very different lengths, some with words only teacher b's vocabulary knows."""
    rng = random.Random(seed)
    words = "what is the river city cold water fire ice mountain sea".split() + list(RARE)
    lines = ["query\tpassage\tlabel"]
    for _ in range(n):
        q = " ".join(rng.choice(words) for _ in range(rng.randint(2, 6)))
        p = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
        lines.append(f"{q}\t{p}\t{rng.randint(0, 1)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def direct_forward(tok, model, query: str, passage: str, layers: list[int]):
    enc = tok([query], [passage], truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return out.logits[0].numpy(), np.stack([out.hidden_states[k][0, 0].numpy() for k in layers])


def test_pkd_layer_maps():
    assert pkd_teacher_layers(12, 6, "skip") == [2, 4, 6, 8, 10]
    assert pkd_teacher_layers(12, 6, "last") == [7, 8, 9, 10, 11]
    assert pkd_teacher_layers(6, 3, "skip") == [2, 4]
    assert pkd_teacher_layers(6, 3, "last") == [4, 5]
    assert pkd_teacher_layers(12, 3, "skip") == [4, 8]
    assert pkd_teacher_layers(4, 1, "skip") == []
    assert pkd_teacher_layers(4, 0, "all") == [1, 2, 3, 4]
    assert parse_hidden_layers("5,1,3", 6) == [1, 3, 5]
    assert parse_hidden_layers("none", 6) == []
    assert parse_hidden_layers("skip", 12, 4) == [3, 6, 9]
    with pytest.raises(UserError, match="student depth"):
        parse_hidden_layers("skip", 12)
    with pytest.raises(UserError, match="layers 1..6"):
        parse_hidden_layers("1,7", 6)
    with pytest.raises(UserError, match="deeper"):
        pkd_teacher_layers(3, 4, "skip")


def test_teacher_names():
    assert parse_teacher_specs(["x=/m/a", "/m/b", "/n/b"]) == [("x", "/m/a"), ("b", "/m/b"), ("b-2", "/n/b")]
    with pytest.raises(UserError, match="used twice"):
        parse_teacher_specs(["x=/a", "x=/b"])


def test_stored_outputs_equal_direct_forward(tmp_path, teachers):
    a, b = teachers
    data = write_mixed_pairs(tmp_path / "mixed.tsv")
    out = label(LabelConfig(teachers=[f"ta={a}", f"tb={b}"], data=DataSpec(path=str(data)), output=str(tmp_path / "s"),
                            max_length=64, batch_size=4, hidden_layers="all", shard_rows=10, quiet=True))
    store = LabelStore.open(out)
    assert store.teacher_names == ["ta", "tb"] and store.label_names == ["0", "1"]
    assert store.num_rows == 45 and len(store.meta["shards"]) == 5
    ta, tb = store.teachers
    assert ta["stored_layers"] == [1, 2, 3] and tb["stored_layers"] == [1, 2] and tb["hidden_size"] == 48
    assert ta["tokenizer"]["vocab_size"] != tb["tokenizer"]["vocab_size"]
    assert ta["metrics"]["accuracy"] >= 0 and "f1" in tb["metrics"]
    assert store.meta["data"]["rows"] == 45 and store.meta["config"]["hidden_layers"] == "all"
    assert not partial_dir(out).exists()

    rows = load_task_data(DataSpec(path=str(data)))
    qs, ps = rows.column("text_a"), rows.column("text_b")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    for t, model_dir, layers in ((0, a, [1, 2, 3]), (1, b, [1, 2])):
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        logits = store.logits(t)
        hidden = store.hidden(t, range(45), layers)
        for i in range(45):  # row by row: length sorting must not change the order
            ref_logits, ref_cls = direct_forward(tok, model, qs[i], ps[i], layers)
            np.testing.assert_allclose(logits[i], ref_logits, atol=1e-5)
            np.testing.assert_allclose(hidden[i], ref_cls, atol=2e-3, rtol=2e-3)  # float16 storage


def test_different_vocabularies_tokenize_differently(teachers):
    from transformers import AutoTokenizer

    a, b = (AutoTokenizer.from_pretrained(p) for p in teachers)
    assert len(a("quokka")["input_ids"]) > len(b("quokka")["input_ids"]) == 3


def test_mismatched_labels_rejected(tmp_path, teachers, toy_pairs):
    three = make_tiny_bert(tmp_path / "three", label_names=("a", "b", "c"))
    with pytest.raises(UserError, match="teachers disagree on labels"):
        label(LabelConfig(teachers=[str(teachers[0]), str(three)], data=DataSpec(path=str(toy_pairs)),
                          output=str(tmp_path / "s"), quiet=True))
    assert not (tmp_path / "s").exists() and not partial_dir(tmp_path / "s").exists()


def test_data_labels_must_fit_teachers(tmp_path, toy_pairs):
    three = make_tiny_bert(tmp_path / "three", label_names=("a", "b", "c"))
    with pytest.raises(UserError, match="not one of"):
        label(LabelConfig(teachers=[str(three)], data=DataSpec(path=str(toy_pairs)), output=str(tmp_path / "s"),
                          quiet=True))
    assert not list(tmp_path.glob(".s.input-*")), "the on-disk input rows outlived a failed run"


def test_store_from_other_data_rejected(tmp_path, teachers, toy_pairs):
    out = label(LabelConfig(teachers=[str(teachers[0])], data=DataSpec(path=str(toy_pairs)),
                            output=str(tmp_path / "s"), quiet=True))
    store = LabelStore.open(out)
    store.check_data(load_task_data(DataSpec(path=str(toy_pairs))))  # the data it was made from
    other = write_toy_pairs(tmp_path / "other.tsv", n=64, seed=9)
    with pytest.raises(UserError, match="other data"):
        store.check_data(load_task_data(DataSpec(path=str(other))))
    with pytest.raises(UserError, match="other data"):
        store.check_data(load_task_data(DataSpec(path=str(toy_pairs), limit=60)))


def test_finished_store_not_overwritten_without_flag(tmp_path, teachers, toy_pairs):
    cfg = LabelConfig(teachers=[str(teachers[0])], data=DataSpec(path=str(toy_pairs)), output=str(tmp_path / "s"),
                      quiet=True)
    label(cfg)
    meta_before = (tmp_path / "s" / "meta.json").read_text()
    with pytest.raises(UserError, match="already exists"):
        label(cfg)
    assert (tmp_path / "s" / "meta.json").read_text() == meta_before
    cfg.overwrite, cfg.hidden_layers = True, "last"
    cfg.student_layers = 2
    label(cfg)
    store = LabelStore.open(tmp_path / "s")
    assert store.stored_layers(0) == [2] and is_complete(tmp_path / "s")
    assert not list(tmp_path.glob(".s.old-*")) and not list(tmp_path.glob(".s.input-*"))


def test_partial_from_other_command_refused(tmp_path, teachers, toy_pairs):
    out = tmp_path / "s"
    work = partial_dir(out)
    (work / "shards").mkdir(parents=True)
    (work / "progress.json").write_text('{"key_sha256": "something else"}')
    cfg = LabelConfig(teachers=[str(teachers[0])], data=DataSpec(path=str(toy_pairs)), output=str(out), quiet=True)
    with pytest.raises(UserError, match="different command"):
        label(cfg)
    cfg.overwrite = True
    label(cfg)
    assert LabelStore.open(out).num_rows == 64 and not work.exists()


def test_unlabeled_data_and_bf16(tmp_path, teachers, toy_pairs):
    spec = DataSpec(path=str(toy_pairs), unlabeled=True)
    fp32 = LabelStore.open(label(LabelConfig(teachers=[str(teachers[0])], data=spec, output=str(tmp_path / "a"),
                                             quiet=True)))
    bf16 = LabelStore.open(label(LabelConfig(teachers=[str(teachers[0])], data=spec, output=str(tmp_path / "b"),
                                             backend="bf16", hidden_layers="1", quiet=True)))
    assert fp32.teachers[0]["metrics"] is None
    np.testing.assert_allclose(bf16.logits(0), fp32.logits(0), atol=0.05)
    assert bf16.hidden(0, [0, 1], [1]).shape == (2, 1, 32)


def test_bad_teachers_rejected(tmp_path, teachers, toy_pairs):
    spec = DataSpec(path=str(toy_pairs))
    base = make_tiny_bert(tmp_path / "base", classifier=False)
    with pytest.raises(UserError, match="no trained classification head"):
        label(LabelConfig(teachers=[str(base)], data=spec, output=str(tmp_path / "s"), quiet=True))
    fake_onnx = tmp_path / "onnx"
    shutil.copytree(teachers[0], fake_onnx)
    (fake_onnx / "model.onnx").write_bytes(b"")
    with pytest.raises(UserError, match="ONNX teacher"):
        label(LabelConfig(teachers=[str(fake_onnx)], data=spec, output=str(tmp_path / "s"), backend="onnx",
                          hidden_layers="all", quiet=True))
    with pytest.raises(UserError, match="not an exported ONNX"):
        label(LabelConfig(teachers=[str(teachers[0])], data=spec, output=str(tmp_path / "s"), backend="onnx",
                          quiet=True))
    with pytest.raises(UserError, match="student depth"):
        label(LabelConfig(teachers=[str(teachers[0])], data=spec, output=str(tmp_path / "s"), hidden_layers="skip",
                          quiet=True))


def test_cli_label(tmp_path, teachers, toy_ranking):
    from typer.testing import CliRunner

    from bertdistill.cli import app

    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["label", "--teacher", f"t={teachers[0]}", "--data", str(toy_ranking),
                                      "--group-column", "qid", "--hidden-layers", "skip", "--student-layers", "3",
                                      "--shard-rows", "20", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "map" in result.output and "wrote" in result.output
    store = LabelStore.open(out)
    assert store.stored_layers("t") == [1, 2] and store.meta["task"] == "ranking"
    assert set(store.teachers[0]["metrics"]) >= {"map", "mrr"}
    assert read_json(out / "meta.json")["config"]["shard_rows"] == 20


def make_tiny_distilbert(path: Path) -> Path:
    """A tiny DistilBERT classifier: another architecture, and a model that takes no token_type_ids."""
    from conftest import write_vocab
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    path.mkdir(parents=True)
    vocab = write_vocab(path / "vocab.txt", RARE)
    tok = DistilBertTokenizerFast(vocab_file=str(vocab), vocab=str(vocab), do_lower_case=True)
    config = DistilBertConfig(vocab_size=len(vocab.read_text().split()), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128, num_labels=2, id2label={0: "0", 1: "1"},
                              label2id={"0": 0, "1": 1})
    torch.manual_seed(5)
    DistilBertForSequenceClassification(config).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def test_teachers_of_different_architectures(tmp_path, teachers):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    distil = make_tiny_distilbert(tmp_path / "distil")
    data = write_mixed_pairs(tmp_path / "mixed.tsv", n=12)
    store = LabelStore.open(label(LabelConfig(teachers=[str(teachers[0]), f"d={distil}"], data=DataSpec(path=str(data)),
                                              output=str(tmp_path / "s"), max_length=64, batch_size=5,
                                              hidden_layers="1,2", quiet=True)))
    assert store.teachers[1]["model_type"] == "distilbert" and store.stored_layers("d") == [1, 2]
    tok = AutoTokenizer.from_pretrained(distil)
    model = AutoModelForSequenceClassification.from_pretrained(distil).eval()
    rows = load_task_data(DataSpec(path=str(data)))
    for i, (q, p) in enumerate(zip(rows.column("text_a"), rows.column("text_b"))):
        enc = tok([q], [p], truncation=True, max_length=64, return_tensors="pt", return_token_type_ids=False)
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        np.testing.assert_allclose(store.logits("d")[i], out.logits[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(store.hidden("d", [i], [2])[0, 0], out.hidden_states[2][0, 0].numpy(),
                                   atol=2e-3, rtol=2e-3)


def test_finish_opens_one_shard_at_a_time(tmp_path, teachers, monkeypatch):
    """Issue 34: after labeling, the shards were all opened at once (every memory map kept open) for the
    metrics, even for unlabeled data, so peak memory grew with the rows. Now unlabeled data opens none of them
    (publishing peeks at the first one's columns), and labeled data one at a time, with the same metrics."""
    import datasets
    from bertdistill.metrics import compute_metrics

    opened, live, peak = [], set(), [0]
    load = datasets.Dataset.load_from_disk

    def counting(path, *args, **kwargs):
        ds = load(path, *args, **kwargs)
        opened.append(Path(path).name)
        key = len(opened)
        live.add(key)
        peak[0] = max(peak[0], len(live))
        import weakref
        weakref.finalize(ds._data.table, live.discard, key)  # the Arrow table holds the memory map
        return ds

    monkeypatch.setattr(datasets.Dataset, "load_from_disk", staticmethod(counting))
    data = write_mixed_pairs(tmp_path / "mixed.tsv", n=45)
    unlabeled = DataSpec(path=str(data), unlabeled=True)
    label(LabelConfig(teachers=[str(teachers[0])], data=unlabeled, output=str(tmp_path / "u"), shard_rows=10,
                      quiet=True))
    assert len(opened) >= 5 and peak[0] == 1  # checked and published shard by shard, none kept open

    opened.clear()
    peak[0] = 0
    out = label(LabelConfig(teachers=[f"ta={teachers[0]}", f"tb={teachers[1]}"], data=DataSpec(path=str(data)),
                            output=str(tmp_path / "l"), shard_rows=10, quiet=True))
    assert len(opened) >= 2 * 5 and peak[0] == 1  # each teacher's logits for the metrics, shard by shard
    monkeypatch.undo()
    store = LabelStore.open(out)
    rows = load_task_data(DataSpec(path=str(data)))
    for t in range(2):
        want = compute_metrics("classification", store.label_names, np.asarray(rows.column("label")),
                               store.logits(t))
        assert store.teachers[t]["metrics"] == pytest.approx(want)
