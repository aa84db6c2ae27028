"""Safe loading: weights through safetensors, torch.load only with weights_only=True (also on resume),
a pickled .bin that would run code is refused with one line, and remote code only with --trust-remote-code."""

from __future__ import annotations

import ast
import inspect
import os
import shutil
from pathlib import Path

import pytest
import torch

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs

PACKAGE = Path(__file__).resolve().parents[1] / "bertdistill"


def package_calls():
    """(file, line, ast.Call) for every call in the package source."""
    for file in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(file.read_text(), str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield file.relative_to(PACKAGE.parent), node.lineno, node


def dotted(func: ast.AST) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_source_uses_no_unsafe_deserialization():
    offenders = []
    for file, line, call in package_calls():
        name = dotted(call.func)
        if name == "torch.load":
            value = keyword(call, "weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                offenders.append(f"{file}:{line} torch.load without weights_only=True")
        if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load"):
            offenders.append(f"{file}:{line} {name}")
        if name.endswith("np.load") or name.endswith("numpy.load"):
            value = keyword(call, "allow_pickle")
            if isinstance(value, ast.Constant) and value.value is True:
                offenders.append(f"{file}:{line} np.load(allow_pickle=True)")
        value = keyword(call, "safe_serialization")
        if isinstance(value, ast.Constant) and value.value is False:
            offenders.append(f"{file}:{line} safe_serialization=False")
        if name.endswith("register_for_checkpointing"):
            # Accelerate unpickles registered objects with weights_only=False on load_state.
            offenders.append(f"{file}:{line} register_for_checkpointing")
    assert not offenders, offenders


def test_remote_code_is_never_hard_coded():
    offenders = []
    for file, line, call in package_calls():
        value = keyword(call, "trust_remote_code")
        if isinstance(value, ast.Constant) and value.value is True:
            offenders.append(f"{file}:{line}")
    assert not offenders, offenders


def test_every_model_loading_command_has_trust_remote_code_off_by_default():
    from bertdistill.commands import bench, data, export, finetune, label, predict, pretrain

    for module in (data, label, pretrain, finetune, bench, export, predict):
        param = inspect.signature(module.command).parameters.get("trust_remote_code")
        assert param is not None, f"{module.NAME} has no --trust-remote-code"
        assert param.default is False, module.NAME
        result = run_cli(module.NAME, "--help")
        assert "--trust-remote-code" in result.out, module.NAME


def test_trust_remote_code_reaches_the_hub_loader_only_when_asked(tmp_path, monkeypatch):
    """The flag goes from the command line to from_pretrained; without it, every call passes False."""
    import transformers

    teacher = make_tiny_bert(tmp_path / "teacher", layers=2, seed=1)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=16)
    seen: list[bool] = []
    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification):
        real = cls.from_pretrained.__func__

        def spy(klass, *args, _real=real, **kwargs):
            seen.append(kwargs.get("trust_remote_code", False))
            return _real(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    threads = torch.get_num_threads()
    try:
        base = ["label", "--teacher", teacher, "--data", data, "--max-length", "32", "--quiet"]
        assert run_cli(*base, "--output", tmp_path / "a").code == 0
        assert seen and not any(seen)
        seen.clear()
        assert run_cli(*base, "--output", tmp_path / "b", "--trust-remote-code").code == 0
        assert seen and all(seen)
        seen.clear()
        out = run_cli("finetune", "--data", data, "--student-from", teacher, "--student-layers", "1",
                      "--max-steps", "1", "--batch-size", "8", "--max-length", "32", "--trust-remote-code",
                      "--output", tmp_path / "s")
        assert out.code == 0, out.err
        assert seen and all(seen)
    finally:
        torch.set_num_threads(threads)


def test_pickle_only_model_loads_with_weights_only(tmp_path):
    """A directory with only pytorch_model.bin (plain tensors) still loads, through weights_only."""
    from bertdistill.inference import load_scorer

    good = make_tiny_bert(tmp_path / "good", layers=2, seed=1)
    legacy = Path(shutil.copytree(good, tmp_path / "legacy"))
    reference = load_scorer(str(good), "torch")
    state = {k: v.clone() for k, v in reference.torch_model.state_dict().items()}
    (legacy / "model.safetensors").unlink()
    torch.save(state, legacy / "pytorch_model.bin")
    loaded = load_scorer(str(legacy), "torch")
    for key, value in loaded.torch_model.state_dict().items():
        assert torch.equal(value, state[key]), key


class _RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint looks like."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["predict", "finetune"])
def test_pickle_that_runs_code_is_refused_in_one_line(command, tmp_path):
    good = make_tiny_bert(tmp_path / "good", layers=2, seed=1)
    evil = Path(shutil.copytree(good, tmp_path / "evil"))
    (evil / "model.safetensors").unlink()
    marker = tmp_path / "code-ran"
    torch.save({"payload": _RunsCode(marker)}, evil / "pytorch_model.bin")
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=16)
    if command == "predict":
        args = ["predict", "--model", evil, "--data", data, "--output", tmp_path / "p.jsonl"]
    else:
        args = ["finetune", "--data", data, "--student-from", evil, "--max-steps", "1", "--batch-size", "8",
                "--max-length", "32", "--output", tmp_path / "s"]
    threads = torch.get_num_threads()
    try:
        result = run_cli(*args)
    finally:
        torch.set_num_threads(threads)
    assert_user_error(result, "pickled objects", "safetensors")
    assert not marker.exists(), "unpickling ran code"
    assert not (tmp_path / "p.jsonl").exists() and not (tmp_path / "s").exists()


def test_checkpoints_resume_through_weights_only_loads(tmp_path, monkeypatch):
    """Every torch.load made while resuming a run passes weights_only=True (no registered pickles)."""
    from test_finetune import small_train

    from bertdistill.data.sources import DataSpec
    from bertdistill.training.config import FinetuneConfig, StudentConfig
    from bertdistill.training.finetune import finetune

    teacher = make_tiny_bert(tmp_path / "t", layers=2, seed=1)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=32)

    def config(**kw):
        return FinetuneConfig(train_data=DataSpec(path=str(data)), output=str(tmp_path / "out"),
                              student=StudentConfig(source=str(teacher)), **kw)

    first = finetune(config(train=small_train(epochs=2, save_every=1, time_budget=1e-9)), show_progress=False)
    assert first.stopped_by == "time_budget" and first.steps == 1
    checkpoint = next((tmp_path / "out" / "checkpoints").glob("step-1"))
    assert not list(checkpoint.glob("custom_checkpoint_*")) and (checkpoint / "model.safetensors").is_file()

    calls: list[object] = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    resumed = finetune(config(train=small_train(epochs=2, save_every=1), resume=True), show_progress=False)
    assert resumed.steps == 8 and resumed.stopped_by == "done"
    assert calls and all(c is True for c in calls), calls
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not list((tmp_path / "out").glob("*.bin"))
