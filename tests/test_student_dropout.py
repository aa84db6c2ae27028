"""``--student-dropout P`` (StudentConfig.dropout): every dropout probability of the student set to P in each
family, the weights kept, the RNG untouched; 0 makes training steps deterministic given the batch."""

from __future__ import annotations

import json

import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import family_builders, make_tiny_bert, write_toy_pairs

BUILDERS = family_builders()


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_every_dropout_of_each_family_is_set_and_the_weights_kept(family, tmp_path):
    from bertdistill.student.build import build_classifier, dropout_settings
    from bertdistill.student.config import StudentConfig

    source = BUILDERS[family](tmp_path / family, layers=2, seed=1)
    plain, _, _ = build_classifier(StudentConfig(source=str(source)), ["0", "1"])
    after_plain = torch.rand(3)
    model, _, info = build_classifier(StudentConfig(source=str(source), dropout=0.0), ["0", "1"])
    assert torch.equal(torch.rand(3), after_plain), "rebuilding must leave the RNG as a plain build leaves it"
    keys = dropout_settings(model.config)
    assert keys and all(getattr(model.config, k) == 0.0 for k in keys) and info["dropout"] == 0.0
    raised, _, _ = build_classifier(StudentConfig(source=str(source), dropout=0.3), ["0", "1"])
    assert all(getattr(raised.config, k) == 0.3 for k in keys)
    assert all(m.p == 0.3 for m in raised.modules() if isinstance(m, torch.nn.Dropout))
    for name, value in plain.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    model.train()  # in training mode, two forwards of the same batch agree only without dropout
    ids = torch.randint(5, 50, (2, 12))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a, b = model(input_ids=ids, attention_mask=mask).logits, model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(a, b)


def test_the_cli_option_reaches_the_saved_student_and_refuses_a_non_probability(tmp_path):
    make_tiny_bert(tmp_path / "bert", layers=2, hidden=32)
    write_toy_pairs(tmp_path / "train.tsv", n=32)
    out = tmp_path / "student"
    result = run_cli("finetune", "--data", str(tmp_path / "train.tsv"), "--student-from", str(tmp_path / "bert"),
                     "--student-layers", "1", "--student-dropout", "0", "--epochs", "1", "--max-length", "32",
                     "--no-eval", "--output", str(out))
    assert result.code == 0, result.err
    config = json.loads((out / "config.json").read_text())
    assert config["hidden_dropout_prob"] == 0.0 and config["attention_probs_dropout_prob"] == 0.0
    assert json.loads((out / "training_config.json").read_text())["student"]["dropout"] == 0.0
    assert_user_error(run_cli("finetune", "--data", str(tmp_path / "train.tsv"), "--student-from",
                              str(tmp_path / "bert"), "--student-dropout", "1.5", "--output", str(tmp_path / "s2")),
                      "--student-dropout")
