"""``bertdistill distill``: a recipe file runs the whole method on tiny models; --plan matches what runs; a second
run skips every step; one changed setting reruns only the steps it affects; a wrong recipe is one line, exit 2,
before any step; an interrupted run (Ctrl-C or kill -9, in a training step, an export, between steps), run again,
ends as an uninterrupted one; model cards carry front matter and, once benched, the measured speed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distill")
    make_tiny_bert(root / "bert", layers=4, hidden=32)
    write_toy_pairs(root / "train.tsv", n=64, ranking=True)
    write_toy_pairs(root / "test.tsv", n=24, seed=1, ranking=True)
    return root


def full_recipe(root: Path, out: Path) -> dict:
    """Every step: a teacher fine-tuned and one given, a mined corpus, labels, a pruned student, both stages,
    export and bench."""
    return {
        "output": str(out), "max_length": 32, "seeds": [1],
        "data": {"train": {"path": str(root / "train.tsv"), "group_column": "qid"},
                 "test": {"path": str(root / "test.tsv"), "group_column": "qid"}},
        "teachers": {"t1": {"finetune": {"student": {"source": str(root / "bert")},
                                         "train": {"max_steps": 4, "batch_size": 16, "seed": 1}}},
                     "t2": {"path": str(root / "bert")}},
        "corpus": {"build": {"mine": "bm25", "top_k": 2, "include_originals": False}},
        "label": {"batch_size": 16},
        "student": {"source": "t1", "head": "score",
                    "prune": {"layers": 2, "hidden": 16, "heads": 1, "ffn": 32, "data": {"limit": 32}}},
        "pretrain": {"train": {"max_steps": 3, "batch_size": 16}, "train_data": {"task": "ranking"},
                     "distill": {"terms": {"kd": 0, "listwise_kd": 1}}},
        "finetune": {"train": {"max_steps": 3, "batch_size": 16}, "distill": {"terms": {"kd": 0, "listwise_kd": 0.5}}},
        "export": {"teachers": ["t1"], "settings": {"int8": True, "int8_min_agreement": 0}},
        "bench": {"backends": ["torch", "onnx-int8"],
                  "settings": {"batch_sizes": [1, 8], "repeats": 2, "warmup": 1, "threads": 1}},
        "targets": {"retention": 0.9, "speedup": 1.5},
    }


def write(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def state(out: Path) -> dict:
    return json.loads((out / "distill_state.json").read_text())["steps"]


def ran(result) -> set[str]:
    return {line.split("] ", 1)[1].split("  [")[0] for line in result.out.splitlines()
            if line.startswith("== [") and "done already" not in line}


@pytest.fixture(scope="module")
def full(inputs, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("full") / "run"
    recipe = write(out.parent / "recipe.yaml", full_recipe(inputs, out))
    planned = run_cli("distill", "--config", recipe, "--plan")
    assert planned.code == 0, planned.err
    result = run_cli("distill", "--config", recipe, "--quiet")
    assert result.code == 0, result.err + result.out
    return recipe, out, planned, result


def test_plan_matches_what_runs(full):
    recipe, out, planned, result = full
    lines = planned.out.splitlines()
    names = [line.split("] ", 1)[1].split(" → ")[0] for line in lines if line[:3].strip().rstrip(".").isdigit()]
    commands = [line.strip() for line in lines if line.startswith("    bertdistill ")]
    assert names == ["teacher t1", "corpus", "label corpus", "label train", "prune", "stage 1", "stage 2",
                     "export t1", "export student", "bench"]
    assert all("[run]" in line for line in lines if " → " in line)
    steps = state(out)
    assert list(steps) == names and ran(result) == set(names)
    assert [steps[n]["command"] for n in names] == commands
    # each command's --config file holds the step's settings, and the library wrote the same ones
    saved = json.loads((out / ".distill" / "stage-2.json").read_text())
    trained = json.loads((out / "student" / "training_config.json").read_text())
    assert saved["train"]["max_steps"] == trained["train"]["max_steps"] == 3
    assert saved["train"]["max_length"] == trained["train"]["max_length"] == 32
    assert saved["student"]["source"] == str(out / "student-stage1")
    # the bench's equivalent single command (its config file, no --model) gives the same metrics
    alone = run_cli("bench", "--config", out / ".distill" / "bench.json", "--json", out.parent / "alone.json")
    assert alone.code == 0, alone.err
    metrics = [{m["name"]: m["metrics"] for m in json.loads(p.read_text())["models"]}
               for p in (out / "bench.json", out.parent / "alone.json")]
    assert metrics[0] == metrics[1]
    report = (out / "report.md").read_text()
    for needle in ("## Teachers", "## Students", "## Bench", "## Targets", "## Steps", "student-int8"):
        assert needle in report


def test_model_cards(full):
    from bertdistill.model_card import read_front_matter

    _, out, _, _ = full
    for folder in ("teachers/t1", "student-pruned", "student-stage1", "student"):
        card = out / folder / "README.md"
        front = read_front_matter(card)
        assert "bertdistill" in front["tags"] and front["base_model"], folder
        assert front["bertdistill"]["data_fingerprints"][0]["content_sha256"], folder
        assert "bertdistill distill --config" in card.read_text(), folder
    front = read_front_matter(out / "student" / "README.md")
    assert front["bertdistill"]["teachers"] == ["t1", "t2"]
    # the bench step wrote the measured speed into the cards of the benched models the recipe made
    bench = json.loads((out / "bench.json").read_text())
    for folder, row in (("student", "student"), ("teachers/t1", "t1")):
        card = (out / folder / "README.md").read_text()
        speed = read_front_matter(out / folder / "README.md")["bertdistill"]["speed"]
        assert set(speed["examples_per_second"]) == {"torch", "onnx-int8"}, folder
        assert speed["date"] == bench["created"] and bench["machine"]["cpu"] in speed["machine"]
        for backend, name in (("torch", row), ("onnx-int8", f"{row}-int8")):
            measured = next(m for m in bench["models"] if m["name"] == name)["throughput_ex_s"]
            assert speed["examples_per_second"][backend] == {b: round(v, 6) for b, v in measured.items()}
            line = next(x for x in card.splitlines() if x.startswith(f"| {backend} | `{name}` |"))
            assert line.split(" | ")[2:4] == [f"{measured['1']:.1f}", f"{measured['8']:.1f}"], line
        assert card.count("## Inference speed") == 1
        assert card.index("## Inference speed") < card.index("## How it was made")
    for folder in ("student-pruned", "student-stage1"):  # not benched
        assert "## Inference speed" not in (out / folder / "README.md").read_text()


def test_card_speed_section_is_replaced_atomically(tmp_path):
    """write_speed adds the speed rows (body and front matter) before "How it was made", a later bench replaces
    them (one section), the card is renamed over (a new file, no temporary left), a folder without a card is
    left alone."""
    from bertdistill.model_card import read_front_matter, write_speed

    card = tmp_path / "README.md"
    card.write_text("---\ntags:\n- bertdistill\n---\n\n# m\n\n## Metrics\n\n- map: 0.9\n\n"
                    "## How it was made\n\nby hand\n")
    machine = {"cpu": "Test CPU", "device_name": "Test CPU", "threads": 2, "torch": "2.x", "onnxruntime": "1.x"}
    rows = [{"backend": "torch", "row": "student", "examples_per_second": {"1": 10.04, "32": 200.0}, "metric": 0.9},
            {"backend": "onnx-int8", "row": "student-int8", "examples_per_second": {"1": 30.0, "32": 650.44},
             "metric": None}]
    inode = card.stat().st_ino
    assert write_speed(tmp_path, rows, machine, "2026-01-02T03:04:05+00:00", metric="test map") == card
    assert card.stat().st_ino != inode and [p.name for p in tmp_path.iterdir()] == ["README.md"]
    text = card.read_text()
    assert "| torch | `student` | 10.0 | 200.0 | 0.9000 |" in text
    assert "| onnx-int8 | `student-int8` | 30.0 | 650.4 | – |" in text
    assert "2026-01-02T03:04:05+00:00" in text and "Test CPU, 2 thread(s)" in text
    assert text.index("## Metrics") < text.index("## Inference speed") < text.index("## How it was made")
    front = read_front_matter(card)
    assert front["tags"] == ["bertdistill"]
    assert front["bertdistill"]["speed"]["examples_per_second"] == {"torch": {"1": 10.04, "32": 200.0},
                                                                   "onnx-int8": {"1": 30.0, "32": 650.44}}
    rows[0]["examples_per_second"] = {"1": 11.0, "32": 210.0}
    write_speed(tmp_path, rows[:1], machine, "2026-02-03T00:00:00+00:00")
    text = card.read_text()
    assert text.count("## Inference speed") == 1 and "| torch | `student` | 11.0 | 210.0 |" in text
    assert "onnx-int8" not in text and "2026-01-02" not in text and text.endswith("by hand\n")
    assert read_front_matter(card)["bertdistill"]["speed"]["date"] == "2026-02-03T00:00:00+00:00"
    assert write_speed(tmp_path / "none", rows, machine, "today") is None


def test_second_run_skips_and_one_change_reruns_only_what_it_affects(full):
    recipe, out, _, _ = full
    again = run_cli("distill", "--config", recipe, "--quiet")
    assert again.code == 0, again.err
    assert ran(again) == set()
    planned = run_cli("distill", "--config", recipe, "--plan")
    assert "[run]" not in planned.out and planned.out.count("[done]") == 10
    before = load_file(str(out / "student-stage1" / "model.safetensors"))
    changed = yaml.safe_load(recipe.read_text())
    changed["finetune"]["train"]["max_steps"] = 4
    write(recipe, changed)
    third = run_cli("distill", "--config", recipe, "--quiet")
    assert third.code == 0, third.err
    assert ran(third) == {"stage 2", "export student", "bench"}
    after = load_file(str(out / "student-stage1" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((out / "student" / "training_record.json").read_text())["summary"]["steps"] == 4
    # a change upstream reruns everything downstream of it
    changed["corpus"]["build"]["top_k"] = 3
    write(recipe, changed)
    fourth = run_cli("distill", "--config", recipe, "--quiet")
    assert fourth.code == 0, fourth.err
    assert ran(fourth) == {"corpus", "label corpus", "stage 1", "stage 2", "export student", "bench"}


# -- wrong recipes: one line, exit 2, nothing run -------------------------------------------------------------

def small_recipe(root: Path, out: Path, seeds=(1, 2)) -> dict:
    """A given teacher, stage 2 only (per seed), export and bench."""
    return {
        "output": str(out), "max_length": 32, "seeds": list(seeds),
        "data": {"train": {"path": str(root / "train.tsv"), "group_column": "qid"},
                 "test": {"path": str(root / "test.tsv"), "group_column": "qid"}},
        "teachers": {"t1": {"path": str(root / "bert")}},
        "student": {"source": "t1", "layers": 2, "layer_map": "skip", "head": "score"},
        "finetune": {"train": {"max_steps": 6, "save_every": 2, "batch_size": 16},
                     "distill": {"terms": {"kd": 0, "listwise_kd": 0.5}}},
        "export": {"teachers": ["t1"], "settings": {"int8": True, "int8_min_agreement": 0}},
        "bench": {"teachers": ["t1"], "backends": ["torch", "onnx-int8"],
                  "settings": {"batch_sizes": [1, 8], "repeats": 1, "warmup": 1, "threads": 1}},
    }


@pytest.mark.parametrize("change, needles", [
    (lambda r: r.update(teachrs={}), ("unknown config key 'teachrs'",)),
    (lambda r: r["finetune"]["train"].update(epoch=2), ("unknown config key 'train.epoch'",)),
    (lambda r: r.update(max_length="32"), ("max_length",)),
    (lambda r: r["finetune"]["train"].update(batch_size="16"), ("train.batch_size",)),
    (lambda r: r["data"]["train"].update(path="/nonexistent/train.tsv"), ("does not exist", "data.train.path")),
    (lambda r: r["teachers"]["t1"].update(path="/nonexistent/teacher"), ("does not exist", "teachers.t1")),
    (lambda r: r["student"].update(source="t9"), ("teacher 't9' is not defined",)),
    (lambda r: r["bench"].update(teachers=["t9"]), ("teacher 't9' is not defined",)),
    (lambda r: r["finetune"]["distill"].update(teachers=["t9"]), ("teacher 't9' is not defined",)),
    (lambda r: r["finetune"]["train"].update(max_length=64), ("max_length",)),
    (lambda r: r.update(pretrain={}), ("needs a corpus",)),
    (lambda r: r["bench"].update(backends=["tpu"]), ("unknown backend 'tpu'",)),
    (lambda r: r.pop("export"), ("exported to ONNX",)),
])
def test_wrong_recipe_is_one_line_before_any_step(inputs, tmp_path, change, needles):
    out = tmp_path / "run"
    recipe = small_recipe(inputs, out)
    change(recipe)
    result = run_cli("distill", "--config", write(tmp_path / "recipe.yaml", recipe))
    assert_user_error(result, *needles)
    assert not out.exists()


def test_missing_recipe_file(tmp_path):
    assert_user_error(run_cli("distill", "--config", tmp_path / "none.yaml"), "not found")


# -- seeds, and interruptions -----------------------------------------------------------------------------------

def students(out: Path) -> dict[str, dict]:
    return {s: load_file(str(out / f"seed{s}" / "student" / "model.safetensors")) for s in (1, 2)}


def bench_metrics(out: Path) -> dict[str, float]:
    bench = json.loads((out / "bench.json").read_text())
    return {m["name"]: m["metrics"][bench["main_metric"]] for m in bench["models"]}


def report_metrics(out: Path) -> list[list[str]]:
    """The bench table of report.md without its timing columns: model, backend, the main metric."""
    text = (out / "report.md").read_text().split("## Bench", 1)[1].split("\n## ", 1)[0]
    return [line.split(" | ")[:3] for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def assert_same_run(out: Path, reference: Path) -> None:
    got, want = students(out), students(reference)
    for seed in want:
        assert all(torch.equal(got[seed][k], want[seed][k]) for k in want[seed]), seed
    assert bench_metrics(out) == bench_metrics(reference)
    assert report_metrics(out) == report_metrics(reference) and len(report_metrics(out)) == 7


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("reference") / "run"
    result = run_cli("distill", "--config", write(out.parent / "recipe.yaml", small_recipe(inputs, out)), "--quiet")
    assert result.code == 0, result.err + result.out
    return out


def test_seeds_report_mean_and_std(inputs, reference):
    assert (reference / "seed1" / "student").is_dir() and (reference / "seed2" / "student").is_dir()
    assert set(bench_metrics(reference)) == {"t1", "t1-int8", "student-seed1", "student-seed1-int8",
                                             "student-seed2", "student-seed2-int8"}
    report = (reference / "report.md").read_text()
    assert "mean ± std over the seeds" in report and "±" in report.split("mean ± std over the seeds")[1]
    for seed in (1, 2):  # the bench wrote each student's speed into its card; the given teacher is left alone
        card = (reference / f"seed{seed}" / "student" / "README.md").read_text()
        assert f"| torch | `student-seed{seed}` |" in card and f"| onnx-int8 | `student-seed{seed}-int8` |" in card
    assert not list((inputs / "bert").glob("README*")) and not list((inputs / "bert").glob(".README*"))


def test_keyboard_interrupt_in_a_step_then_rerun_equals_uninterrupted(inputs, reference, tmp_path, monkeypatch):
    from bertdistill.recipe import run as recipe_run

    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    real = recipe_run.runner

    def interrupted(step, show_progress):
        if step.name == "export student seed 1":
            def press():
                raise KeyboardInterrupt
            return press
        return real(step, show_progress)

    monkeypatch.setattr(recipe_run, "runner", interrupted)
    first = run_cli("distill", "--config", recipe, "--quiet")
    assert first.code == 130 and "Traceback" not in first.err
    assert first.err.strip() == (f"interrupted: step 'export student seed 1' stopped; "
                                 f"run `bertdistill distill --config {recipe}` again to continue")
    monkeypatch.setattr(recipe_run, "runner", real)
    second = run_cli("distill", "--config", recipe, "--quiet")
    assert second.code == 0, second.err
    assert ran(second) == {"export student seed 1", "export student seed 2", "bench"}
    assert_same_run(out, reference)


def test_ctrl_c_inside_label_is_one_line_and_the_rerun_continues_the_store(inputs, reference, tmp_path, monkeypatch):
    """Ctrl-C after label's first shard: one line naming the step and the kept shards, exit 130; run again, the
    store is continued (the first shard not relabeled) and the run ends as an uninterrupted one."""
    import bertdistill.teachers.label as label_module

    out = tmp_path / "run"
    recipe_data = small_recipe(inputs, out)
    recipe_data["label"] = {"shard_rows": 16}  # 64 training rows: 4 shards
    recipe = write(tmp_path / "recipe.yaml", recipe_data)
    real = label_module._label_shards
    spans_labeled = []

    def first_shard_then_ctrl_c(todo, *args, **kwargs):
        spans_labeled.append(len(todo))
        real(todo[:1], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(label_module, "_label_shards", first_shard_then_ctrl_c)
    first = run_cli("distill", "--config", recipe, "--quiet")
    lines = [line for line in first.err.splitlines() if line.strip()]
    assert first.code == 130 and len(lines) == 1 and "Traceback" not in first.err, first.err
    assert lines[0].startswith("interrupted: step 'label train' stopped (the finished shards are kept in ")
    assert lines[0].endswith(f"); run `bertdistill distill --config {recipe}` again to continue")

    def count_then_label(todo, *args, **kwargs):
        spans_labeled.append(len(todo))
        real(todo, *args, **kwargs)

    monkeypatch.setattr(label_module, "_label_shards", count_then_label)
    second = run_cli("distill", "--config", recipe, "--quiet")
    assert second.code == 0, second.err
    assert spans_labeled == [4, 3], "the rerun labels only the 3 shards the first run did not finish"
    from bertdistill.teachers.store import LabelStore

    whole = tmp_path / "whole"  # the same step's config labeled in one go (its shard size sets the batches)
    assert run_cli("label", "--config", str(out / ".distill" / "label-train.json"), "--output", str(whole)).code == 0
    resumed, once = LabelStore.open(out / "labels" / "train"), LabelStore.open(whole)
    assert all(np.array_equal(resumed.logits(t), once.logits(t)) for t in range(len(once.teacher_names)))
    assert bench_metrics(out).keys() == bench_metrics(reference).keys()


def test_bench_stopped_before_its_json_is_not_done(inputs, reference, tmp_path, monkeypatch):
    """The bench's JSON marks the step complete, so it is written last: stopped after the markdown (while the
    cards get their speed), the step is not done and the rerun benches again."""
    from bertdistill.recipe import run as recipe_run

    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    real = recipe_run.write_speed_cards

    def stopped(step, result):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe_run, "write_speed_cards", stopped)
    assert run_cli("distill", "--config", recipe, "--quiet").code == 130
    assert (out / "bench.md").is_file() and not (out / "bench.json").exists()
    assert not state(out)["bench"]["done"]
    monkeypatch.setattr(recipe_run, "write_speed_cards", real)
    again = run_cli("distill", "--config", recipe, "--quiet")
    assert again.code == 0, again.err
    assert ran(again) == {"bench"} and "## Inference speed" in (out / "seed1" / "student" / "README.md").read_text()
    assert_same_run(out, reference)


def test_ctrl_c_inside_training_then_rerun_resumes_and_equals_uninterrupted(inputs, reference, tmp_path):
    from test_interrupt_resume import CtrlCAt, profiled

    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    hook = CtrlCAt("torch/optim/", nth=3)  # Ctrl-C inside the third optimizer step of stage 2, seed 1
    first = profiled(hook, lambda: run_cli("distill", "--config", recipe, "--quiet"))
    assert hook.fired
    assert first.code == 130 and "checkpoint saved" in first.err, first.err
    assert "interrupted: step 'stage 2 seed 1' stopped" in first.err and "distill --config" in first.err
    assert (out / "seed1" / "student" / "checkpoints").is_dir()
    second = run_cli("distill", "--config", recipe, "--quiet")
    assert second.code == 0, second.err
    assert "label train" not in ran(second) and "stage 2 seed 1" in ran(second)
    assert_same_run(out, reference)


def test_kill_9_then_rerun_equals_uninterrupted(inputs, reference, tmp_path):
    import os
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bertdistill", "distill", "--config", str(recipe), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            steps = state(out) if (out / "distill_state.json").is_file() else {}
            if "stage 2 seed 2" in steps:  # killed inside stage 2 of the second seed, or just after it
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert not state(out).get("bench")
    again = run_cli("distill", "--config", recipe, "--quiet")
    assert again.code == 0, again.err
    assert "label train" not in ran(again) and "bench" in ran(again)
    assert_same_run(out, reference)


def start_distill(recipe: Path, **kwargs):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "bertdistill", "distill", "--config", str(recipe), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def wait_for(proc, found, seconds: float = 300) -> None:
    """Poll until ``found()`` or the process ends (a busy machine may take long to get there)."""
    import time

    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None and not found():
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stderr.read().decode()


def test_kill_9_inside_an_export_then_rerun_equals_uninterrupted(inputs, reference, tmp_path):
    """SIGKILL while the student's ONNX export is being written (its temporary folder exists): the folder is
    not published, the step is not done, and the rerun exports again (only what is left) to the same end."""
    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    leftovers = lambda: list((out / "onnx").glob(".student-seed1.tmp-*"))  # noqa: E731
    proc = start_distill(recipe)
    try:
        wait_for(proc, leftovers)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert leftovers() and not (out / "onnx" / "student-seed1").exists()  # killed inside the step
    assert state(out)["export student seed 1"]["done"] is False
    again = run_cli("distill", "--config", recipe, "--quiet")
    assert again.code == 0, again.err
    assert ran(again) == {"export student seed 1", "export student seed 2", "bench"}
    assert not leftovers() and (out / "onnx" / "student-seed1" / ".complete").is_file()
    assert_same_run(out, reference)


def test_ctrl_c_of_the_command_then_rerun_equals_uninterrupted(inputs, reference, tmp_path):
    """SIGINT (Ctrl-C in a terminal) to `bertdistill distill` while a student trains: one line naming the step
    and how to continue, exit 130, no traceback; running the recipe again resumes and ends as the reference."""
    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    # a shell starting the suite in the background makes children ignore SIGINT: give Ctrl-C back, as a terminal has
    proc = start_distill(recipe, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(proc, lambda: (out / "seed1" / "student" / "checkpoints").is_dir())  # stage 2 seed 1 is training
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: step '" in err, err
    assert "run `bertdistill distill --config" in err and "again to continue" in err, err
    if "step 'stage 2 seed 1'" in err:  # the usual case: stopped at the loop's next safe point, with a checkpoint
        assert "checkpoint saved" in err, err
    assert not state(out).get("bench", {}).get("done")
    again = run_cli("distill", "--config", recipe, "--quiet")
    assert again.code == 0, again.err
    assert "label train" not in ran(again) and "bench" in ran(again)
    assert_same_run(out, reference)


def test_kill_9_inside_label_then_rerun_continues_the_store_and_equals_uninterrupted(inputs, reference, tmp_path):
    """SIGKILL once label's first shard is written: the store is not published, the step is not done, and the
    rerun continues the partial store to the same end."""
    from bertdistill.teachers.layout import partial_dir

    out = tmp_path / "run"
    recipe_data = small_recipe(inputs, out)
    recipe_data["label"] = {"shard_rows": 2}  # 64 training rows: 32 shards, time to kill between two of them
    recipe = write(tmp_path / "recipe.yaml", recipe_data)
    first_shard = partial_dir(out / "labels" / "train") / "shards" / "shard-00000"
    proc = start_distill(recipe)
    try:
        wait_for(proc, first_shard.exists)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert state(out)["label train"]["done"] is False and not (out / "labels" / "train").exists()
    assert first_shard.exists()
    again = run_cli("distill", "--config", recipe, "--quiet")
    assert again.code == 0, again.err
    assert "label train" in ran(again) and (out / "labels" / "train" / ".complete").is_file()
    assert not partial_dir(out / "labels" / "train").exists()
    # The store equals one labeled in one go with the step's own config (its shard size sets the batches).
    from bertdistill.teachers.store import LabelStore

    whole = tmp_path / "whole"
    assert run_cli("label", "--config", str(out / ".distill" / "label-train.json"), "--output", str(whole)).code == 0
    resumed, once = LabelStore.open(out / "labels" / "train"), LabelStore.open(whole)
    assert all(np.array_equal(resumed.logits(t), once.logits(t)) for t in range(len(once.teacher_names)))
    assert bench_metrics(out).keys() == bench_metrics(reference).keys()


def test_a_corpus_published_before_its_note_is_claimed_by_the_rerun(inputs, tmp_path):
    """Killed between publishing the corpus and writing its `.corpus.jsonl.bertdistill` note: the rerun's
    --overwrite would refuse the file as a stranger's; the state shows the recipe wrote it, so it is claimed."""
    from bertdistill.errors import UserError
    from bertdistill.io import check_replaceable
    from bertdistill.recipe import load_recipe, make_plan
    from bertdistill.recipe.run import State, prepare

    out = tmp_path / "run"
    plan = make_plan(load_recipe(write(tmp_path / "recipe.yaml", full_recipe(inputs, out))))
    step = plan.step("corpus")
    out.mkdir()
    step.output.write_text('{"query": "q", "passage": "p"}\n')  # published; no note, no sidecar yet
    stranger = State(out)
    prepare(step, stranger)  # no state entry: the recipe never ran this step, the file is not claimed
    with pytest.raises(UserError, match="not written by bertdistill"):
        check_replaceable(step.output)
    killed = State(out)
    killed.steps["corpus"] = {"fingerprint": step.fingerprint, "started": 0.0, "done": False}
    prepare(step, killed)
    assert step.config.overwrite and not killed.is_done(step)
    check_replaceable(step.output)


def test_model_card_of_a_single_command(inputs, tmp_path):
    from bertdistill.model_card import read_front_matter

    out = tmp_path / "model"
    result = run_cli("finetune", "--data", inputs / "train.tsv", "--group-column", "qid", "--model", inputs / "bert",
                     "--max-steps", "2", "--batch-size", "16", "--max-length", "32", "--output", out)
    assert result.code == 0, result.err
    front = read_front_matter(out / "README.md")
    assert front["base_model"] == str(inputs / "bert") and "fine-tuned" in front["tags"]
    assert front["bertdistill"]["data_fingerprints"][0]["rows"] == 64
    assert "bertdistill finetune --config training_config.json" in (out / "README.md").read_text()


# -- a recipe in parts: --until -----------------------------------------------------------------------------------

def test_until_runs_a_part_and_the_rest_finishes_equal_to_one_go(inputs, reference, tmp_path):
    out = tmp_path / "run"
    recipe = write(tmp_path / "recipe.yaml", small_recipe(inputs, out))
    planned = run_cli("distill", "--config", recipe, "--plan", "--until", "stage 2 seed 1")
    assert planned.code == 0, planned.err
    marks = {line.split("] ", 1)[1].split(" → ")[0]: line.split("[", 1)[1].split("]")[0]
             for line in planned.out.splitlines() if line.strip()[:1].isdigit()}
    assert marks["stage 2 seed 1"] == "run" and marks["stage 2 seed 2"] == "later" and marks["bench"] == "later"

    part = run_cli("distill", "--config", recipe, "--quiet", "--until", "stage 2 seed 1")
    assert part.code == 0, part.err + part.out
    assert ran(part) == {"label train", "stage 2 seed 1"}
    assert "stopped after step 'stage 2 seed 1' (--until)" in part.out
    assert (out / "seed1" / "student").is_dir() and not (out / "seed2").exists()
    assert not (out / "report.md").exists()

    rest = run_cli("distill", "--config", recipe, "--quiet")
    assert rest.code == 0, rest.err + rest.out
    assert "stage 2 seed 1" not in ran(rest) and "stage 2 seed 2" in ran(rest)
    assert_same_run(out, reference)


def test_until_an_unknown_step_is_one_line(inputs, tmp_path):
    out = tmp_path / "run"
    result = run_cli("distill", "--config", write(tmp_path / "recipe.yaml", small_recipe(inputs, out)),
                     "--until", "teacher t9")
    assert_user_error(result, "no step named 'teacher t9'", "--until", "'stage 2 seed 1'")
    assert not out.exists()
