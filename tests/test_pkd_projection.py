"""PKD's width projection starts fitted (least squares on the first training batch), not random."""

from __future__ import annotations

import pytest
import torch

from bertdistill.student.features import Features
from bertdistill.training.config import DistillConfig
from bertdistill.training.objective import build_objective
from bertdistill.training.terms import TeacherInfo
from bertdistill.training.terms.base import fit_projection


class _Shape:
    def __init__(self, layers=3, hidden=8, heads=2):
        self.num_hidden_layers, self.hidden_size, self.num_attention_heads = layers, hidden, heads


def test_fit_projection_by_hand():
    # x = 1, 2, 3 → y = 2, 4, 6: centred x −1, 0, 1, XᵀX = 2, λ = 0.1·2/1 = 0.2, XᵀY = 4, w = 4/2.2, b = 4 − 2w.
    proj = torch.nn.Linear(1, 1)
    fit_projection(proj, torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[2.0], [4.0], [6.0]]))
    assert float(proj.weight.detach()) == pytest.approx(4 / 2.2, abs=1e-5)
    assert float(proj.bias.detach()) == pytest.approx(4 - 2 * 4 / 2.2, abs=1e-5)


def test_fit_projection_recovers_an_exact_linear_map_without_ridge():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    a, b = torch.randn(4, 6, generator=g), torch.randn(6, generator=g)
    proj = torch.nn.Linear(4, 6)
    fit_projection(proj, x, x @ a + b, ridge=0.0)
    assert torch.allclose(proj.weight, a.T, atol=1e-3) and torch.allclose(proj.bias, b, atol=1e-3)


def _batch(seed=0, rows=16):
    """A 3-layer student of width 8 whose [CLS] states carry a 16-wide 6-layer teacher's, linearly."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(8, 16, generator=torch.Generator().manual_seed(99))
    cls = torch.randn(rows, 2, 8, generator=g)
    hidden = {layer: cls[:, layer - 1:layer] for layer in (1, 2)}
    student = Features(logits=torch.randn(1, rows, 2, generator=g), hidden=hidden)
    teacher_cls = cls @ mixing + 0.01 * torch.randn(rows, 2, 16, generator=g)
    teachers = {"t": Features(logits=torch.randn(rows, 2, generator=g),
                              cls={2: teacher_cls[:, 0], 4: teacher_cls[:, 1]})}
    return student, teachers, {"label": torch.randint(0, 2, (rows,), generator=g)}


def _pkd(**options):
    distill = (DistillConfig(pkd="skip", terms={"pkd": {"weight": 10.0, **options}}) if options
               else DistillConfig(pkd="skip", pkd_beta=10.0))
    objective, described = build_objective(distill, [TeacherInfo("t", 6, 16, stored_layers=[2, 4])], _Shape(), "avg")
    return objective, objective.term("pkd"), described


def test_the_projection_is_fitted_on_the_first_training_batch_only():
    objective, pkd, described = _pkd()
    assert described["terms"]["pkd"]["projection_init"] == {"t": "least squares on the first training batch"}
    student, teachers, batch = _batch()
    random_start = pkd.projections["w16"].weight.detach().clone()
    _, parts = objective(student, teachers, batch)
    # The states are linear in each other: the fitted start leaves almost nothing to match (a random map: ~1–2).
    assert parts["pkd"].item() < 0.05
    assert not bool(pkd.unfitted.any())
    assert "unfitted" in {k.split(".")[-1] for k in objective.state_dict()}  # saved with checkpoints: no refit
    fitted = pkd.projections["w16"].weight.detach().clone()
    assert not torch.equal(fitted, random_start)
    objective(*_batch(seed=1))
    assert torch.equal(pkd.projections["w16"].weight, fitted)  # later batches train it by gradient only


def test_no_fit_in_evaluation_or_with_a_random_start():
    objective, pkd, _ = _pkd()
    objective.eval()
    before = pkd.projections["w16"].weight.detach().clone()
    objective(*_batch())
    assert torch.equal(pkd.projections["w16"].weight, before) and bool(pkd.unfitted.all())

    objective, pkd, described = _pkd(projection_start="random")
    assert described["terms"]["pkd"]["projection_init"] == {"t": "random"}
    before = pkd.projections["w16"].weight.detach().clone()
    _, parts = objective(*_batch())
    assert torch.equal(pkd.projections["w16"].weight, before) and parts["pkd"].item() > 0.3


def test_a_resumed_objective_keeps_its_trained_projection():
    objective, pkd, _ = _pkd()
    objective(*_batch())
    saved = objective.state_dict()
    resumed, resumed_pkd, _ = _pkd()
    resumed.load_state_dict(saved)
    resumed(*_batch(seed=3))
    assert torch.equal(resumed_pkd.projections["w16"].weight, pkd.projections["w16"].weight)


def test_a_checkpoint_from_before_the_fitted_start_loads_as_fitted():
    objective, pkd, _ = _pkd(projection_start="random")
    old = {k: v for k, v in objective.state_dict().items() if not k.endswith("unfitted")}
    resumed, resumed_pkd, _ = _pkd()
    resumed.load_state_dict(old)  # strict: no missing key
    assert resumed_pkd.unfitted.tolist() == [False]
    resumed(*_batch())
    assert torch.equal(resumed_pkd.projections["w16"].weight, pkd.projections["w16"].weight)
