"""Matching a model's labels to the data's: exact, generic LABEL_i, reordered, mismatched."""

from __future__ import annotations

import pytest
from transformers import BertConfig

from bertdistill.errors import UserError
from bertdistill.models import check_labels, label_permutation


def _classifier(names: list[str]) -> BertConfig:
    return BertConfig(architectures=["BertForSequenceClassification"], num_labels=len(names),
                      id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})


def test_label_permutation_maps_reordered_labels():
    assert label_permutation(["0", "1"], ["0", "1"], "m") == [0, 1]
    assert label_permutation(["LABEL_0", "LABEL_1"], ["no", "yes"], "m") == [0, 1]
    # data id 0 is "entailment", the model's column 2
    assert label_permutation(["neutral", "contradiction", "entailment"], ["entailment", "neutral", "contradiction"],
                             "m") == [2, 0, 1]
    with pytest.raises(UserError, match="do not match"):
        label_permutation(["a", "b"], ["a", "c"], "m")
    with pytest.raises(UserError, match="3 outputs but the data has 2 labels"):
        label_permutation(["LABEL_0", "LABEL_1", "LABEL_2"], ["0", "1"], "m")


def test_check_labels_refuses_another_order_with_the_fix():
    assert check_labels(_classifier(["0", "1"]), ["0", "1"], "m") == ["0", "1"]
    assert check_labels(_classifier(["LABEL_0", "LABEL_1"]), ["no", "yes"], "m") == ["no", "yes"]
    with pytest.raises(UserError, match="in another order") as err:
        check_labels(_classifier(["1", "0"]), ["0", "1"], "m")
    assert "--label-names 1,0" in err.value.line()
