"""Measured defaults (issue 20): run length from the data size, learning rate from what is trained."""

from bertdistill.training.config import MIN_DEFAULT_UPDATES, STUDENT_LR, TEACHER_LR, TrainConfig, default_updates
from bertdistill.training.student_setup import default_lr


def test_default_updates_three_epochs_on_large_data():
    assert default_updates(1000) == 3000  # 3 epochs of 1,000 updates


def test_default_updates_reach_the_minimum_on_small_data():
    # 1,000 rows at batch 32 are 29 updates per epoch: 3 epochs would be 87 updates (students collapsed)
    assert default_updates(29) == MIN_DEFAULT_UPDATES
    assert default_updates(100) == 300  # exactly 3 epochs


def test_default_updates_stop_at_twenty_epochs_on_tiny_data():
    assert default_updates(4) == 80  # 20 epochs of 4 updates, not 300 updates (75 epochs)


def test_default_lr_by_what_is_trained():
    whole = {"layers": 6, "source_layers": 6, "random_init": False}
    assert default_lr(whole, distilled=False) == (TEACHER_LR, "default for a whole model fine-tuned without teachers")
    assert default_lr(whole, distilled=True)[0] == STUDENT_LR
    assert default_lr({"layers": 3, "source_layers": 6, "random_init": False}, distilled=False)[0] == STUDENT_LR
    assert default_lr({"layers": 3, "source_layers": 6, "random_init": True}, distilled=False)[0] == STUDENT_LR


def test_explicit_values_are_kept():
    config = TrainConfig(epochs=2, lr=3e-5)
    config.check()
    assert (config.epochs, config.lr) == (2, 3e-5)
    TrainConfig().check()  # None = the measured defaults


def test_finetune_without_lr_or_epochs_uses_the_measured_defaults(tmp_path):
    """A 1-of-2-layer student on 64 rows (8 updates per epoch): 20 epochs (< 300 updates), lr 1e-4, recorded."""
    import json

    from conftest import make_tiny_bert, write_toy_pairs

    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune

    base = make_tiny_bert(tmp_path / "base", layers=2, hidden=32)
    train = write_toy_pairs(tmp_path / "train.tsv", n=64, seed=1)
    cfg = FinetuneConfig(train_data=DataSpec(path=str(train)), output=str(tmp_path / "student"),
                         student=StudentConfig(source=str(base), layers=1),
                         train=TrainConfig(batch_size=8, max_length=32, save_every=None), dev_fraction=0.0)
    result = finetune(cfg, show_progress=False)
    assert result.steps == 160  # 20 epochs × 8 updates
    record = json.loads((tmp_path / "student" / "training_record.json").read_text())
    assert record["student"]["default_lr"] == "student default (1 of 2 layers)"
    assert record["config"]["train"]["lr"] == STUDENT_LR


class _Teachers:
    """The part of a teacher source the student default reads: names and provenance."""

    kind = "online"

    def __init__(self, *provenance, names=None):
        self.provenance = list(provenance)
        self.names = names or [t["name"] for t in provenance]

    def describe(self):
        return {"teachers": self.provenance}


def test_a_smaller_student_starts_from_the_first_teachers_layers(tmp_path):
    from bertdistill.training.config import StudentConfig
    from bertdistill.training.student_setup import student_source_from_teacher
    from bertdistill.training.teacher_source import first_teacher

    t1, t2 = tmp_path / "t1", tmp_path / "t2"
    t1.mkdir(), t2.mkdir()
    teachers = _Teachers({"name": "t1", "path": str(t1), "num_layers": 6},
                         {"name": "t2", "path": str(t2), "num_layers": 12})
    path, why = student_source_from_teacher(StudentConfig(layers=3), first_teacher(teachers))
    assert path == str(t1) and "teacher 't1'" in why and "first 3 of 6" in why
    # only the teachers in use count (--teachers t2)
    used = first_teacher(_Teachers(*teachers.provenance, names=["t2"]))
    assert used["name"] == "t2" and student_source_from_teacher(StudentConfig(layers=3), used)[0] == str(t2)
    assert first_teacher(None) is None
    # no default when: a source is given, no teachers, a random or re-shaped student, not fewer layers
    first = first_teacher(teachers)
    for cfg, teacher in [(StudentConfig(source="other", layers=3), first), (StudentConfig(layers=3), None),
                         (StudentConfig(layers=3, random_init=True), first), (StudentConfig(layers=3, width=16), first),
                         (StudentConfig(layers=6), first), (StudentConfig(), first)]:
        assert student_source_from_teacher(cfg, teacher) is None, cfg
    # a store's relative path that does not resolve from here: its recorded absolute directory is used
    moved = {"name": "t1", "path": "runs/t1", "directory": str(t1), "num_layers": 6}
    assert student_source_from_teacher(StudentConfig(layers=3), moved)[0] == str(t1)
    # the teacher's directory is not here at all: no silent change of start, a warning that says what to pass
    gone = {"name": "t1", "path": str(tmp_path / "gone"), "directory": None, "num_layers": 6}
    path, warning = student_source_from_teacher(StudentConfig(layers=3), gone)
    assert path is None and "is not a directory here" in warning and "--student-from" in warning


def test_a_label_store_read_from_another_directory_still_finds_its_teacher(tmp_path, monkeypatch):
    """label --teacher with a relative path in one working directory, finetune --labels from another: the
    student still starts from the teacher's layers (it silently started from the default model before); with
    the teacher gone, the run says so in a warning kept in its record."""
    import json
    import shutil

    from conftest import make_tiny_bert, write_toy_pairs

    from bertdistill.data.sources import DataSpec
    from bertdistill.teachers.label import LabelConfig, label
    from bertdistill.training.config import FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    make_tiny_bert(project / "runs" / "teacher", layers=2, hidden=32, seed=3)
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    monkeypatch.chdir(project)
    label(LabelConfig(teachers=["t=runs/teacher"], data=DataSpec(path=str(train)), output="runs/labels",
                      max_length=32, batch_size=8, quiet=True))
    meta = json.loads((project / "runs" / "labels" / "meta.json").read_text())
    assert meta["teachers"][0]["path"] == "runs/teacher"
    assert meta["teachers"][0]["directory"] == str((project / "runs" / "teacher").resolve())
    monkeypatch.chdir(elsewhere)

    def student(name):
        cfg = FinetuneConfig(train_data=DataSpec(path=str(train)), output=str(elsewhere / name),
                             labels=str(project / "runs" / "labels"), student=StudentConfig(layers=1),
                             train=TrainConfig(batch_size=8, max_length=32, max_steps=1, lr=1e-12, save_every=None),
                             dev_fraction=0.0)
        finetune(cfg, show_progress=False)
        return json.loads((elsewhere / name / "training_record.json").read_text())

    record = student("s1")
    assert record["config"]["student"]["source"] == str((project / "runs" / "teacher").resolve())
    assert "starts from teacher 't'" in record["student"]["source_default"]
    shutil.move(str(project / "runs" / "teacher"), str(tmp_path / "teacher-moved"))
    record = student("s2")
    assert record["config"]["student"]["source"] is None
    assert any("is not a directory here" in w for w in record["summary"]["warnings"])


def test_distilled_student_starts_from_its_teacher(tmp_path):
    """finetune --teacher DIR --student-layers 1 (no --student-from): the student's layer is the teacher's
    first layer, and the record and the saved config say so."""
    import json

    import torch
    from conftest import make_tiny_bert, write_toy_pairs
    from transformers import AutoModelForSequenceClassification

    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune

    teacher = make_tiny_bert(tmp_path / "teacher", layers=2, hidden=32, seed=3)
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    cfg = FinetuneConfig(train_data=DataSpec(path=str(train)), output=str(tmp_path / "student"),
                         teacher_models=[f"t={teacher}"], student=StudentConfig(layers=1),
                         train=TrainConfig(batch_size=8, max_length=32, max_steps=1, lr=1e-12, save_every=None),
                         dev_fraction=0.0)
    finetune(cfg, show_progress=False)
    record = json.loads((tmp_path / "student" / "training_record.json").read_text())
    assert "starts from teacher 't'" in record["student"]["source_default"]
    assert record["config"]["student"]["source"] == str(teacher)
    saved = json.loads((tmp_path / "student" / "training_config.json").read_text())
    assert saved["student"]["source"] == str(teacher)
    t = AutoModelForSequenceClassification.from_pretrained(teacher).bert.encoder.layer[0].state_dict()
    s = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student").bert.encoder.layer[0].state_dict()
    assert all(torch.allclose(t[k], s[k], atol=1e-6) for k in t)


def test_an_explicit_length_far_below_the_default_warns_with_the_numbers():
    """Issue 33: --epochs 3 on 1,146 training rows (36 updates per epoch) is 108 updates against the 300 the defaults
    run; students collapsed at 87 and 108 updates. Half the default length is where the warning starts."""
    from bertdistill.training.config import short_run_warning

    line = short_run_warning(108, 36, TrainConfig(epochs=3))
    assert line == ("--epochs 3 gives 108 updates (36 per epoch), under half of the 300 that the measured defaults run "
                    "(3-layer students collapsed to one class at 87 and 108 updates); leave --epochs out for the "
                    "default length")
    assert short_run_warning(20, 36, TrainConfig(max_steps=20)).startswith("--max-steps 20 gives 20 updates")
    assert short_run_warning(150, 36, TrainConfig(epochs=4.2)) is None  # half of 300: not far below
    assert short_run_warning(108, 36, TrainConfig()) is None  # the defaults' own length is never warned about
    assert short_run_warning(3000, 1000, TrainConfig(epochs=3)) is None
    # one epoch of a large set (WikiQA: 637 updates, the default 1,911) is no short run: 300 is the yardstick
    assert short_run_warning(637, 637, TrainConfig(epochs=1)) is None
    assert "under half of the 300" in short_run_warning(122, 61, TrainConfig(epochs=2))
    # on tiny data the default itself is 20 epochs (80 updates of 4): compared with that, not with 300
    assert "under half of the 80" in short_run_warning(12, 4, TrainConfig(epochs=3))


def test_finetune_prints_the_short_run_warning_once_and_records_it(tmp_path):
    import json

    from cli_helpers import run_cli
    from conftest import make_tiny_bert, write_toy_pairs

    base = make_tiny_bert(tmp_path / "base", layers=2, hidden=32)
    train = write_toy_pairs(tmp_path / "train.tsv", n=64, seed=1)
    common = ["finetune", "--data", train, "--model", base, "--batch-size", "8", "--max-length", "32", "--no-eval"]
    result = run_cli(*common, "--epochs", "3", "--output", tmp_path / "short")
    assert result.code == 0, result.err
    expected = ("warning: --epochs 3 gives 24 updates (8 per epoch), under half of the 160 that the measured defaults "
                "run (3-layer students collapsed to one class at 87 and 108 updates); leave --epochs out for the "
                "default length")
    assert result.err.count("warning:") == 1 and expected in result.err
    record = json.loads((tmp_path / "short" / "training_record.json").read_text())
    assert record["summary"]["length_warning"] == expected.removeprefix("warning: ")
    fine = run_cli(*common, "--epochs", "10", "--output", tmp_path / "long")  # 80 of 160 updates: not warned
    assert fine.code == 0 and "warning" not in fine.err
