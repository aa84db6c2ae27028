"""Training never publishes a wrong result: divergence, non-finite options, changed inputs on resume, two writers."""

from __future__ import annotations

import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import small_train


def _plain_config(tmp_path, train, model, out="out", **train_kw):
    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import FinetuneConfig, StudentConfig

    return FinetuneConfig(train_data=DataSpec(path=str(train)), output=str(tmp_path / out),
                          student=StudentConfig(source=str(model), layers=2), train=small_train(**train_kw))


def test_a_diverged_run_publishes_nothing_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from bertdistill.errors import UserError
    from bertdistill.training import terms
    from bertdistill.training.finetune import finetune

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=32)
    real = terms.HardLabels.forward
    calls = {"n": 0}

    def nan_after_two_steps(self, student, teachers, batch):
        calls["n"] += 1
        value = real(self, student, teachers, batch)
        return value * float("nan") if calls["n"] > 2 else value

    monkeypatch.setattr(terms.HardLabels, "forward", nan_after_two_steps)
    with pytest.raises(UserError, match=r"training diverged: at step 3, loss term 'hard' is nan") as info:
        finetune(_plain_config(tmp_path, train, model, max_steps=5, save_every=1, epochs=1), show_progress=False)
    assert "checkpoint (step-2) is kept" in str(info.value)
    out = tmp_path / "out"
    assert not (out / ".complete").exists() and not (out / "model.safetensors").exists()
    assert (out / "checkpoints" / "step-2" / ".complete").is_file()


def test_non_finite_weights_are_never_published(tmp_path, monkeypatch):
    from bertdistill.errors import UserError
    from bertdistill.training import loop
    from bertdistill.training.finetune import finetune

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=16)
    real_step = loop.train_step

    def poisoning_step(accelerator, module, *args, **kwargs):
        terms = real_step(accelerator, module, *args, **kwargs)
        with torch.no_grad():
            next(module.parameters()).fill_(float("inf"))
        return terms

    monkeypatch.setattr(loop, "train_step", poisoning_step)
    with pytest.raises(UserError, match="holds NaN/inf after step 1"):
        finetune(_plain_config(tmp_path, train, model, max_steps=1), show_progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,value,needle", [
    ("--lr", "nan", "learning rate"), ("--lr", "1e12", "learning rate"), ("--epochs", "inf", "epochs"),
    ("--epochs", "nan", "epochs"), ("--temperature", "nan", "temperature"), ("--alpha", "nan", "alpha"),
    ("--pkd-beta", "inf", "PKD weight"), ("--warmup-ratio", "nan", "warm-up"), ("--term", "hidden_mse=nan", "weight"),
])
def test_non_finite_training_options_are_one_line_errors(tmp_path, option, value, needle):
    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=16)
    result = run_cli("finetune", "--data", train, "--model", model, option, value, "--output", tmp_path / "out")
    assert_user_error(result, needle)
    assert not (tmp_path / "out").exists()


def test_resume_refuses_training_data_changed_since_the_checkpoint(tmp_path, monkeypatch):
    from bertdistill.errors import UserError
    from bertdistill.training import batches
    from bertdistill.training.finetune import finetune

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    real_batch = batches.TrainSet.batch
    calls = {"n": 0}

    def interrupting_batch(self, indices):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_batch(self, indices)

    monkeypatch.setattr(batches.TrainSet, "batch", interrupting_batch)
    with pytest.raises(UserError, match="--resume"):
        finetune(_plain_config(tmp_path, train, model, save_every=1, epochs=2), show_progress=False)
    monkeypatch.setattr(batches.TrainSet, "batch", real_batch)
    write_toy_pairs(train, n=32, seed=2)  # same size and columns, other rows
    config = _plain_config(tmp_path, train, model, save_every=1, epochs=2)
    config.resume = True
    with pytest.raises(UserError, match="the training data changed since the checkpoint"):
        finetune(config, show_progress=False)


def test_resume_may_change_what_judges_the_model_but_not_what_trains_it(tmp_path, monkeypatch):
    """--strict, --allow-collapsed and --baseline only judge the finished model: a resumed run may change them, and a
    checkpoint whose fingerprint holds them (or predates them) resumes. --lr still may not change."""
    from bertdistill.errors import UserError
    from bertdistill.io import read_json, write_json
    from bertdistill.training import batches
    from bertdistill.training.checkpoints import STATE_FILE
    from bertdistill.training.finetune import finetune

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=32, seed=1)
    real_batch = batches.TrainSet.batch
    calls = {"n": 0}

    def interrupting_batch(self, indices):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_batch(self, indices)

    monkeypatch.setattr(batches.TrainSet, "batch", interrupting_batch)
    with pytest.raises(UserError, match="--resume"):
        finetune(_plain_config(tmp_path, train, model, save_every=1, epochs=2), show_progress=False)
    monkeypatch.setattr(batches.TrainSet, "batch", real_batch)
    state_file = next((tmp_path / "out" / "checkpoints").glob("step-*")) / STATE_FILE
    state = read_json(state_file)
    state["fingerprint"]["guards"] = {"strict": False}  # as an older version wrote it
    write_json(state_file, state)
    changed_lr = _plain_config(tmp_path, train, model, save_every=1, epochs=2, lr=5e-4)
    changed_lr.resume = True
    with pytest.raises(UserError, match=r"other settings \(train\)"):
        finetune(changed_lr, show_progress=False)
    config = _plain_config(tmp_path, train, model, save_every=1, epochs=2)
    config.resume, config.guards.strict, config.guards.allow_collapsed = True, True, True
    result = finetune(config, show_progress=False)
    assert result.steps == 8 and (tmp_path / "out" / ".complete").is_file()


def test_a_second_writer_of_one_output_is_refused_with_the_holders_pid(tmp_path):
    import os

    from bertdistill.io import output_lock

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=16)
    with output_lock(tmp_path / "out"):
        result = run_cli("finetune", "--data", train, "--model", model, "--max-steps", "1", "--output", tmp_path / "out")
    assert_user_error(result, f"pid {os.getpid()}", "another bertdistill run")
    assert not (tmp_path / ".out.lock").exists()
    result = run_cli("finetune", "--data", train, "--model", model, "--max-steps", "1", "--output", tmp_path / "out")
    assert result.code == 0, result.err


def test_a_collapsed_run_is_saved_marked_failed_and_exits_3(tmp_path):
    """Issue 33's step-0 case: a tiny model barely trained predicts one class at every evaluation, and the
    untrained start (step 0) scores as well as any trained step, so it used to be the kept "best" model and the
    run exited 0. Now the kept model comes from training, and the run is saved but marked as failed: exit 3, one
    verdict line, FAILED in the folder and the verdict in its record."""
    import json

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=240, seed=5)
    args = ["finetune", "--data", train, "--model", model, "--max-steps", "2", "--lr", "1e-7", "--batch-size", "16",
            "--max-length", "32"]
    result = run_cli(*args, "--output", tmp_path / "out")
    assert result.code == 3, result.err
    assert "note: dev split: 24 of 240 training rows held out" in result.err
    assert "warning: the student predicts one class for 100% of the dev rows (collapsed)" in result.err
    assert "warning: the student's scores barely vary across dev rows" in result.err
    assert "warning: --max-steps 2 gives 2 updates (14 per epoch), under half of the 280" in result.err
    last = result.err.strip().splitlines()[-1]  # after the training output: one verdict line, no traceback
    assert "Traceback" not in result.err
    assert last.startswith("failed: ") and "collapsed" in last and "at every evaluation after training began" in last
    assert "marked as failed" in last and "--allow-collapsed" in last and str(tmp_path / "out") in last

    out = tmp_path / "out"
    record = json.loads((out / "training_record.json").read_text())
    evaluations = {e["step"]: e for e in record["evaluations"]}
    assert sorted(evaluations) == [0, 2]
    # The untrained start scores as well as the trained step (ties used to keep the earlier one: step 0) ...
    assert evaluations[0]["accuracy"] >= evaluations[2]["accuracy"]
    # ... but the kept model is the trained one.
    assert record["summary"]["best_step"] == 2
    assert record["summary"]["dev_report"]["student"]["step"] == 2
    verdict = record["summary"]["verdict"]
    assert verdict["status"] == "failed" and verdict["reason"] == "collapsed" and verdict["collapsed"]
    assert any("collapsed" in w for w in record["summary"]["warnings"])
    assert (out / "FAILED").read_text().startswith("failed: collapsed: it answered one class")
    assert (out / ".complete").is_file() and (out / "model.safetensors").is_file()  # complete, saved, marked
    reused = run_cli("finetune", "--data", train, "--student-from", out, "--max-steps", "1", "--no-eval",
                     "--output", tmp_path / "reused")  # whoever uses it is told, once
    assert reused.code == 0, reused.err
    assert reused.err.count(f"warning: --student-from {out} was marked as failed by its training run "
                            "(failed: collapsed: it answered one class") == 1

    allowed = run_cli(*args, "--allow-collapsed", "--output", tmp_path / "allowed")
    assert allowed.code == 0, allowed.err
    assert "warning: the student predicts one class for 100% of the dev rows (collapsed)" in allowed.err
    assert not (tmp_path / "allowed" / "FAILED").exists()
    record = json.loads((tmp_path / "allowed" / "training_record.json").read_text())
    assert record["summary"]["verdict"]["status"] == "ok" and record["summary"]["verdict"]["collapsed"]
    assert "accepted with --allow-collapsed" in record["summary"]["verdict"]["line"]

    strict = run_cli(*args, "--strict", "--output", tmp_path / "strict")
    last = strict.err.strip().splitlines()[-1]
    assert strict.code == 3 and "Traceback" not in strict.err  # saved, failed: not the bad-input status 2
    assert last.startswith("failed: ") and "failed 2 check(s)" in last and "collapsed" in last and "--strict" in last
    assert (tmp_path / "strict" / "FAILED").is_file()
    no_eval = run_cli(*args, "--no-eval", "--output", tmp_path / "all")
    assert no_eval.code == 0 and "dev split" not in no_eval.err
    assert [line for line in no_eval.err.splitlines() if line.startswith("warning:")] == [
        "warning: --max-steps 2 gives 2 updates (15 per epoch), under half of the 300 that the measured defaults run "
        "(3-layer students collapsed to one class at 87 and 108 updates); leave --max-steps out for the default "
        "length"]


def test_a_collapsed_run_raises_run_failed_from_the_library(tmp_path):
    """finetune() raises RunFailed (a UserError whose exit status is 3) carrying the saved run's result."""
    from bertdistill.data.sources import DataSpec
    from bertdistill.errors import EXIT_RUN_FAILED, RunFailed, UserError
    from bertdistill.training.config import FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=240, seed=5)
    config = FinetuneConfig(train_data=DataSpec(path=str(train)), output=str(tmp_path / "out"),
                            student=StudentConfig(source=str(model)),
                            train=small_train(max_steps=2, lr=1e-7, batch_size=16))
    with pytest.raises(RunFailed) as info:
        finetune(config, show_progress=False)
    assert isinstance(info.value, UserError) and info.value.exit_code == EXIT_RUN_FAILED == 3
    assert info.value.result.best_step == 2 and info.value.result.verdict["status"] == "failed"
    assert (tmp_path / "out" / "FAILED").is_file()


def test_the_verdict_counts_only_evaluations_after_training_began():
    from bertdistill.training.guards import GuardConfig, run_verdict

    def ev(step, share, spread=1.0):
        return {"step": step, "predicted_class_share": share, "score_spread": spread}

    guards = GuardConfig()
    assert run_verdict([ev(0, 1.0), ev(36, 1.0), ev(72, 0.96)], [], "pair", guards)["status"] == "failed"
    learned = run_verdict([ev(0, 1.0), ev(36, 1.0), ev(72, 0.6)], [], "pair", guards)
    assert learned == {"status": "ok", "reason": None, "collapsed": False, "line": "trained"}
    assert run_verdict([ev(0, 0.5), ev(36, 0.99)], [], "pair", guards)["line"] == (
        "collapsed: it answered one class for ≥ 95% of the rows at every evaluation after training began "
        "(1, step 36)")
    # ranking: one class is normal; scores that barely vary are the collapse
    assert run_verdict([ev(5, 1.0, spread=0.5)], [], "ranking", guards)["status"] == "ok"
    assert run_verdict([ev(5, 0.5, spread=0.001)], [], "ranking", guards)["status"] == "failed"
    ranked = {"step": 5, "score_spread": 0.01, "teacher_score_spread": 1.0}
    assert run_verdict([ranked], [], "ranking", guards)["reason"] == "collapsed"
    # --allow-collapsed accepts it; --strict fails any warning, and says so first
    allowed = run_verdict([ev(5, 1.0)], ["w"], "pair", GuardConfig(allow_collapsed=True))
    assert allowed["status"] == "ok" and allowed["collapsed"]
    strict = run_verdict([ev(5, 0.5)], ["dev accuracy 0.4 is below"], "pair", GuardConfig(strict=True))
    assert strict["reason"] == "strict" and "failed 1 check(s) under --strict: dev accuracy" in strict["line"]
    assert run_verdict([], [], "pair", guards)["status"] == "ok"  # no evaluation: nothing to judge


def test_baseline_is_scored_on_the_same_dev_rows_and_shown_beside_the_student(tmp_path):
    """--baseline MODEL: the run's table has the baseline's dev metrics (the same rows: a baseline trained with the
    defaults on the same data recorded the same accuracy for itself) and one line with the difference."""
    import json

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=240, seed=5)
    common = ["--data", train, "--batch-size", "16", "--max-length", "32", "--lr", "1e-3"]
    base = run_cli("finetune", *common, "--model", model, "--max-steps", "20", "--allow-collapsed",
                   "--output", tmp_path / "base")
    assert base.code == 0, base.err
    own = json.loads((tmp_path / "base" / "training_record.json").read_text())["summary"]["dev_report"]["student"]
    result = run_cli("finetune", *common, "--model", model, "--max-steps", "3", "--seed", "2", "--allow-collapsed",
                     "--baseline", tmp_path / "base", "--output", tmp_path / "student")
    assert result.code == 0, result.err
    assert "baseline (--baseline)" in result.out
    assert f"against the baseline ({tmp_path / 'base'}): dev accuracy" in " ".join(result.out.split())
    report = json.loads((tmp_path / "student" / "training_record.json").read_text())["summary"]["dev_report"]
    assert report["baseline"]["model"] == str(tmp_path / "base")
    assert report["baseline"]["accuracy"] == pytest.approx(own["accuracy"])
    assert report["baseline"]["predicted_class_share"] == pytest.approx(own["predicted_class_share"])
    delta = report["student"]["accuracy"] - report["baseline"]["accuracy"]
    assert f"({delta:+.4f}," in " ".join(result.out.split())

    missing = run_cli("finetune", *common, "--model", model, "--baseline", tmp_path / "nope", "--output", tmp_path / "x")
    assert_user_error(missing, "model directory not found")
    other = make_tiny_bert(tmp_path / "three", layers=1, label_names=("a", "b", "c"))
    mismatch = run_cli("finetune", *common, "--model", model, "--baseline", other, "--output", tmp_path / "x")
    assert_user_error(mismatch, "do not match the data's labels")
    no_eval = run_cli("finetune", *common, "--model", model, "--baseline", tmp_path / "base", "--no-eval",
                      "--output", tmp_path / "x")
    assert_user_error(no_eval, "--baseline", "evaluates on none")
    assert not (tmp_path / "x").exists()


def test_dev_split_keeps_whole_queries():
    from bertdistill.training.guards import dev_split

    groups = [f"q{i // 4}" for i in range(400)]
    train, dev = dev_split(400, 0.1, seed=0, groups=groups)
    assert len(dev) == 40 and len(train) == 360
    assert not {groups[i] for i in dev} & {groups[i] for i in train}
    again_train, again_dev = dev_split(400, 0.1, seed=0, groups=groups)
    assert list(again_dev) == list(dev)


def test_the_dev_split_does_not_follow_the_training_seed(tmp_path):
    """A teacher and its students trained with different seeds hold out the same dev rows."""
    import json

    model = make_tiny_bert(tmp_path / "m", layers=2)
    train = write_toy_pairs(tmp_path / "train.tsv", n=220, seed=3)
    kept = []
    for seed in (1, 2):
        out = tmp_path / f"s{seed}"
        result = run_cli("finetune", "--data", train, "--model", model, "--max-steps", "1", "--seed", seed,
                         "--batch-size", "16", "--max-length", "32", "--allow-collapsed", "--output", out)
        assert result.code == 0, result.err
        record = json.loads((out / "training_record.json").read_text())
        kept.append(record["data"]["eval"])
    assert kept[0] == kept[1] and kept[0]["held_out_rows"] == 22 and kept[0]["seed"] == 0


def test_ranking_students_are_judged_by_ranking_not_by_the_majority_class():
    import numpy as np

    from bertdistill.training.guards import GuardConfig, check_student, majority_baseline

    groups = [f"q{i // 5}" for i in range(100)]
    labels = np.array([1 if i % 5 == 0 else 0 for i in range(100)])
    baseline = majority_baseline("ranking", ["0", "1"], labels, groups)
    assert 0.3 < baseline["map"] < 0.6  # one relevant of 5 in random order: E[AP] = mean(1/rank) ≈ 0.457
    good = {"map": 0.9, "mrr": 0.9, "accuracy": 0.8, "predicted_class_share": 1.0}
    assert check_student(good, "map", baseline, {}, GuardConfig(), distilled=False, kind="ranking") == []
    lost = {**good, "map": 0.3}
    assert check_student(lost, "map", baseline, {}, GuardConfig(), distilled=False, kind="ranking") == [
        f"dev map 0.3000 is below a random order ({baseline['map']:.4f})"]
    assert "collapsed" in check_student(good, "accuracy", {"accuracy": 0.8}, {}, GuardConfig(), distilled=False)[0]


def test_score_spread_is_the_std_of_what_orders_rows():
    import numpy as np

    from bertdistill.training.guards import score_spread

    two = np.array([[0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])  # scores z1 − z0: 1, 3, −1 → std sqrt(8/3)
    assert score_spread(two, ["0", "1"]) == pytest.approx((8 / 3) ** 0.5)
    assert score_spread(np.array([[2.0], [4.0]]), ["0", "1"]) == pytest.approx(1.0)
    three = np.array([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0]])  # centered logits: std per class 1, 0, 1 → mean 2/3
    assert score_spread(three, ["a", "b", "c"]) == pytest.approx(2 / 3)


def test_scores_that_barely_vary_warn():
    from bertdistill.training.guards import GuardConfig, check_student

    def warnings(spread, teacher_spread):
        metrics = {"accuracy": 0.9, "score_spread": spread}
        if teacher_spread is not None:
            metrics["teacher_score_spread"] = teacher_spread
        return [w for w in check_student(metrics, "accuracy", {"accuracy": 0.5}, {}, GuardConfig(), distilled=False)
                if "barely vary" in w]

    assert warnings(0.003, 0.6) and "teachers 0.6" in warnings(0.003, 0.6)[0]  # the narrow PKD students measured
    assert not warnings(0.5, 0.6)
    assert warnings(0.001, None) and not warnings(0.2, None)


def test_a_collapsed_step_is_kept_only_until_a_step_that_is_not_collapsed(tmp_path):
    """MRPC, seed 2 of the defaults study: the one-class step 57 scored the majority's 0.665 on dev, the trained
    steps after it 0.65, and the one-class model was published (exit 0). Now a step that is not collapsed
    replaces a collapsed best whatever its score; a collapsed step never replaces one that is not."""
    from types import SimpleNamespace

    from bertdistill.training.checkpoints import BestTracker
    from bertdistill.training.guards import GuardConfig, collapsed

    accelerator = SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None)
    saved = []
    tracker = BestTracker(accelerator, tmp_path, "accuracy",
                          lambda d: (saved.append(1), (d / "model.bin").write_text("x")),
                          collapsed=lambda m: collapsed(m, "classification", GuardConfig()))
    state = {"best_value": None, "best_step": None, "best_collapsed": False}
    kept = []
    for step, acc, share in [(0, 0.665, 1.0), (57, 0.665, 1.0), (114, 0.65, 0.915), (171, 0.65, 0.685),
                             (228, 0.70, 0.99), (285, 0.66, 0.70)]:
        state["step"] = step
        tracker.consider({"accuracy": acc, "predicted_class_share": share}, state)
        kept.append(state["best_step"])
    # step 0 never; 57 (collapsed) until 114 (trained, lower); the tie at 171 and collapsed 228 do not replace it
    assert kept == [None, 57, 114, 114, 114, 285]
    assert state["best_value"] == 0.66 and state["best_collapsed"] is False and len(saved) == 3
    # every step collapsed: the best of them is kept (and the run's verdict fails it, as before)
    state = {"best_value": None, "best_step": None, "best_collapsed": False}
    for step, acc in [(57, 0.60), (114, 0.62), (171, 0.61)]:
        state["step"] = step
        tracker.consider({"accuracy": acc, "predicted_class_share": 1.0}, state)
    assert state["best_step"] == 114 and state["best_collapsed"] is True
