"""Ranking-native students: the score head, query-group batches, listwise / Margin-MSE terms, 1-logit inference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs

LN2, LN3 = math.log(2), math.log(3)


# -- pure losses, against hand-computed values -----------------------------------------------------------------

def test_pointwise_bce_hand_computed():
    from bertdistill.training.losses import pointwise_bce

    # −log σ(0) = ln 2; −log(1 − σ(ln 3)) = −log(1/4) = 2 ln 2; mean 1.5 ln 2
    value = pointwise_bce(torch.tensor([0.0, LN3]), torch.tensor([1.0, 0.0]))
    assert float(value) == pytest.approx(1.5 * LN2, abs=1e-6)


def test_score_kl_hand_computed():
    from bertdistill.training.losses import score_kl

    # p = σ(ln 3) = 0.75, q = σ(0) = 0.5: KL = 0.75 ln 1.5 + 0.25 ln 0.5 = 0.130812
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(score_kl(torch.tensor([0.0]), torch.tensor([0.75]), 1.0)) == pytest.approx(kl, abs=1e-6)
    # T = 2 scales by T² = 4 (student score 0 gives q = 0.5 at any T)
    assert float(score_kl(torch.tensor([0.0]), torch.tensor([0.75]), 2.0)) == pytest.approx(4 * kl, abs=1e-6)
    # the same as the 2-class KL of the logit pairs [0, s] and [0, t]
    from bertdistill.training.losses import soft_kl

    s, t = torch.tensor([0.3, -1.2]), torch.tensor([1.1, 0.4])
    two = soft_kl(torch.stack([torch.zeros(2), s], 1), torch.stack([torch.zeros(2), t], 1), 2.0)
    assert float(score_kl(s, torch.sigmoid(t / 2), 2.0)) == pytest.approx(float(two), abs=1e-6)


def test_listwise_kd_hand_computed():
    from bertdistill.training.losses import listwise_kd

    # query 0: softmax(t) = [0.75, 0.25], softmax(s) = [0.5, 0.5] → KL 0.130812; query 1 has 1 candidate: left out
    s = torch.tensor([0.0, 0.0, 5.0])
    t = torch.tensor([LN3, 0.0, 7.0])
    g = torch.tensor([0, 0, 1])
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(listwise_kd(s, t, g, 1.0)) == pytest.approx(kl, abs=1e-6)
    # T = 2 with doubled teacher scores: the same distributions, times T² = 4
    assert float(listwise_kd(s, 2 * t, g, 2.0)) == pytest.approx(4 * kl, abs=1e-6)
    # no query with 2 candidates: 0, with a graph
    zero = listwise_kd(torch.tensor([1.0], requires_grad=True), torch.tensor([2.0]), torch.tensor([0]), 1.0)
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def test_margin_mse_hand_computed():
    from bertdistill.training.losses import margin_mse

    # pairs of query 0 with t_i > t_j: (0,1): (1−0) − (2−1) = 0; (0,2): 1 − 2 = −1; (1,2): 0 − 1 = −1 → mean 2/3
    value = margin_mse(torch.tensor([1.0, 0.0, 0.0, 9.0]), torch.tensor([2.0, 1.0, 0.0, 0.0]),
                       torch.tensor([0, 0, 0, 1]))
    assert float(value) == pytest.approx(2 / 3, abs=1e-6)
    # ties within a query make no pair; rows of different queries are never compared
    assert float(margin_mse(torch.tensor([5.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0, 0]))) == 0.0
    assert float(margin_mse(torch.tensor([5.0, 0.0]), torch.tensor([3.0, 1.0]), torch.tensor([0, 1]))) == 0.0


def test_listwise_ce_hand_computed():
    from bertdistill.training.losses import listwise_ce

    # query 0: −log softmax([ln 3, 0])_0 = −log 0.75; query 1 has no relevant candidate: left out
    value = listwise_ce(torch.tensor([LN3, 0.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 0.0, 0.0]),
                        torch.tensor([0, 0, 1, 1]))
    assert float(value) == pytest.approx(-math.log(0.75), abs=1e-6)
    # two relevant candidates share the target: softmax([0, 0, ln 2]) = [1/4, 1/4, 1/2]
    value = listwise_ce(torch.tensor([0.0, 0.0, LN2]), torch.tensor([1.0, 0.0, 1.0]), torch.tensor([7, 7, 7]))
    assert float(value) == pytest.approx(0.5 * (math.log(4) + math.log(2)), abs=1e-6)


def test_scores_of_logits():
    from bertdistill.training.terms import scores_of

    assert scores_of(torch.tensor([[1.0, 3.0]]), 1).tolist() == [2.0]  # z_pos − z_other
    assert scores_of(torch.tensor([[1.0, 3.0]]), 0).tolist() == [-2.0]
    assert scores_of(torch.tensor([[0.5]]), 1).tolist() == [0.5]  # a 1-logit model as is


def test_hard_term_is_bce_for_a_score_head():
    from bertdistill.student.features import Features
    from bertdistill.training.terms import HardLabels, TermContext

    ctx = TermContext(student_layers=2, student_width=32, student_heads=2, teachers=[], positive=1)
    term = HardLabels(1.0, ctx)
    value = term(Features(logits=torch.tensor([[[0.0], [LN3]]])), {}, {"label": torch.tensor([1, 0])})
    assert float(value) == pytest.approx(1.5 * LN2, abs=1e-6)


# -- query-group batches -------------------------------------------------------------------------------------

def test_query_grouped_batches_pack_whole_queries():
    from bertdistill.data.tokenize import query_grouped_batches

    groups = np.array([0] * 3 + [1] * 5 + [2] * 2 + [3] + [4] * 4)
    batches = query_grouped_batches(groups, 4, seed=3)
    rows = sorted(i for b in batches for i in b)
    assert rows == list(range(len(groups)))  # every row once
    assert all(len(b) <= 4 for b in batches)
    for q in (0, 2, 3, 4):  # queries that fit a batch are never split
        holding = [k for k, b in enumerate(batches) if any(groups[i] == q for i in b)]
        assert len(holding) == 1, (q, batches)
    assert len([b for b in batches if any(groups[i] == 1 for i in b)]) == 2  # 5 candidates > 4: two lists
    assert query_grouped_batches(groups, 4, seed=3) == batches  # reproducible (exact resume)
    assert any(query_grouped_batches(groups, 4, seed=s) != batches for s in range(4, 10))


# -- inference on 1-logit models -------------------------------------------------------------------------------

def test_metrics_of_one_score_logit():
    from bertdistill.metrics import compute_metrics, predicted_ids, probabilities

    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    assert predicted_ids(logits, ["0", "1"]).tolist() == [1, 0, 1, 0]
    assert predicted_ids(logits, ["yes", "no"]).tolist() == [0, 1, 0, 1]  # "yes" is the relevant label
    p = probabilities(logits, ["0", "1"])
    assert p[0, 1] == pytest.approx(1 / (1 + math.exp(-2))) and p.sum(1) == pytest.approx(np.ones(4))
    m = compute_metrics("ranking", ["0", "1"], [1, 0, 0, 1], logits, ["a", "a", "b", "b"])
    assert m["accuracy"] == 0.5 and m["map"] == pytest.approx(0.75)  # query b ranks its relevant row second


def test_parity_of_score_models_compares_orderings():
    from bertdistill.export.parity import compare_logits, pair_order_agreement

    assert pair_order_agreement(np.array([3.0, 2.0, 1.0]), np.array([3.0, 1.0, 2.0])) == pytest.approx(2 / 3)
    result = compare_logits(np.array([[3.0], [2.0], [-1.0]]), np.array([[3.0], [1.0], [2.0]]))
    assert result.order_agreement == pytest.approx(2 / 3)
    assert result.argmax_agreement == pytest.approx(2 / 3)  # the decision score > 0
    assert result.check_int8(0.9, real_data=True)["failure"] == "order_agreement below 0.9"
    assert compare_logits(np.ones((2, 2)), np.ones((2, 2))).order_agreement is None


# -- end to end ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ranking_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranking")
    return {"t1": make_tiny_bert(root / "t1", layers=2, seed=1), "t2": make_tiny_bert(root / "t2", layers=2, seed=2),
            "base": make_tiny_bert(root / "base", layers=2, classifier=False),
            "data": write_toy_pairs(root / "rank.tsv", n=40, ranking=True), "root": root}


def _finetune(env, out: Path, *extra: str):
    return run_cli("finetune", "--data", env["data"], "--group-column", "qid", "--student-from", env["base"],
                   "--epochs", "1", "--batch-size", "8", "--max-length", "32", "--output", out, "--no-eval",
                   "--save-every", "1000", *extra)


@pytest.mark.parametrize("term", ["listwise_kd", "margin_mse", "listwise_ce"])
def test_cli_score_head_with_each_ranking_term(ranking_env, tmp_path, term):
    out = tmp_path / "student"
    result = _finetune(ranking_env, out, "--head", "score", "--teacher", f"a={ranking_env['t1']}",
                       "--teacher", f"b={ranking_env['t2']}", "--term", f"{term}=1")
    assert result.code == 0, result.err
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "score"} and config["task_label_names"] == ["0", "1"]
    record = json.loads((out / "training_record.json").read_text())
    assert record["objective"]["weights"][term] == 1.0 and record["objective"]["head"] == "score"
    assert term in record["objective"]["terms"]
    assert math.isfinite(record["summary"]["final_loss"])


def test_cli_ranking_terms_from_a_label_store_with_a_class_head(ranking_env, tmp_path):
    from test_finetune import make_store

    store = make_store(tmp_path / "store", ranking_env["data"], {"a": ranking_env["t1"]}, layers="none",
                       group_column="qid")
    out = tmp_path / "student"
    result = _finetune(ranking_env, out, "--labels", store, "--term", "listwise_kd=1", "--term", "margin_mse=0.5")
    assert result.code == 0, result.err
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"}  # a 2-class student ranks by z_pos − z_other


def test_score_student_predicts_exports_and_ranks_with_cross_encoder(ranking_env, tmp_path):
    out = tmp_path / "student"
    result = _finetune(ranking_env, out, "--head", "score", "--teacher", f"a={ranking_env['t1']}",
                       "--term", "listwise_kd=1", "--lr", "1e-3")
    assert result.code == 0, result.err

    preds = tmp_path / "preds.jsonl"
    result = run_cli("predict", "--model", out, "--data", ranking_env["data"], "--group-column", "qid",
                     "--output", preds)
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert all(r["prediction"] == ("1" if r["score"] > 0 else "0") for r in rows)
    assert all(r["probabilities"]["1"] == pytest.approx(1 / (1 + math.exp(-r["score"])), abs=1e-5) for r in rows)
    ranked = [json.loads(line) for line in (tmp_path / "preds.ranked.jsonl").read_text().splitlines()]
    q0 = [r["score"] for r in ranked if r["group"] == "q0"]
    assert q0 == sorted(q0, reverse=True)

    onnx = tmp_path / "onnx"
    result = run_cli("export", "--model", out, "--output", onnx, "--data", ranking_env["data"],
                     "--group-column", "qid")
    assert result.code == 0, result.err
    report = json.loads((onnx / "export_report.json").read_text())
    assert report["parity"]["fp32"]["order_agreement"] == 1.0

    bench = run_cli("bench", "--model", f"s={out}", "--model", f"t={ranking_env['t1']}", "--data",
                    ranking_env["data"], "--group-column", "qid", "--batch-sizes", "4", "--repeats", "1")
    assert bench.code == 0, bench.err
    assert "MAP" in bench.out

    from sentence_transformers import CrossEncoder

    passages = ["the what is bird", "the wind is book", "the paper is mountain"]
    ranking = CrossEncoder(str(out), device="cpu").rank("what is the what", passages)
    assert sorted(r["corpus_id"] for r in ranking) == [0, 1, 2]
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)


# -- bad input -----------------------------------------------------------------------------------------------

def test_listwise_term_on_data_without_groups_is_one_line(ranking_env, tmp_path):
    pairs = write_toy_pairs(tmp_path / "pairs.tsv", n=24)
    result = run_cli("finetune", "--data", pairs, "--student-from", ranking_env["base"], "--term", "listwise_ce=1",
                     "--epochs", "1", "--max-length", "32", "--output", tmp_path / "out", "--no-eval")
    assert_user_error(result, "listwise_ce", "no query groups")


def test_empty_query_id_and_single_candidate_queries_are_one_line(ranking_env, tmp_path):
    lines = ranking_env["data"].read_text().splitlines()
    bad = lines[:3] + ["\t" + lines[3].split("\t", 1)[1]] + lines[4:]
    (tmp_path / "empty.tsv").write_text("\n".join(bad) + "\n")
    result = run_cli("finetune", "--data", tmp_path / "empty.tsv", "--group-column", "qid", "--student-from",
                     ranking_env["base"], "--term", "listwise_ce=1", "--epochs", "1", "--max-length", "32",
                     "--output", tmp_path / "out", "--no-eval")
    assert_user_error(result, "empty query id")
    single = [lines[0]] + [f"q{i}\t" + line.split("\t", 1)[1] for i, line in enumerate(lines[1:])]
    (tmp_path / "single.tsv").write_text("\n".join(single) + "\n")
    result = run_cli("finetune", "--data", tmp_path / "single.tsv", "--group-column", "qid", "--student-from",
                     ranking_env["base"], "--term", "listwise_ce=1", "--epochs", "1", "--max-length", "32",
                     "--output", tmp_path / "out2", "--no-eval")
    assert_user_error(result, "one candidate per group")  # refused when the data is read


def test_score_head_needs_binary_labels(ranking_env, tmp_path):
    rows = ["query\tpassage\tlabel"] + [f"what {i}\tthe {i}\t{i % 3}" for i in range(12)]
    (tmp_path / "three.tsv").write_text("\n".join(rows) + "\n")
    result = run_cli("finetune", "--data", tmp_path / "three.tsv", "--student-from", ranking_env["base"],
                     "--head", "score", "--epochs", "1", "--max-length", "32", "--output", tmp_path / "out",
                     "--no-eval")
    assert_user_error(result, "score head needs 2 labels")


def test_stage1_class_heads_become_score_heads_in_stage2(ranking_env, tmp_path):
    from safetensors.torch import load_file

    teachers = ["--teacher", f"a={ranking_env['t1']}", "--teacher", f"b={ranking_env['t2']}"]
    stage1 = tmp_path / "stage1"
    result = run_cli("pretrain-student", "--data", ranking_env["data"], "--student-from", ranking_env["base"],
                     *teachers, "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--output", stage1,
                     "--eval-fraction", "0")
    assert result.code == 0, result.err
    heads = load_file(str(stage1 / "teacher_heads.safetensors"))
    out = tmp_path / "stage2"
    result = _finetune(ranking_env, out, "--student-from", stage1, "--head", "score", *teachers,
                       "--term", "listwise_kd=1", "--max-steps", "1", "--lr", "1e-9")
    assert result.code == 0, result.err
    record = json.loads((out / "training_record.json").read_text())
    assert record["student"]["heads_from"] == "restored from the source's per-teacher heads"
    saved = load_file(str(out / "teacher_heads.safetensors"))
    expected = heads["head_1.weight"][1:2] - heads["head_1.weight"][0:1]  # w_pos − w_other
    assert saved["head_1.weight"].shape == (1, expected.shape[1])
    assert torch.allclose(saved["head_1.weight"], expected, atol=1e-5)
