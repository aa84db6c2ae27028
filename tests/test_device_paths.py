"""--device on label, predict, bench, export and prune; ONNX Runtime providers; synchronized timing;
the default training precision from Accelerate. GPU tests are marked ``gpu`` and skip without one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs

from bertdistill.errors import UserError
from bertdistill.inference.onnx_backend import GPU_INSTALL, onnx_providers

NO_GPU = not torch.cuda.is_available()
cpu_only = pytest.mark.skipif(not NO_GPU, reason="checks the error a machine without a GPU gives")
CPU_ORT = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU_ORT = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("devices")
    teacher = make_tiny_bert(root / "teacher", layers=2, seed=3)
    data = write_toy_pairs(root / "pairs.tsv", n=24, seed=5)
    return {"root": root, "teacher": teacher, "data": data}


# -- ONNX Runtime providers ---------------------------------------------------------------------------

def test_onnx_providers_cpu_and_auto_without_gpu_build():
    assert onnx_providers("cpu", GPU_ORT, env={}) == ["CPUExecutionProvider"]
    assert onnx_providers("auto", CPU_ORT, env={}) == ["CPUExecutionProvider"]
    assert onnx_providers("auto", GPU_ORT, env={"ACCELERATE_USE_CPU": "True"}) == ["CPUExecutionProvider"]


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_onnx_cuda_without_onnxruntime_gpu_says_what_to_install(device):
    with pytest.raises(UserError) as err:
        onnx_providers(device, CPU_ORT, env={})
    text = str(err.value)
    assert "CUDAExecutionProvider" in text and "onnxruntime-gpu" in text and "bertdistill[gpu]" in text
    assert "\n" not in text and GPU_INSTALL in text


def test_onnx_cuda_providers_with_onnxruntime_gpu():
    assert onnx_providers("cuda:1", GPU_ORT, env={}) == [("CUDAExecutionProvider", {"device_id": 1}),
                                                         "CPUExecutionProvider"]
    # plain cuda under accelerate launch: the process's own GPU
    assert onnx_providers("cuda", GPU_ORT, env={"LOCAL_RANK": "1"})[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert onnx_providers("cuda", GPU_ORT, env={})[0] == ("CUDAExecutionProvider", {"device_id": 0})
    with pytest.raises(UserError, match="unknown device"):
        onnx_providers("gpu0", GPU_ORT, env={})


# -- synchronized timing ------------------------------------------------------------------------------

def test_timing_synchronizes_around_each_call():
    """A fake GPU queue: a runner only queues work; without sync the next model would be charged for it."""
    from bertdistill.bench.timing import time_interleaved

    now = [0.0]
    queued = [0.0]

    def clock():
        return now[0]

    def sync():
        now[0] += queued[0]
        queued[0] = 0.0

    def runner(cost):
        def run(_i):
            now[0] += 0.001  # launching is cheap
            queued[0] += cost  # the device works after the call returns
        return run

    runners = [("slow", runner(1.0)), ("fast", runner(0.1))]
    synced = time_interleaved(runners, warmup=1, repeats=4, clock=clock, sync=sync)
    assert synced["slow"].seconds == pytest.approx([1.001] * 4)
    assert synced["fast"].seconds == pytest.approx([0.101] * 4)
    now[0], queued[0] = 0.0, 0.0
    unsynced = time_interleaved(runners, warmup=1, repeats=4, clock=clock)
    assert unsynced["slow"].seconds == pytest.approx([0.001] * 4)  # what a GPU bench without sync would report


# -- --device on the commands (CPU) --------------------------------------------------------------------

def test_scorer_runs_where_asked(kit):
    from bertdistill.inference import load_scorer

    auto = load_scorer(str(kit["teacher"]), "torch", device="auto")
    cpu = load_scorer(str(kit["teacher"]), "bf16", device="cpu")
    assert cpu.device == "cpu"
    assert auto.device == ("cpu" if NO_GPU else f"cuda:{torch.cuda.current_device()}")
    assert next(auto.torch_model.parameters()).device == torch.device(auto.device)


def test_predict_and_label_and_prune_on_cpu(kit, tmp_path):
    preds = tmp_path / "p.jsonl"
    res = run_cli("predict", "--model", kit["teacher"], "--data", kit["data"], "--output", preds, "--device", "cpu")
    assert res.code == 0, res.err
    assert "on cpu" in res.out
    assert json.loads((tmp_path / "p.jsonl.config.json").read_text())["device"] == "cpu"

    store = tmp_path / "store"
    res = run_cli("label", "--teacher", f"t={kit['teacher']}", "--data", kit["data"], "--max-length", "32",
                  "--quiet", "--output", store, "--device", "cpu")
    assert res.code == 0, res.err
    meta = json.loads((store / "meta.json").read_text())
    assert meta["config"]["device"] == "cpu"

    pruned = tmp_path / "pruned"
    res = run_cli("prune", "--model", kit["teacher"], "--data", kit["data"], "--output", pruned, "--ffn", "16",
                  "--max-length", "32", "--quiet", "--device", "cpu")
    assert res.code == 0, res.err
    assert json.loads((pruned / "prune_config.json").read_text())["device"] == "cpu"


@cpu_only
@pytest.mark.parametrize("command", ["label", "predict", "bench", "prune"])
def test_cuda_without_gpu_is_one_line_error(kit, tmp_path, command):
    args = {
        "label": ["label", "--teacher", kit["teacher"], "--data", kit["data"], "--output", tmp_path / "s", "--quiet"],
        "predict": ["predict", "--model", kit["teacher"], "--data", kit["data"], "--output", tmp_path / "p.jsonl"],
        "bench": ["bench", "--model", kit["teacher"], "--data", kit["data"], "--repeats", "1", "--warmup", "0"],
        "prune": ["prune", "--model", kit["teacher"], "--data", kit["data"], "--output", tmp_path / "o", "--quiet"],
    }[command]
    assert_user_error(run_cli(*args, "--device", "cuda:0"), "no CUDA GPU", "--device")
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()


def test_misspelled_device_is_one_line_error(kit, tmp_path):
    assert_user_error(run_cli("predict", "--model", kit["teacher"], "--data", kit["data"], "--output",
                              tmp_path / "p.jsonl", "--device", "gpu"), "unknown device")


@pytest.mark.skipif(not NO_GPU, reason="needs an ONNX Runtime without the CUDA provider")
def test_export_cuda_parity_without_onnxruntime_gpu(kit, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    out = tmp_path / "onnx"
    assert_user_error(run_cli("export", "--model", kit["teacher"], "--output", out, "--device", "cuda"),
                      "onnxruntime-gpu", "bertdistill[gpu]")
    assert not out.exists()
    res = run_cli("export", "--model", kit["teacher"], "--output", out, "--device", "auto", "--parity-examples", "8")
    assert res.code == 0, res.err
    assert json.loads((out / "export_report.json").read_text())["parity_device"] == "cpu"


def test_bench_records_device_name(kit, tmp_path):
    from bertdistill.devices import cpu_name

    out = tmp_path / "b.json"
    res = run_cli("bench", "--model", kit["teacher"], "--data", kit["data"], "--repeats", "2", "--warmup", "0",
                  "--batch-sizes", "4", "--device", "cpu", "--json", out)
    assert res.code == 0, res.err
    doc = json.loads(out.read_text())
    assert doc["machine"]["device"] == "cpu" and doc["machine"]["device_name"] == cpu_name()
    assert doc["settings"]["device"] == "cpu" and doc["settings"]["synchronized"] is False
    assert f"device: cpu ({cpu_name()})" in res.out


# -- training precision from Accelerate ----------------------------------------------------------------

def test_finetune_precision_from_accelerate_env(kit, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    common = ("--data", kit["data"], "--model", kit["teacher"], "--max-steps", "1", "--batch-size", "8",
              "--max-length", "32", "--save-every", "1", "--student-layers", "1")
    res = run_cli("finetune", *common, "--output", tmp_path / "env")
    assert res.code == 0, res.err
    cfg = json.loads((tmp_path / "env" / "training_config.json").read_text())
    assert cfg["train"]["mixed_precision"] == "bf16"  # the resolved value is what is recorded
    res = run_cli("finetune", *common, "--output", tmp_path / "given", "--mixed-precision", "no")
    assert res.code == 0, res.err
    cfg = json.loads((tmp_path / "given" / "training_config.json").read_text())
    assert cfg["train"]["mixed_precision"] == "no"


@pytest.mark.parametrize("native", [True, False], ids=["bf16-in-hardware", "bf16-emulated"])
def test_finetune_auto_precision_follows_the_hardware(kit, tmp_path, monkeypatch, native):
    """auto (here from the environment, as the recipe scripts set it) is bf16 only where the device computes it
    in hardware; an AVX2 CPU emulates bf16 several times slower than fp32 (bertdistill.devices)."""
    import bertdistill.devices as devices

    monkeypatch.setattr(devices, "native_bf16", lambda device: native)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "auto")
    res = run_cli("finetune", "--data", kit["data"], "--model", kit["teacher"], "--max-steps", "1", "--batch-size",
                  "8", "--max-length", "32", "--save-every", "1", "--student-layers", "1", "--output", tmp_path / "s")
    assert res.code == 0, res.err
    cfg = json.loads((tmp_path / "s" / "training_config.json").read_text())
    assert cfg["train"]["mixed_precision"] == ("bf16" if native else "no")
    assert "emulated" not in res.err


def test_bf16_on_a_cpu_that_emulates_it_warns(kit, tmp_path, monkeypatch):
    """Asked for explicitly, bf16 is honoured, with one warning line that says why it is slow and what to use."""
    import bertdistill.devices as devices
    from bertdistill.inference.torch_backend import _warn_once

    monkeypatch.setattr(devices, "native_bf16", lambda device: False)
    res = run_cli("finetune", "--data", kit["data"], "--model", kit["teacher"], "--max-steps", "1", "--batch-size",
                  "8", "--max-length", "32", "--save-every", "1", "--student-layers", "1", "--mixed-precision",
                  "bf16", "--output", tmp_path / "s")
    assert res.code == 0, res.err
    assert "warning: bf16 mixed precision on this CPU" in res.err and "--mixed-precision no or auto" in res.err
    assert json.loads((tmp_path / "s" / "training_config.json").read_text())["train"]["mixed_precision"] == "bf16"
    _warn_once.cache_clear()
    res = run_cli("bench", "--model", f"t={kit['teacher']}:bf16", "--data",
                  kit["data"], "--repeats", "1", "--warmup", "0", "--batch-sizes", "4", "--device", "cpu")
    assert res.code == 0, res.err
    assert res.err.count("warning: the bf16 backend on this CPU") == 1 and "--backend torch" in res.err


def test_native_bf16_reads_the_cpu():
    import platform

    from bertdistill.devices import emulated_bf16_warning, native_bf16

    if platform.machine().lower() in ("x86_64", "amd64"):
        assert native_bf16("cpu") == bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert (emulated_bf16_warning("cpu", "bf16", "fix") is None) == native_bf16("cpu")


# -- on a GPU ------------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_gpu_scorer_matches_cpu(kit):
    from bertdistill.inference import load_scorer, score_rows

    cpu = load_scorer(str(kit["teacher"]), "torch", device="cpu")
    gpu = load_scorer(str(kit["teacher"]), "torch", device="cuda")
    half = load_scorer(str(kit["teacher"]), "bf16", device="cuda")
    assert gpu.device.startswith("cuda") and next(gpu.torch_model.parameters()).is_cuda
    rows = cpu.encode(["what is a cave"] * 5, ["a cave is formed by water"] * 5, 32)
    lc, hc = score_rows(cpu, rows, 2, layers=[1, 2])
    lg, hg = score_rows(gpu, rows, 2, layers=[1, 2])
    lh, _ = score_rows(half, rows, 2)
    np.testing.assert_allclose(lg, lc, atol=1e-4)
    np.testing.assert_allclose(hg.astype(np.float32), hc.astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(lh, lc, atol=5e-2)


@pytest.mark.gpu
def test_gpu_label_matches_cpu(kit, tmp_path):
    from bertdistill.teachers.store import LabelStore

    for device in ("cpu", "cuda"):
        res = run_cli("label", "--teacher", f"t={kit['teacher']}", "--data", kit["data"], "--max-length", "32",
                      "--hidden-layers", "all", "--quiet", "--output", tmp_path / device, "--device", device)
        assert res.code == 0, res.err
    a, b = LabelStore.open(tmp_path / "cpu"), LabelStore.open(tmp_path / "cuda")
    np.testing.assert_allclose(np.asarray(b.logits(0)), np.asarray(a.logits(0)), atol=1e-4)


@pytest.mark.gpu
def test_gpu_bench_synchronizes_and_names_the_gpu(kit, tmp_path):
    out = tmp_path / "b.json"
    res = run_cli("bench", "--model", kit["teacher"], "--data", kit["data"], "--repeats", "2", "--warmup", "1",
                  "--batch-sizes", "4", "--device", "cuda:0", "--json", out)
    assert res.code == 0, res.err
    doc = json.loads(out.read_text())
    assert doc["machine"]["device"] == "cuda:0"
    assert doc["machine"]["device_name"] == torch.cuda.get_device_name(0)
    assert doc["settings"]["synchronized"] is True


@pytest.mark.gpu
def test_gpu_prune_matches_cpu(kit, tmp_path):
    for device in ("cpu", "cuda"):
        res = run_cli("prune", "--model", kit["teacher"], "--data", kit["data"], "--output", tmp_path / device,
                      "--ffn", "16", "--max-length", "32", "--quiet", "--device", device)
        assert res.code == 0, res.err
    a = json.loads((tmp_path / "cpu" / "prune_report.json").read_text())
    b = json.loads((tmp_path / "cuda" / "prune_report.json").read_text())
    assert a["kept"] == b["kept"]
    np.testing.assert_allclose(a["scores"]["heads"], b["scores"]["heads"], rtol=1e-3, atol=1e-6)
