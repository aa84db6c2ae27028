"""Loss terms as plug-ins: today's values kept, the registry, online = offline teachers, new terms wired end to end."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store

from bertdistill.student.features import Features
from bertdistill.training.config import DistillConfig
from bertdistill.training.objective import build_objective
from bertdistill.training.terms import TERMS, LossTerm, TeacherInfo, register


class _Shape:
    """A student config as build_objective reads it."""

    def __init__(self, layers=3, hidden=8, heads=2):
        self.num_hidden_layers, self.hidden_size, self.num_attention_heads = layers, hidden, heads


def _fixed_batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 2, generator=g)  # 2 heads, 4 rows
    teacher_logits = torch.randn(2, 4, 2, generator=g)
    labels = torch.tensor([0, 1, 1, 0])
    cls = torch.randn(4, 2, 8, generator=g)  # student [CLS] at layers 1, 2
    teacher_cls = {"a": torch.randn(4, 2, 8, generator=g), "b": torch.randn(4, 2, 8, generator=g)}
    hidden = {layer: torch.cat([cls[:, layer - 1:layer], torch.zeros(4, 3, 8)], dim=1) for layer in (1, 2)}
    student = Features(logits=logits, hidden=hidden)
    # A 6-layer teacher: PKD-skip for a 3-layer student matches student layers 1, 2 to teacher layers 2, 4.
    teachers = {name: Features(logits=teacher_logits[k], cls={2: teacher_cls[name][:, 0], 4: teacher_cls[name][:, 1]})
                for k, name in enumerate(("a", "b"))}
    return student, teachers, {"label": labels}


# Values of the if-chain objective this redesign replaced, on the batch above (hard 0.3, kd 0.7, pkd 10, T=2).
TODAY = [("heads", "kl", None, 0.4759738, 0.3034189, 2.162365),
         ("heads", "mse", [1.0, 3.0], 0.4759738, 1.0165879, 2.162365),
         ("avg", "kl", [2.0, 1.0], 0.4759738, 0.2704261, 2.162365),
         ("avg", "mse", None, 0.4759738, 0.5441288, 2.162365)]


@pytest.mark.parametrize("mode,kd_loss,weights,hard,kd,pkd", TODAY)
def test_hard_kd_pkd_terms_give_todays_values(mode, kd_loss, weights, hard, kd, pkd):
    student, teachers, batch = _fixed_batch()
    infos = [TeacherInfo(n, 6, 8, stored_layers=[2, 4]) for n in ("a", "b")]
    distill = DistillConfig(alpha=0.7, temperature=2.0, kd_loss=kd_loss, teacher_mode=mode, teacher_weights=weights,
                            pkd="skip", pkd_beta=10.0)
    objective, described = build_objective(distill, infos, _Shape(), mode)
    total, parts = objective(student, teachers, batch)
    assert float(parts["hard"]) == pytest.approx(hard, abs=1e-6)
    assert float(parts["kd"]) == pytest.approx(kd, abs=1e-6)
    assert float(parts["pkd"]) == pytest.approx(pkd, abs=1e-5)
    assert float(total) == pytest.approx(0.3 * hard + 0.7 * kd + 10 * pkd, abs=1e-4)
    assert described["pkd"]["pairs"] == {"a": [(1, 2), (2, 4)], "b": [(1, 2), (2, 4)]}


def test_a_registered_term_is_built_by_name_and_logged():
    @register
    class LogitL1(LossTerm):
        name = "test_logit_l1"
        formula = "mean |z_s − mean_k z_k|"

        def forward(self, student, teachers, batch):
            target = torch.stack([f.logits for f in teachers.values()]).mean(0)
            return (student.logits.float().mean(0) - target).abs().mean()

    try:
        student, teachers, batch = _fixed_batch()
        infos = [TeacherInfo(n, 6, 8) for n in ("a", "b")]
        objective, described = build_objective(DistillConfig(alpha=1.0, terms={"test_logit_l1": 2.0}), infos,
                                               _Shape(), "avg")
        total, parts = objective(student, teachers, batch)
        assert set(parts) == {"kd", "test_logit_l1"}
        assert float(total) == pytest.approx(float(parts["kd"]) + 2 * float(parts["test_logit_l1"]), rel=1e-6)
        assert described["terms"]["test_logit_l1"] == {"weight": 2.0, "formula": "mean |z_s − mean_k z_k|"}
    finally:
        TERMS.pop("test_logit_l1")


def test_online_only_terms_refuse_store_teachers_and_unknown_terms():
    from bertdistill.errors import UserError

    infos = [TeacherInfo("a", 6, 8, online=False)]
    with pytest.raises(UserError, match="needs teachers run in the loop"):
        build_objective(DistillConfig(terms={"minilm_attention": 1.0}), infos, _Shape(), "avg")
    with pytest.raises(UserError, match="unknown loss term 'nope'"):
        build_objective(DistillConfig(terms={"nope": 1.0}), infos, _Shape(), "avg")
    with pytest.raises(UserError, match="equal head counts"):
        build_objective(DistillConfig(terms={"attention_mse": 1.0}), [TeacherInfo("a", 6, 8, 4, online=True)],
                        _Shape(heads=2), "avg")


def _student_and_teachers(tmp_path, store, teacher_dirs, distill, layers=2):
    """The training module and both teacher sources for the same student, data and teachers."""
    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.student.config import StudentConfig
    from bertdistill.teachers.store import LabelStore
    from bertdistill.training import setup, student_setup
    from bertdistill.training.objective import DistillationModule
    from bertdistill.training.teacher_source import OnlineTeachers, StoreTeachers

    data = load_task_data(DataSpec(path=str(tmp_path / "train.tsv")))
    offline = StoreTeachers(LabelStore.open(store))
    first = next(iter(teacher_dirs.values()))
    model, tok, _ = student_setup.build_student(StudentConfig(source=str(first), layers=layers), ["0", "1"],
                                        list(teacher_dirs), 0)
    online = OnlineTeachers([f"{n}={p}" for n, p in teacher_dirs.items()], ["0", "1"], tok)
    objective, _ = build_objective(distill, online.infos, model.config, "heads")
    module = DistillationModule(model, objective).eval()
    encoded = setup.encode_rows(tok, data, 64)
    return module, offline, online, encoded, tok


def test_online_and_offline_teachers_give_the_same_kd_and_pkd(tmp_path):
    from bertdistill.training.batches import TrainSet

    teachers = {"t1": make_tiny_bert(tmp_path / "t1", layers=4, seed=1),
                "t2": make_tiny_bert(tmp_path / "t2", layers=4, seed=2)}
    train = write_toy_pairs(tmp_path / "train.tsv", n=24, seed=3)
    store = make_store(tmp_path / "store", train, teachers)
    distill = DistillConfig(alpha=0.5, pkd="skip", pkd_beta=10.0)
    module, offline, online, encoded, tok = _student_and_teachers(tmp_path, store, teachers, distill)
    requests = {t.name: module.objective.teacher_request(t) for t in online.infos}
    offline.prepare(requests)
    online.prepare(requests)
    rows = list(range(8))
    with torch.no_grad():
        batch_off = TrainSet(encoded, tok.pad_token_id, offline).batch(rows)
        batch_on = TrainSet(encoded, tok.pad_token_id, online).batch(rows)
        _, off = module(batch_off, offline.features(batch_off))
        _, on = module(batch_on, online.features(batch_on))
    assert float(on["kd"]) == pytest.approx(float(off["kd"]), abs=1e-5)
    assert float(on["hard"]) == pytest.approx(float(off["hard"]), abs=1e-7)
    assert float(on["pkd"]) == pytest.approx(float(off["pkd"]), abs=2e-3)  # the store keeps states in float16


def test_new_terms_are_zero_against_an_identical_teacher(tmp_path):
    """A student that is exactly the teacher matches every state: each term is 0 (up to rounding)."""
    teacher = make_tiny_bert(tmp_path / "t1", layers=2, seed=1)
    train = write_toy_pairs(tmp_path / "train.tsv", n=16, seed=3)
    store = make_store(tmp_path / "store", train, {"t1": teacher})
    terms = {"hidden_mse": 1.0, "attention_mse": 1.0, "minilm_attention": 1.0, "minilm_value": 1.0}
    distill = DistillConfig(alpha=1.0, terms=terms)
    module, _, online, encoded, tok = _student_and_teachers(tmp_path, store, {"t1": teacher}, distill, layers=2)
    online.prepare({t.name: module.objective.teacher_request(t) for t in online.infos})
    from bertdistill.training.batches import TrainSet

    batch = TrainSet(encoded, tok.pad_token_id, online).batch(list(range(8)))
    with torch.no_grad():
        _, parts = module(batch, online.features(batch))
    assert set(parts) == {"kd", *terms}
    for name in terms:
        assert float(parts[name]) == pytest.approx(0.0, abs=1e-6), name


@pytest.mark.parametrize("term", ["hidden_mse", "attention_mse", "minilm_attention", "minilm_value"])
def test_each_new_term_trains_from_the_cli_with_online_teachers(tmp_path, term):
    from cli_helpers import run_cli

    teacher = make_tiny_bert(tmp_path / "t", layers=4, hidden=32, heads=2, seed=1)
    student_src = make_tiny_bert(tmp_path / "s", layers=4, hidden=16, heads=2, seed=2)  # narrower than the teacher
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=4)
    if term == "attention_mse":
        student_src = make_tiny_bert(tmp_path / "s", layers=4, hidden=32, heads=2, seed=2)
    out = tmp_path / "student"
    result = run_cli("finetune", "--data", train, "--teacher", f"t={teacher}", "--student-from", student_src,
                     "--student-layers", "2", "--term", f"{term}=1", "--max-steps", "3", "--batch-size", "8",
                     "--max-length", "32", "--output", out)
    assert result.code == 0, result.err
    record = json.loads((out / "training_record.json").read_text())
    assert record["objective"]["terms"][term]["weight"] == 1.0
    assert record["objective"]["teacher_source"]["source"] == "online"
    assert term in record["config"]["distill"]["terms"]
    assert (out / "model.safetensors").is_file()


def test_pkd_projection_of_a_pruned_student_starts_as_its_kept_dimensions():
    """Width 4 pruned from width 8 (dims 6, 1, 3, 0): the projection puts each state back at its source dims,
    so a state that is the teacher's own restricted to those dims projects onto it; other widths start fitted
    on the first training batch (until then, from nn.Linear's random init)."""
    from bertdistill.prune.shrink import RESIDUAL_ATTR

    shape = _Shape(hidden=4)
    index = [6, 1, 3, 0]
    setattr(shape, RESIDUAL_ATTR, {"source_width": 8, "index": index})
    infos = [TeacherInfo("a", 6, 8, stored_layers=[2, 4]), TeacherInfo("b", 6, 12, stored_layers=[2, 4])]
    objective, described = build_objective(DistillConfig(alpha=0.5, pkd="skip"), infos, shape, "avg")
    assert described["terms"]["pkd"]["projection_init"] == {"a": "pruned residual index",
                                                            "b": "least squares on the first training batch"}
    proj = objective.term("pkd").projections
    teacher_state = torch.arange(1.0, 9.0)
    restricted = torch.zeros(8)
    restricted[index] = teacher_state[index]
    assert torch.equal(proj["w8"](teacher_state[index]), restricted)
    assert float(proj["w12"].weight.abs().sum()) > 0 and not torch.equal(proj["w12"].weight[:4], torch.eye(4))
    assert objective.term("pkd").unfitted.tolist() == [False, True]  # the pruned start is kept, not refitted
    # No record, or a record of another width: fitted on the first batch.
    plain, _ = build_objective(DistillConfig(alpha=0.5, pkd="skip"), infos[:1], _Shape(hidden=4), "avg")
    assert plain.term("pkd").unfitted.tolist() == [True]


def test_each_term_has_options_of_its_own_defaulting_to_the_run_wide_settings():
    """--temperature and --kd-loss are the defaults of kd's options; --term kd=...,key=value and a config's
    {"weight": w, key: value} set them per term; listwise_kd keeps a temperature of its own."""
    from bertdistill.commands.finetune import term_weights

    infos = [TeacherInfo(n, 6, 8, stored_layers=[2, 4]) for n in ("a", "b")]
    given = term_weights(["kd=0.6,loss=mse", "listwise_kd=0.7,temperature=1"])
    assert given == {"kd": {"weight": 0.6, "loss": "mse"}, "listwise_kd": {"weight": 0.7, "temperature": "1"}}
    objective, described = build_objective(DistillConfig(alpha=0.5, temperature=3.0, terms=given), infos, _Shape(),
                                           "heads")
    kd, listwise = objective.term("kd"), objective.term("listwise_kd")
    assert (kd.weight, kd.options.loss, kd.options.temperature) == (0.6, "mse", 3.0)
    assert listwise.options.temperature == 1.0 and isinstance(listwise.options.temperature, float)
    assert described["terms"]["kd"] | {"formula": None} == {"weight": 0.6, "formula": None, "temperature": 3.0,
                                                            "loss": "mse"}
    assert described["terms"]["listwise_kd"]["temperature"] == 1.0
    # A plain weight keeps the run-wide settings; --pkd chooses pkd's mode, which --term pkd=...,mode= overrides.
    objective, _ = build_objective(DistillConfig(pkd="last", terms={"pkd": {"weight": 2.0, "mode": "skip"}}), infos,
                                   _Shape(), "avg")
    assert (objective.term("pkd").weight, objective.term("pkd").options.mode) == (2.0, "skip")


@pytest.mark.parametrize("terms, needles", [
    ({"kd": {"weight": 1.0, "tempreature": 2}}, ["no option 'tempreature'", "temperature, loss"]),
    ({"kd": {"weight": 1.0, "loss": "hinge"}}, ["loss='hinge'", "kl, mse"]),
    ({"listwise_kd": {"weight": 1.0, "temperature": "hot"}}, ["temperature='hot' is not float"]),
    ({"listwise_kd": {"weight": 1.0, "temperature": 0}}, ["temperature 0 must be a finite positive number"]),
    ({"margin_mse": {"weight": 1.0, "scale": 2}}, ["no option 'scale'", "give only its weight"]),
    ({"kd": {"weight": -1}}, ["has weight -1"]),
])
def test_bad_term_options_are_one_line(terms, needles):
    from bertdistill.errors import UserError

    infos = [TeacherInfo("a", 6, 8)]
    with pytest.raises(UserError) as err:
        build_objective(DistillConfig(terms=terms), infos, _Shape(), "avg")
    assert all(n in err.value.line() for n in needles), err.value.line()
