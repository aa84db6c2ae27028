"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from bertdistill.metrics import (accuracy, average_precision, average_ranks, compute_metrics, f1_binary, f1_macro,
                                 main_metric, map_mrr, positive_label_index, reciprocal_rank, spearman)


def test_accuracy_and_binary_f1_by_hand():
    labels = [1, 0, 1, 1, 0, 0]
    preds = [1, 1, 0, 1, 0, 0]
    assert accuracy(labels, preds) == pytest.approx(4 / 6)
    # positive 1: tp=2, fp=1, fn=1 -> P=2/3, R=2/3, F1=2/3
    assert f1_binary(labels, preds, positive=1) == pytest.approx(2 / 3)
    # positive 0: tp=2 (rows 5,6), fp=1 (row 3), fn=1 (row 2) -> 2/3
    assert f1_binary(labels, preds, positive=0) == pytest.approx(2 / 3)
    assert f1_binary([0, 0], [0, 0], positive=1) == 0.0  # no positive predicted or present


def test_f1_macro_three_classes_by_hand():
    labels = [0, 0, 1, 1, 2, 2]
    preds = [0, 1, 1, 1, 2, 0]
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: tp1 fp0 fn1 -> 2/3
    assert f1_macro(labels, preds, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_length_mismatch_is_an_error_not_a_silent_score():
    with pytest.raises(ValueError):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError):
        map_mrr(["q"] * 3, [1, 0, 0], [0.5, 0.4])


def test_average_precision_and_reciprocal_rank():
    assert average_precision([False, True, True]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert reciprocal_rank([False, False, True]) == pytest.approx(1 / 3)
    assert average_precision([False, False]) == 0.0


def test_map_mrr_leaves_out_query_without_positive():
    groups = ["q1", "q1", "q1", "q2", "q2", "q3", "q3"]
    labels = [0, 1, 1, 1, 0, 0, 0]
    scores = [0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.3]
    out = map_mrr(groups, labels, scores)
    # q1 ranked: 0.9(-) 0.8(+) 0.1(+) -> AP=(1/2+2/3)/2=7/12, RR=1/2
    # q2 ranked: 0.7(+) 0.2(-) -> AP=1, RR=1; q3 has no positive and is left out (not scored 0)
    assert out["map"] == pytest.approx((7 / 12 + 1) / 2)
    assert out["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert out["queries_scored"] == 2
    assert out["queries_without_positive"] == 1


def test_map_ties_keep_input_order():
    out = map_mrr(["q", "q", "q"], [0, 1, 0], [0.5, 0.5, 0.5])
    assert out["map"] == pytest.approx(1 / 2) and out["mrr"] == pytest.approx(1 / 2)


def test_compute_metrics_ranking_uses_the_positive_label_by_name():
    # Label order ("1", "0"): the relevant class is column 0, not column 1.
    label_names = ["1", "0"]
    groups = ["a", "a", "b", "b", "c", "c"]
    labels = np.array([0, 1, 1, 0, 1, 1])  # ids into label_names: 0 means relevant
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0], [0.0, 2.0]])
    out = compute_metrics("ranking", label_names, labels, logits, groups)
    preds = logits.argmax(-1)  # [0, 1, 0, 1, 1, 1]
    assert out["accuracy"] == pytest.approx(4 / 6)
    # relevant=id 0: tp=1 (row 1), fp=1 (row 3), fn=1 (row 4) -> F1 = 2/(2+1+1) = 0.5
    assert out["f1"] == pytest.approx(f1_binary(labels, preds, positive=0)) == pytest.approx(0.5)
    # a: relevant row ranked first -> 1; b: the relevant row (score softmax[0]) ranked second -> 1/2;
    # c: no relevant candidate -> left out
    assert out["map"] == pytest.approx(0.75)
    assert out["mrr"] == pytest.approx(0.75)
    assert out["queries_without_positive"] == 1


def test_compute_metrics_multiclass_and_main_metric():
    out = compute_metrics("pair", ["contradiction", "entailment", "neutral"], [0, 1, 2],
                          np.eye(3)[[0, 1, 1]])
    assert set(out) == {"accuracy", "f1_macro"}
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert main_metric("ranking", ["0", "1"]) == "map"
    assert main_metric("pair", ["0", "1"]) == "accuracy"


@pytest.mark.parametrize("names, index", [(["0", "1"], 1), (["1", "0"], 0), (["entailment", "not_entailment"], 0),
                                          (["not_entailment", "entailment"], 1), (["neg", "pos"], 1)])
def test_positive_label_index(names, index):
    assert positive_label_index(names) == index


def test_map_mrr_equals_the_per_query_definition_on_random_rankings():
    rng = np.random.default_rng(7)
    n = 3_000
    groups = rng.integers(0, 400, n)  # interleaved, uneven groups
    labels = (rng.random(n) < 0.15).astype(int)
    scores = rng.integers(0, 6, n) / 5  # many ties
    aps, rrs, skipped = [], [], 0
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        ranked = [bool(labels[i]) for i in sorted(rows, key=lambda i: -scores[i])]  # stable: input order
        if not any(ranked):
            skipped += 1
            continue
        aps.append(average_precision(ranked))
        rrs.append(reciprocal_rank(ranked))
    expected = {"map": np.mean(aps), "mrr": np.mean(rrs), "queries_scored": len(aps),
                "queries_without_positive": skipped}
    for ids in (groups, [f"query {g}" for g in groups], [("q", int(g)) if g % 2 else int(g) for g in groups]):
        assert map_mrr(ids, labels, scores) == pytest.approx(expected)


def test_spearman_by_hand():
    # ranks equal to the values; d = (0, 1, 1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([0.1, 0.5, 0.9], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    # ties share the mean rank: ranks (1.5, 1.5, 3) vs (1, 2, 3) -> 1.5 / sqrt(1.5 * 2)
    assert list(average_ranks([7, 7, 9])) == [1.5, 1.5, 3.0]
    assert spearman([7, 7, 9], [1, 2, 3]) == pytest.approx(1.5 / np.sqrt(3.0))
    assert spearman([5, 5, 5], [1, 2, 3]) == 0.0  # constant scores: no order to compare
