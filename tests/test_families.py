"""Every model family as teacher and as student: a tiny random model of each (built in the test from
``tests/families/test_<family>.py``) through the toolkit's layout-dependent paths and every command.

Unit checks per family: inputs follow the model (token types only where it has several), the identity
prune is exact, feature capture (hidden states, attentions, query/key/value) has the right shapes,
the FLOPs count equals torch's own counter. Then the whole pipeline per family from the CLI: finetune,
label, prune (layers, heads, FFN, width; narrower heads where the family allows them), finetune
distilled offline and online with every term, pretrain-student, export fp32 and int8 with parity,
predict and bench, each with finite, correctly shaped results.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import family_builders, write_toy_pairs

BUILDERS = family_builders()
FAMILIES = sorted(BUILDERS)


def test_every_registered_family_has_a_tiny_model_in_the_matrix():
    from bertdistill.families import family_names

    assert set(family_names()) == set(BUILDERS), "add tests/families/test_<family>.py with FAMILY and tiny()"


def _batch(model_dir: Path, n: int = 4) -> dict:
    from transformers import AutoConfig, AutoTokenizer

    from bertdistill.data.tokenize import encode_texts
    from bertdistill.families import input_names
    from bertdistill.inference.batches import EncodedRows

    tok = AutoTokenizer.from_pretrained(model_dir)
    names = input_names(AutoConfig.from_pretrained(model_dir))
    enc = encode_texts(tok, ["what is the river", "the cat", "where is paris", "gold"][:n],
                       ["the river is cold and blue", "is old", "paris is the capital of france", "iron"][:n], 32,
                       names)
    rows = EncodedRows({k: [np.asarray(v) for v in vs] for k, vs in enc.items()},
                       np.asarray([len(x) for x in enc["input_ids"]]))
    return {k: torch.from_numpy(v) for k, v in rows.padded(range(n), tok.pad_token_id or 0).items()}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {name: build(root / name, layers=3, seed=1) for name, build in BUILDERS.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_inputs_follow_the_model(family, models):
    """Token types only for a model with several; a batch of exactly those inputs runs the model."""
    from transformers import AutoModelForSequenceClassification

    from bertdistill.families import input_names

    model = AutoModelForSequenceClassification.from_pretrained(models[family]).eval()
    names = input_names(model.config, model)
    types = int(getattr(model.config, "type_vocab_size", 0) or 0)
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    assert ("token_type_ids" in names) == (takes_types and types > 1)
    batch = _batch(models[family])
    assert set(batch) == set(names)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_identity_prune_is_exact_and_a_narrower_model_runs(family, models):
    from transformers import AutoModelForSequenceClassification

    from bertdistill.families import get_family
    from bertdistill.prune.shrink import PrunePlan, identity_plan, shrink_model

    model = AutoModelForSequenceClassification.from_pretrained(models[family]).eval()
    model.set_attn_implementation("eager")
    batch = _batch(models[family])
    with torch.no_grad():
        ref = model(**batch).logits
        same = shrink_model(model, identity_plan(model))
        same.set_attn_implementation("eager")
        assert torch.allclose(same(**batch).logits, ref, atol=1e-5)
    # One layer (the second), 2 of 4 heads, half the FFN and 32 of 64 hidden dims.
    heads = [[0, 3]] if get_family(family).shared_heads is None else [[1, 2]]
    rows = [h * 16 + j for h in heads[0] for j in range(16)]
    plan = PrunePlan(layers=[1], hidden=list(range(0, 64, 2)), heads=heads, qk_rows=[rows], v_rows=[rows],
                     ffn=[list(range(64))], head_size=16, source_head_size=16)
    small = shrink_model(model, plan)
    with torch.no_grad():
        logits = small(**batch).logits
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()
    shape = get_family(family).shape(small.config)
    assert (shape.layers, shape.hidden, shape.heads, shape.ffn) == (1, 32, 2, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_features_every_term_needs(family, models):
    from transformers import AutoModelForSequenceClassification

    from bertdistill.student.features import FeatureRequest, forward_features, use_eager_attention

    model = AutoModelForSequenceClassification.from_pretrained(models[family]).eval()
    use_eager_attention(model)
    request = FeatureRequest(hidden=frozenset({0, 1, 2}), attentions=frozenset({1, 2}), qkv=frozenset({2}))
    with torch.no_grad():
        _, features = forward_features(model, _batch(models[family]), request)
    n = features.mask.shape[1]
    assert all(features.hidden[i].shape == (4, n, 64) for i in (0, 1, 2))
    assert all(features.attentions[i].shape == (4, 4, n, n) for i in (1, 2))
    assert [t.shape for t in features.qkv[2]] == [(4, n, 64)] * 3


@pytest.mark.parametrize("family", FAMILIES)
def test_flops_equal_torchs_counter(family, models):
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForSequenceClassification

    from bertdistill.flops import flops_per_example

    model = AutoModelForSequenceClassification.from_pretrained(models[family]).eval()
    model.set_attn_implementation("eager")
    batch = {k: v[:1] for k, v in _batch(models[family], 1).items()}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**batch)
    assert flops_per_example(model.config, [batch["input_ids"].shape[1]]) == counter.get_total_flops()


# -- the whole pipeline from the CLI, per family ------------------------------------------------------

def _ok(*args) -> str:
    result = run_cli(*args)
    assert result.code == 0, (args, result.err[-2000:])
    return result.out


def _finite_model(path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        logits = model(**_batch(path)).logits
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()


TRAIN = ("--max-length", 32, "--batch-size", 8, "--seed", 1)
ONLINE_TERMS = ("hidden_mse", "attention_mse", "minilm_attention", "minilm_value")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_command_on_a_model_of_the_family(family, models, tmp_path):
    from bertdistill.families import get_family

    pairs = write_toy_pairs(tmp_path / "pairs.tsv", n=32, seed=1)
    ranking = write_toy_pairs(tmp_path / "ranking.tsv", n=32, seed=2, ranking=True)
    source = models[family]
    teacher = tmp_path / "teacher"
    _ok("finetune", "--model", source, "--data", pairs, "--output", teacher, "--max-steps", 4, "--no-eval", *TRAIN)
    _finite_model(teacher)

    store = tmp_path / "store"
    _ok("label", "--teacher", f"t={teacher}", "--data", pairs, "--output", store, "--hidden-layers", "all",
        "--quiet", "--max-length", 32)
    meta = json.loads((store / "meta.json").read_text())
    assert meta["teachers"][0]["model_type"] == json.loads((source / "config.json").read_text())["model_type"]

    # prune: layers, heads (whole), FFN and width; narrower heads where the family allows them.
    pruned = tmp_path / "pruned"
    _ok("prune", "--model", teacher, "--data", pairs, "--output", pruned, "--layers", 2, "--hidden", 32,
        "--heads", 2, "--ffn", 48, "--quiet", "--max-length", 32)
    report = json.loads((pruned / "prune_report.json").read_text())
    assert report["pruned"] | {"class": None} == {"class": None, "layers": 2, "hidden": 32, "heads": 2,
                                                   "head_size": 16, "ffn": 48}
    _finite_model(pruned)
    narrow = run_cli("prune", "--model", teacher, "--data", pairs, "--output", tmp_path / "narrow", "--hidden", 32,
                     "--heads", 4, "--quiet", "--max-length", 32)
    if get_family(family).whole_heads:
        assert_user_error(narrow, "--heads")
    else:
        assert narrow.code == 0, narrow.err
        _finite_model(tmp_path / "narrow")

    # stage 2 from the label store (offline) with kd and pkd, starting from the pruned student
    offline = tmp_path / "offline"
    _ok("finetune", "--labels", store, "--data", pairs, "--student-from", pruned, "--pkd", "skip", "--output",
        offline, "--max-steps", 3, "--no-eval", *TRAIN)
    record = json.loads((offline / "training_record.json").read_text())
    assert all(np.isfinite(v) for v in record["history"][-1].values() if isinstance(v, float))
    _finite_model(offline)

    # online: every term that compares states, the teacher's own layers as the student
    online = tmp_path / "online"
    terms = [a for t in ONLINE_TERMS for a in ("--term", f"{t}=1")]
    _ok("finetune", "--teacher", f"t={teacher}", "--data", pairs, "--student-layers", 2, "--pkd", "skip",
        *terms, "--output", online, "--max-steps", 3, "--no-eval", *TRAIN)
    last = json.loads((online / "training_record.json").read_text())["history"][-1]
    assert all(t in last and np.isfinite(last[t]) for t in ("kd", "pkd", *ONLINE_TERMS)), last
    _finite_model(online)

    # ranking terms on a score head, online
    ranked = tmp_path / "ranked"
    _ok("finetune", "--teacher", f"t={teacher}", "--data", ranking, "--task", "ranking", "--head", "score",
        "--student-layers", 1, "--term", "listwise_kd=1", "--term", "margin_mse=1", "--output", ranked,
        "--max-steps", 2, "--no-eval", *TRAIN)

    # stage 1 on the unlabeled rows of the store
    stage1 = tmp_path / "stage1"
    _ok("pretrain-student", "--labels", store, "--data", pairs, "--student-from", source, "--student-layers", 2,
        "--output", stage1, "--max-steps", 3, "--eval-fraction", 0, *TRAIN)
    _finite_model(stage1)

    # export fp32 and int8 with parity on the data, then predict and bench on the exports
    onnx = tmp_path / "onnx"
    _ok("export", "--model", offline, "--output", onnx, "--int8", "--data", pairs, "--parity-examples", 16,
        "--max-length", 32, "--int8-min-agreement", 0)
    export = json.loads((onnx / "export_report.json").read_text())
    assert export["passed"] and export["parity"]["fp32"]["max_abs_diff"] < 1e-4
    import onnx as onnx_lib

    graph_inputs = [i.name for i in onnx_lib.load(str(onnx / "model.onnx")).graph.input]
    from bertdistill.families import input_names
    from transformers import AutoConfig

    assert graph_inputs == list(input_names(AutoConfig.from_pretrained(offline)))
    preds = tmp_path / "preds.jsonl"
    _ok("predict", "--model", onnx, "--data", pairs, "--output", preds, "--max-length", 32)
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 32
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 and r["prediction"] in ("0", "1") for r in rows)
    bench = tmp_path / "bench.json"
    _ok("bench", "--model", f"teacher={teacher}", "--model", f"student={offline}",
        "--model", f"int8={onnx}:onnx-int8", "--data", pairs, "--max-length", 32, "--batch-sizes", "4",
        "--repeats", 1, "--warmup", 0, "--json", bench)
    result = json.loads(bench.read_text())
    flops = {m["name"]: m["flops_per_example"] for m in result["models"]}
    assert flops["student"] < flops["teacher"] and all(v and v > 0 for v in flops.values())


# -- teacher and student of different families and vocabularies ---------------------------------------

def test_an_mpnet_teacher_teaches_a_bert_student_online_and_offline(tmp_path):
    """Another vocabulary: the teacher tokenizes the rows its own way (once per run); kd online equals kd
    from its label store on the same batch; terms comparing token positions are refused in one line."""
    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.student.config import StudentConfig
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training import setup, student_setup
    from bertdistill.training.config import DistillConfig
    from bertdistill.training.batches import TrainSet
    from bertdistill.training.objective import DistillationModule, build_objective
    from bertdistill.training.teacher_source import OnlineTeachers, StoreTeachers

    mpnet = BUILDERS["mpnet"](tmp_path / "mpnet", layers=3, seed=4)
    student_dir = BUILDERS["bert"](tmp_path / "bert", layers=3, seed=5)
    pairs = write_toy_pairs(tmp_path / "pairs.tsv", n=24, seed=3)
    store = tmp_path / "store"
    _ok("label", "--teacher", f"mp={mpnet}", "--data", pairs, "--output", store, "--hidden-layers", "all", "--quiet",
        "--max-length", 64)

    data = load_task_data(DataSpec(path=str(pairs)))
    model, tok, _ = student_setup.build_student(StudentConfig(source=str(student_dir), layers=2), ["0", "1"], ["classifier"], 0)
    online = OnlineTeachers([f"mp={mpnet}"], ["0", "1"], tok, student_inputs=("input_ids", "attention_mask",
                                                                              "token_type_ids"))
    assert online.infos[0].token_aligned is False and "mp" in online.own_inputs
    offline = StoreTeachers(LabelStore.open(store))
    distill = DistillConfig(alpha=0.5, pkd="skip", pkd_beta=1.0)
    objective, _ = build_objective(distill, online.infos, model.config, "avg")
    module = DistillationModule(model, objective).eval()
    requests = {t.name: module.objective.teacher_request(t) for t in online.infos}
    offline.prepare(requests)
    online.prepare(requests)
    encoded = setup.encode_rows(tok, data, 64, teachers=online)
    assert "teacher:mp:input_ids" in encoded.column_names and "teacher:mp:token_type_ids" not in encoded.column_names
    rows = list(range(8))
    with torch.no_grad():
        batch_off = TrainSet(encoded, tok.pad_token_id, offline).batch(rows)
        batch_on = TrainSet(encoded, tok.pad_token_id, online).batch(rows)
        _, off = module(batch_off, offline.features(batch_off))
        _, on = module(batch_on, online.features(batch_on))
    assert abs(float(on["kd"]) - float(off["kd"])) < 1e-5
    assert abs(float(on["pkd"]) - float(off["pkd"])) < 2e-3  # the store keeps states in float16

    out = tmp_path / "online"
    _ok("finetune", "--teacher", f"mp={mpnet}", "--data", pairs, "--student-from", student_dir, "--student-layers", 2,
        "--pkd", "skip", "--eval-data", pairs, "--output", out, "--max-steps", 3, "--allow-collapsed", *TRAIN)
    record = json.loads((out / "training_record.json").read_text())
    assert record["teachers"][0]["tokenization"] == "its own"
    # the eval set carries the teacher's own tokenization too: its logits give the agreement metrics
    assert 0 <= record["evaluations"][-1]["teacher_agreement"] <= 1
    _ok("finetune", "--labels", store, "--data", pairs, "--student-from", student_dir, "--student-layers", 2,
        "--pkd", "skip", "--output", tmp_path / "offline", "--max-steps", 3, *TRAIN)
    refused = run_cli("finetune", "--teacher", f"mp={mpnet}", "--data", pairs, "--student-from", student_dir,
                      "--student-layers", 1, "--term", "hidden_mse=1", "--output", tmp_path / "x", "--max-steps", 1,
                      *TRAIN)
    assert_user_error(refused, "hidden_mse", "tokenizes differently", "kd")


def test_a_model_without_an_adapter_gets_one_line_naming_its_type(tmp_path):
    """ALBERT (no adapter) fine-tunes and distills on logits, but layer copies, pruning and the MiniLM terms
    are one line naming its model_type."""
    from transformers import AlbertConfig, AlbertForSequenceClassification, BertTokenizerFast

    from conftest import write_vocab

    albert = tmp_path / "albert"
    albert.mkdir()
    vocab = write_vocab(albert / "vocab.txt")
    BertTokenizerFast(vocab_file=str(vocab), vocab=str(vocab)).save_pretrained(albert)
    AlbertForSequenceClassification(AlbertConfig(
        vocab_size=len(vocab.read_text().split()), embedding_size=16, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64)).save_pretrained(albert)
    pairs = write_toy_pairs(tmp_path / "pairs.tsv", n=16)
    _ok("finetune", "--model", albert, "--data", pairs, "--output", tmp_path / "plain", "--max-steps", 2, "--no-eval",
        *TRAIN)
    line = assert_user_error(run_cli("finetune", "--teacher", f"a={albert}", "--data", pairs, "--student-layers", 1,
                                     "--output", tmp_path / "s", "--max-steps", 1, "--no-eval", *TRAIN),
                             "model_type 'albert' has no layout adapter")
    assert "kd" in line
