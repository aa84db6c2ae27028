"""--config FILE: validated run configs (pydantic), flags override the file, a saved config reruns the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_saved_training_config_reruns_the_run(tmp_path):
    model = make_tiny_bert(tmp_path / "bert", layers=2)
    data = write_toy_pairs(tmp_path / "train.tsv", n=32)
    first = tmp_path / "first"
    r = run_cli("finetune", "--data", data, "--model", model, "--epochs", 1, "--batch-size", 8, "--lr", "1e-3",
                "--max-length", 32, "--seed", 3, "--no-eval", "--save-every", 1000, "--output", first)
    assert r.code == 0, r.err
    saved = first / "training_config.json"
    second = tmp_path / "second"
    r = run_cli("finetune", "--config", saved, "--output", second)  # only the output differs
    assert r.code == 0, r.err
    again = json.loads((second / "training_config.json").read_text())
    assert again == {**json.loads(saved.read_text()), "output": str(second)}
    a, b = _weights(first), _weights(second)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_yaml_config_with_flag_override(tmp_path):
    from bertdistill.commands import common as c
    from bertdistill.training.config import FinetuneConfig

    cfg = tmp_path / "run.yaml"
    cfg.write_text("train_data:\n  path: train.tsv\n  limit: 10\ntrain:\n  lr: 0.001\n  epochs: 2\noutput: out\n")
    flags = FinetuneConfig(output="")
    flags.train.lr = 0.5
    merged = c.with_config_file(flags, cfg, {"lr": ("train.lr",)})  # outside click: no option counts as given
    assert (merged.train.lr, merged.train.epochs, merged.train_data.limit, merged.output) == (1e-3, 2.0, 10, "out")
    assert merged.train.batch_size == 32  # the options' default where the file says nothing


def test_flags_given_override_the_file(tmp_path, monkeypatch):
    captured = {}
    monkeypatch.setattr("bertdistill.training.finetune.finetune", lambda config: captured.setdefault("c", config))
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"train": {"lr": 0.001, "seed": 7}, "output": "from-file",
                               "train_data": {"path": "a.tsv", "columns": ["q", "p", "label"]}}))
    r = run_cli("finetune", "--config", cfg, "--lr", "0.01", "--data", "b.tsv")
    assert r.code == 0, r.err
    config = captured["c"]
    assert config.train.lr == 0.01 and config.train.seed == 7 and config.output == "from-file"
    assert config.train_data.path == "b.tsv" and config.train_data.columns == ["q", "p", "label"]


@pytest.mark.parametrize("content, needles", [
    ({"train_data": {"limit": "10"}}, ["train_data.limit", "an integer"]),
    ({"train_data": {"columns": "a,b"}}, ["train_data.columns", "a list"]),
    ({"train": {"lr": "fast"}}, ["train.lr", "a number"]),
    ({"train": {"learning_rate": 1e-3}}, ["train.learning_rate", "use only"]),
    ({"bogus": 1}, ["'bogus'"]),
])
def test_bad_config_is_one_line(tmp_path, content, needles):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(content))
    assert_user_error(run_cli("finetune", "--config", cfg, "--output", tmp_path / "o"), *needles)


def test_out_of_range_value_in_config(tmp_path):
    data = write_toy_pairs(tmp_path / "train.tsv", n=16)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"train_data:\n  path: {data}\ntrain:\n  batch_size: 0\n")
    assert_user_error(run_cli("finetune", "--config", cfg, "--output", tmp_path / "o"), "batch_size")


def test_bad_data_config_and_student_config(tmp_path):
    data = write_toy_pairs(tmp_path / "train.tsv", n=16)
    dc = tmp_path / "data.json"
    dc.write_text(json.dumps({"path": str(data), "limit": "10"}))
    assert_user_error(run_cli("data", "--data-config", dc), "limit", "an integer")
    dc.write_text(json.dumps({"path": str(data), "columns": "a,b"}))
    assert_user_error(run_cli("data", "--data-config", dc), "columns", "a list")
    assert_user_error(run_cli("finetune", "--data", data, "--student-config", '{"layers": "3"}', "--output",
                              tmp_path / "o"), "layers", "an integer")


def test_finetune_output_is_required(tmp_path):
    data = write_toy_pairs(tmp_path / "train.tsv", n=16)
    assert_user_error(run_cli("finetune", "--data", data), "--output")


def test_bad_yaml(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("train: [unclosed\n")
    assert_user_error(run_cli("finetune", "--config", cfg), "YAML")


def test_label_bench_predict_prune_export_read_a_config(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("bertdistill.teachers.label.label", lambda config: seen.setdefault("label", config))
    cfg = tmp_path / "label.yaml"
    cfg.write_text("teachers: [t1=a, b]\noutput: store\ndata:\n  path: x.tsv\n  columns: [q, p, label]\n"
                   "backend: bf16\n")
    assert run_cli("label", "--config", cfg, "--batch-size", 4).code == 0
    got = seen["label"]
    assert (got.teachers, got.output, got.data.columns, got.backend, got.batch_size) == (
        ["t1=a", "b"], "store", ["q", "p", "label"], "bf16", 4)

    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    assert_user_error(run_cli("label", "--config", empty, "--output", tmp_path / "s"), "--teacher")
    assert_user_error(run_cli("bench", "--config", empty, "--data", "x.tsv"), "--model")
    assert_user_error(run_cli("predict", "--config", empty, "--model", "m"), "--output")
    assert_user_error(run_cli("prune", "--config", empty), "--output")
    assert_user_error(run_cli("export", "--config", empty), "--output")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"batch_sizes": "1,32"}))
    assert_user_error(run_cli("bench", "--config", bad, "--model", "m"), "batch_sizes", "a list")


def test_data_command_reads_a_yaml_config(tmp_path):
    data = write_toy_pairs(tmp_path / "train.tsv", n=12)
    cfg = tmp_path / "data.yaml"
    cfg.write_text(f"path: {data}\nlimit: 5\n")
    r = run_cli("data", "--config", cfg, "--no-tokens", "--json", tmp_path / "s.json")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "s.json").read_text())["rows"] == 5


def test_help_lists_choices_and_completion_is_on():
    r = run_cli("--help")
    assert "--install-completion" in r.out
    finetune = run_cli("finetune", "--help").out
    for shown in ("<no|bf16|fp16|auto>", "<kl|mse>", "<none|skip|last>", "<none|tensorboard|wandb>",
                  "<pair|single|ranking>"):
        assert shown in finetune, shown
    assert "<channel|tensor>" in run_cli("export", "--help").out
    assert "onnx-int8" in run_cli("predict", "--help").out
    r = run_cli("finetune", "--data", "x.tsv", "--mixed-precision", "fp8", "--output", "o")
    assert r.code == 2 and "fp8" in r.err
