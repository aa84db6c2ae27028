"""prune: identity at full shape, saved models load everywhere, the top-scored parts are kept, bad shapes exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import SHARED, make_tiny_bert, requires_minilm, requires_shared, write_toy_pairs


def _config(model: Path, data: Path, output: Path, **kw):
    from bertdistill.data.sources import DataSpec
    from bertdistill.prune import PruneConfig

    return PruneConfig(model=str(model), data=DataSpec(path=str(data)), output=str(output), quiet=True,
                       max_length=32, batch_size=16, **kw)


def _batch(model_dir: Path, n: int = 6) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return dict(tok(["what is the river"] * (n // 2) + ["the cat is old"] * (n - n // 2),
                    ["the river is cold and blue", "fire"] * (n // 2) + ["dog"] * (n % 2),
                    padding=True, return_tensors="pt"))


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(**batch).logits


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prune")
    make_tiny_bert(root / "cls", layers=4, hidden=32, heads=2, seed=3)
    make_tiny_bert(root / "base", layers=4, hidden=32, heads=2, seed=4, classifier=False)
    write_toy_pairs(root / "toy.tsv", n=40, seed=1)
    return root


def test_full_shape_is_the_source(work, tmp_path):
    """No shape options: every index is kept in order and the logits are exactly the source's."""
    from transformers import AutoModelForSequenceClassification

    from bertdistill.prune import prune
    from bertdistill.prune.shrink import identity_plan, shrink_model

    result = prune(_config(work / "cls", work / "toy.tsv", tmp_path / "full"))
    src = AutoModelForSequenceClassification.from_pretrained(work / "cls")
    out = AutoModelForSequenceClassification.from_pretrained(tmp_path / "full")
    batch = _batch(work / "cls")
    assert torch.equal(_logits(src, batch), _logits(out, batch))
    assert torch.equal(_logits(shrink_model(src, identity_plan(src)), batch), _logits(src, batch))
    kept = result.report["kept"]
    assert kept["layers"] == [1, 2, 3, 4] and kept["hidden"] == list(range(32))
    assert all(k["heads"] == [0, 1] and k["ffn"] == list(range(64)) for k in kept["per_layer"])
    assert result.report["params"]["ratio"] == 1.0 and result.report["flops_per_example"]["ratio"] == 1.0
    assert result.report["objective"] == "gold_ce"


@pytest.mark.parametrize("heads", [1, 2])  # 1 head: whole heads of 16 dims; 2 heads: 8 of each kept head's 16 dims
def test_pruned_classifier_loads_with_auto_and_bertdistill(work, tmp_path, heads):
    from transformers import AutoModelForSequenceClassification

    from bertdistill.models import load_classifier
    from bertdistill.prune import prune

    out = tmp_path / "pruned"
    result = prune(_config(work / "cls", work / "toy.tsv", out, layers=2, layer_map="skip", hidden=16,
                           heads=heads, ffn=24))
    auto = AutoModelForSequenceClassification.from_pretrained(out)
    ours = load_classifier(str(out))
    batch = _batch(out)
    assert torch.equal(_logits(auto, batch), _logits(ours, batch))
    c = auto.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (2, 16, heads, 24)
    assert c.id2label == {0: "0", 1: "1"} and type(auto).__name__ == "BertForSequenceClassification"
    report = json.loads((out / "prune_report.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    assert report["kept"]["layers"] == [2, 4]  # skip, as finetune --layer-map skip
    assert report["params"]["after"] == sum(p.numel() for p in auto.parameters())
    assert report["calibration"]["data"]["rows"] == 40 and len(report["calibration"]["data"]["content_sha256"]) == 64
    assert 0 < report["flops_per_example"]["ratio"] < 0.25
    assert (out / ".complete").is_file() and (out / "prune_config.json").is_file()
    assert (out / "tokenizer_config.json").is_file()
    per_layer = report["kept"]["per_layer"][0]
    if heads == 1:
        assert "qk_rows" not in per_layer and report["head_slicing"] == "whole heads"
    else:
        assert len(per_layer["qk_rows"]) == len(per_layer["v_rows"]) == 16


def test_kept_parts_are_the_top_scored(work, tmp_path):
    """Heads 1 and 3 (zero values), FFN neurons 0..31 (zero pre-activations) and hidden dims 0..15 (zero
    LayerNorm gain and bias everywhere) contribute nothing, so their scores are 0 and the rest are kept."""
    from transformers import BertForSequenceClassification

    from bertdistill.prune import prune

    src = make_tiny_bert(tmp_path / "src", layers=2, hidden=32, heads=4, seed=5)
    model = BertForSequenceClassification.from_pretrained(src)
    with torch.no_grad():
        norms = [model.bert.embeddings.LayerNorm]
        for layer in model.bert.encoder.layer:
            for head in (1, 3):
                layer.attention.self.value.weight[head * 8:(head + 1) * 8] = 0
                layer.attention.self.value.bias[head * 8:(head + 1) * 8] = 0
            layer.intermediate.dense.weight[:32] = 0
            layer.intermediate.dense.bias[:32] = 0
            norms += [layer.attention.output.LayerNorm, layer.output.LayerNorm]
        for norm in norms:
            norm.weight[:16] = 0
            norm.bias[:16] = 0
    model.save_pretrained(src)
    result = prune(_config(src, work / "toy.tsv", tmp_path / "out", hidden=16, heads=2, ffn=32))
    report = result.report
    assert report["kept"]["hidden"] == list(range(16, 32))
    for entry, scores in zip(report["kept"]["per_layer"], report["scores"]["heads"]):
        assert entry["heads"] == [0, 2]
        assert entry["ffn"] == list(range(32, 64))
        assert scores[1] == scores[3] == 0.0 and min(scores[0], scores[2]) > 0
    assert all(s["kept_share"] == pytest.approx(1.0) for s in report["scores"]["ffn_summary"])
    assert report["scores"]["hidden_summary"]["kept_share"] == pytest.approx(1.0)


def test_plan_keeps_top_scores_and_top_head_dims():
    """make_plan on hand-made scores: 2 layers, 2 heads of 4 dims, cut to 1 layer / 1 head of 2 dims."""
    from bertdistill.prune.importance import ImportanceScores, importance_layers, make_plan, top_k

    assert top_k(np.array([0.1, 0.5, 0.5, 0.3]), 2) == [1, 2]
    assert top_k(np.array([1.0, 1.0, 1.0]), 2) == [0, 1]  # ties keep the lower index
    scores = ImportanceScores(
        heads=np.array([[1.0, 2.0], [5.0, 0.5]]), ffn=np.array([[3, 1, 2, 0], [0, 1, 2, 3]], dtype=float),
        hidden_embeddings=np.array([1.0, 0.0, 0.0, 0.0]), hidden_layers=np.array([[0, 0, 3, 0], [0, 5, 0, 0]], float),
        blocks=np.array([0.2, 0.7]),
        qk_dims=np.array([[0, 0, 0, 0, 1, 4, 3, 2], [9, 1, 8, 2, 0, 0, 0, 0]], float),
        v_dims=np.array([[0, 0, 0, 0, 4, 3, 2, 1], [1, 2, 3, 4, 0, 0, 0, 0]], float))
    layers = importance_layers(scores.blocks, 1)
    assert layers == [1]
    plan = make_plan(scores, layers, hidden=2, heads=1, ffn=2, source_head_size=4)
    assert plan.hidden == [0, 1]      # embeddings (1.0) + layer 2 only (5.0 on dim 1); layer 1's dim 2 is not kept
    assert plan.heads == [[0]]        # head 0 (5.0) of layer 2
    assert plan.qk_rows == [[0, 2]]   # dims 0 and 2 of head 0 (9, 8)
    assert plan.v_rows == [[2, 3]]    # dims 2 and 3 (3, 4)
    assert plan.ffn == [[2, 3]]


def test_layer_maps(work, tmp_path):
    from bertdistill.prune import prune

    listed = prune(_config(work / "base", work / "toy.tsv", tmp_path / "listed", layer_map="3,1"))
    assert listed.report["kept"]["layers"] == [3, 1]
    assert listed.report["objective"] == "output_norm" and listed.report["pruned"]["class"] == "BertModel"
    by_importance = prune(_config(work / "base", work / "toy.tsv", tmp_path / "imp", layers=2, layer_map="importance"))
    blocks = by_importance.report["scores"]["blocks"]
    assert by_importance.report["kept"]["layers"] == sorted(int(i) + 1 for i in np.argsort(blocks)[-2:])


def test_soft_targets_from_teacher_and_label_store(work, tmp_path):
    from bertdistill.prune import prune

    teacher = make_tiny_bert(tmp_path / "teacher", layers=2, hidden=48, heads=2, seed=9)
    assert prune(_config(work / "cls", work / "toy.tsv", tmp_path / "t", teacher=str(teacher), layers=1)
                 ).report["objective"] == "teacher_kl"
    store = tmp_path / "store"
    labeled = run_cli("label", "--teacher", teacher, "--data", work / "toy.tsv", "--output", store, "--quiet",
                      "--max-length", 32)
    assert labeled.code == 0, labeled.err
    assert prune(_config(work / "cls", work / "toy.tsv", tmp_path / "s", labels=str(store), layers=1)
                 ).report["objective"] == "store_kl"


def test_pruned_config_records_the_kept_residual_dimensions(work, tmp_path):
    """The config says which source dimension each kept one is, composed when a pruned model is pruned again."""
    from transformers import AutoConfig

    from bertdistill.prune import prune
    from bertdistill.prune.shrink import RESIDUAL_ATTR

    first = prune(_config(work / "cls", work / "toy.tsv", tmp_path / "p1", hidden=24, heads=2, ffn=48))
    kept1 = first.report["kept"]["hidden"]
    assert getattr(AutoConfig.from_pretrained(tmp_path / "p1"), RESIDUAL_ATTR) == {"source_width": 32, "index": kept1}
    second = prune(_config(tmp_path / "p1", work / "toy.tsv", tmp_path / "p2", hidden=16, heads=2, ffn=32))
    kept2 = second.report["kept"]["hidden"]  # indices into p1's 24 dimensions
    residual = getattr(AutoConfig.from_pretrained(tmp_path / "p2"), RESIDUAL_ATTR)
    assert residual == {"source_width": 32, "index": [kept1[i] for i in kept2]}


def test_finetune_starts_from_a_pruned_student(work, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from bertdistill.data.sources import DataSpec
    from bertdistill.prune import prune
    from bertdistill.training.config import FinetuneConfig, StudentConfig, TrainConfig
    from bertdistill.training.finetune import finetune

    pruned = tmp_path / "pruned"
    prune(_config(work / "base", work / "toy.tsv", pruned, layers=2, hidden=16, heads=1, ffn=32))
    cfg = FinetuneConfig(train_data=DataSpec(path=str(work / "toy.tsv")), output=str(tmp_path / "student"),
                         student=StudentConfig(source=str(pruned)),
                         train=TrainConfig(max_steps=2, batch_size=8, lr=1e-3, warmup_ratio=0.0, seed=0,
                                           max_length=32, save_every=None))
    finetune(cfg, show_progress=False)
    student = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student")
    assert (student.config.num_hidden_layers, student.config.hidden_size) == (2, 16)


def _no_adapter(path: Path) -> Path:
    """A tiny ALBERT (layers shared in groups): a family without a layout adapter."""
    from transformers import AlbertConfig, AlbertForSequenceClassification, BertTokenizerFast

    from conftest import write_vocab

    path.mkdir(parents=True)
    vocab = write_vocab(path / "vocab.txt")
    BertTokenizerFast(vocab_file=str(vocab), vocab=str(vocab)).save_pretrained(path)
    config = AlbertConfig(vocab_size=len(vocab.read_text().split()), embedding_size=16, hidden_size=32,
                          num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    AlbertForSequenceClassification(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("args, needles", [
    (["--hidden", "32", "--heads", "3"], ["3 heads do not divide hidden size 32"]),
    (["--hidden", "64"], ["wider than the source's 32"]),
    (["--ffn", "65"], ["--ffn 65 is wider"]),
    (["--layers", "5"], ["deeper than the source's 4 layers"]),
    (["--layers", "0"], ["at least one layer"]),
    (["--heads", "0"], ["at least one attention head"]),
    (["--heads", "1"], ["head size 32/1 = 32 is wider than the source's 16"]),
    (["--layer-map", "1,9"], ["layers [9] are outside 1..4"]),
    (["--layer-map", "middle"], ["is not first, skip, importance"]),
    (["--teacher", "{work}/cls", "--model", "{work}/base"], ["needs a classifier"]),
    (["--model", "{no_adapter}"], ["model_type 'albert' has no layout adapter", "prune"]),
    (["--data", "{empty}"], ["no data rows"]),
])
def test_bad_input_exits_2_and_writes_nothing(work, tmp_path, args, needles):
    empty = tmp_path / "empty.tsv"
    empty.write_text("query\tpassage\tlabel\n")
    no_adapter = _no_adapter(tmp_path / "albert") if "{no_adapter}" in args else None
    args = [a.format(work=work, no_adapter=no_adapter, empty=empty) for a in args]
    base = ["prune", "--output", tmp_path / "out"]
    if "--model" not in args:
        base += ["--model", work / "cls"]
    if "--data" not in args:
        base += ["--data", work / "toy.tsv"]
    assert_user_error(run_cli(*base, *args), *needles)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.integration
@requires_minilm()
@requires_shared()
def test_minilm_to_3_layers_256_wide(tmp_path):
    """The issue's shape on real data: 3 layers / hidden 256 / 8 heads / FFN 1024 from all-MiniLM-L6-v2."""
    from transformers import AutoModel

    data = SHARED / "wikiqa" / "WikiQA-train.txt"
    if not data.is_file():
        pytest.skip(f"{data} not found")
    out = tmp_path / "pruned"
    result = run_cli("prune", "--data", data, "--columns", "query,passage,label", "--limit", "64", "--layers", "3",
                     "--layer-map", "skip", "--hidden", "256", "--heads", "8", "--ffn", "1024", "--output", out)
    assert result.code == 0, result.err
    model = AutoModel.from_pretrained(out)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (3, 256, 8, 1024)
    report = json.loads((out / "prune_report.json").read_text())
    assert report["kept"]["layers"] == [2, 4, 6] and report["objective"] == "output_norm"
    assert report["head_slicing"] == "whole heads"
    assert report["flops_per_example"]["ratio"] < 0.3 and report["params"]["after"] < report["params"]["before"]
