"""Measured defaults (issue 20): run length from the data size, learning rate from what is trained."""

from bertdistill.training.config import MIN_DEFAULT_UPDATES, STUDENT_LR, TEACHER_LR, TrainConfig, default_updates
from bertdistill.training.setup import default_lr


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
