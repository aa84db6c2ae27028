"""Each loss term against a hand-computed value."""

import math

import pytest
import torch

from bertdistill.training import losses


def test_hard_ce():
    # −log(e²/(e²+1)) = log(1 + e^−2)
    value = losses.hard_ce(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
    assert float(value) == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


def test_soft_kl_with_temperature():
    # T=2: teacher [2 ln 3, 0]/2 → p=[3/4, 1/4]; student uniform q=[1/2, 1/2]
    # T²·KL = 4 · (0.75 ln 1.5 + 0.25 ln 0.5)
    expected = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    value = losses.soft_kl(torch.zeros(1, 2), torch.tensor([[2 * math.log(3), 0.0]]), temperature=2.0)
    assert float(value) == pytest.approx(expected, abs=1e-6)
    assert float(losses.soft_kl(torch.tensor([[1.0, -1.0]]), torch.tensor([[1.0, -1.0]]), 3.0)) == pytest.approx(0, abs=1e-6)


def test_logit_mse():
    assert float(losses.logit_mse(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2))) == pytest.approx(2.5)


def test_averaged_teacher_probs_weighted():
    # softmax([0,0]) = [.5,.5], softmax([ln 3, 0]) = [.75,.25]; weights 1:3 → [(.5+2.25)/4, (.5+.75)/4]
    probs = losses.averaged_teacher_probs([torch.zeros(1, 2), torch.tensor([[math.log(3), 0.0]])], 1.0, [1, 3])
    assert probs.tolist()[0] == pytest.approx([0.6875, 0.3125])
    assert float(losses.soft_kl_probs(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), 1.0)) == pytest.approx(0, abs=1e-6)


def test_averaged_teacher_logits():
    avg = losses.averaged_teacher_logits([torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 2.0]])], [3, 1])
    assert avg.tolist()[0] == pytest.approx([1.5, 0.5])


def test_pkd_loss_normalizes_states():
    # layer 1: [1,0] vs [0,2] → unit vectors orthogonal → ‖·‖² = 2; layer 2: same direction → 0; mean = 1
    student = torch.tensor([[[1.0, 0.0], [3.0, 4.0]]])
    teacher = torch.tensor([[[0.0, 2.0], [6.0, 8.0]]])
    assert float(losses.pkd_loss(student, teacher)) == pytest.approx(1.0)


def test_weighted_sum_skips_zero_weights():
    terms = {"hard": torch.tensor(2.0), "kd": torch.tensor(3.0), "pkd": torch.tensor(float("nan"))}
    assert float(losses.weighted_sum(terms, {"hard": 0.5, "kd": 2.0, "pkd": 0.0})) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        losses.weighted_sum(terms, {})


def test_hidden_mse_counts_only_real_tokens():
    # token 0: ‖(1,2) − 0‖² = 5, token 1 is padding → 5 / (1 token · width 2)
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    value = losses.hidden_mse(s, torch.zeros_like(s), torch.tensor([[1, 0]]))
    assert float(value) == pytest.approx(2.5)
    assert float(losses.hidden_mse(s, torch.zeros_like(s))) == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_attention_mse_over_real_token_pairs():
    s = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])  # (B=1, heads=1, 2, 2)
    t = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])
    assert float(losses.attention_mse(s, t, torch.tensor([[1, 1]]))) == pytest.approx(2 / 4)
    assert float(losses.attention_mse(s, t, torch.tensor([[1, 0]]))) == pytest.approx(1.0)


def test_relation_log_probs_by_hand():
    # x = y = [[1, 0], [0, 1]], one relation head, d = 2: scores = I/√2
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    logp = losses.relation_log_probs(x, x, heads=1)
    a = 1 / math.sqrt(2)
    assert float(logp[0, 0, 0, 0]) == pytest.approx(a - math.log(math.exp(a) + 1), abs=1e-6)
    assert float(logp[0, 0, 0, 1]) == pytest.approx(-math.log(math.exp(a) + 1), abs=1e-6)
    # two relation heads of width 1: head 0 sees (1, 0), so row 0 scores (1, 0)
    logp2 = losses.relation_log_probs(x, x, heads=2)
    assert float(logp2[0, 0, 0, 0]) == pytest.approx(1 - math.log(math.e + 1), abs=1e-6)
    # a padded key gets no probability
    masked = losses.relation_log_probs(x, x, heads=1, mask=torch.tensor([[1, 0]]))
    assert float(masked[0, 0, 0, 0].exp()) == pytest.approx(1.0)


def test_relation_kl_by_hand():
    # teacher (1/2, 1/2), student (3/4, 1/4): KL = ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3)
    t = torch.log(torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]]))
    s = torch.log(torch.tensor([[[[0.75, 0.25], [0.5, 0.5]]]]))
    assert float(losses.relation_kl(s, t, torch.tensor([[1, 0]]))) == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)
    assert float(losses.relation_kl(s, t)) == pytest.approx(0.25 * math.log(4 / 3), abs=1e-6)
