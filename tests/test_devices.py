"""--device and --mixed-precision resolution, including the environment accelerate launch sets."""

import pytest
import torch

from bertdistill.devices import (accelerate_config_file, autocast_dtype, cpu_name, device_name, local_rank,
                                 resolve_device, resolve_mixed_precision, under_accelerate_launch)
from bertdistill.errors import UserError

NO_GPU = not torch.cuda.is_available()
cpu_only = pytest.mark.skipif(not NO_GPU, reason="checks the behaviour of a machine without a GPU")


@cpu_only
def test_auto_is_cpu_without_gpu():
    assert resolve_device("auto", env={}) == torch.device("cpu")
    assert resolve_device(None, env={}) == torch.device("cpu")
    # under accelerate launch (torchrun's LOCAL_RANK) on a machine without GPUs: the CPU too
    assert resolve_device("auto", env={"LOCAL_RANK": "1", "WORLD_SIZE": "2"}) == torch.device("cpu")


def test_cpu_and_accelerate_cpu_flag():
    assert resolve_device("cpu", env={}) == torch.device("cpu")
    assert resolve_device(" CPU ", env={}) == torch.device("cpu")
    # accelerate launch --cpu sets ACCELERATE_USE_CPU=True: auto follows it even where a GPU exists
    assert resolve_device("auto", env={"ACCELERATE_USE_CPU": "True"}) == torch.device("cpu")


def test_launch_detection_and_local_rank():
    assert not under_accelerate_launch({})
    assert not under_accelerate_launch({"ACCELERATE_MIXED_PRECISION": "bf16"})  # a user setting alone
    assert under_accelerate_launch({"LOCAL_RANK": "0"})  # torchrun (accelerate launch --multi_gpu)
    assert under_accelerate_launch({"ACCELERATE_USE_CPU": "False"})  # single-process accelerate launch
    assert local_rank({"LOCAL_RANK": "3"}) == 3
    assert local_rank({"ACCELERATE_LOCAL_PROCESS_INDEX": "2"}) == 2
    assert local_rank({}) == 0


@cpu_only
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_gpu_is_one_line_error(spec):
    with pytest.raises(UserError) as err:
        resolve_device(spec, env={})
    assert "no CUDA GPU" in str(err.value) and "--device cpu" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:", "mps:0", "tpu"])
def test_unknown_device(spec):
    with pytest.raises(UserError, match="unknown device"):
        resolve_device(spec, env={})


def test_autocast_dtype_and_names():
    assert autocast_dtype("cpu") == torch.bfloat16
    assert autocast_dtype(torch.device("cpu")) == torch.bfloat16
    assert device_name("cpu") == cpu_name() and cpu_name()


@pytest.mark.gpu
def test_gpu_resolution():
    count = torch.cuda.device_count()
    assert resolve_device("auto", env={}).type == "cuda"
    assert resolve_device("cuda:0", env={}) == torch.device("cuda", 0)
    assert resolve_device("auto", env={"LOCAL_RANK": str(count)}) == torch.device("cuda", 0)  # wraps
    assert resolve_device("cuda", env={"LOCAL_RANK": "0"}) == torch.device("cuda", 0)
    with pytest.raises(UserError, match="only"):
        resolve_device(f"cuda:{count}", env={})
    assert autocast_dtype("cuda") in (torch.bfloat16, torch.float16)
    assert device_name("cuda:0") == torch.cuda.get_device_name(0)


def test_mixed_precision_given_wins(tmp_path):
    env = {"ACCELERATE_MIXED_PRECISION": "fp16", "HF_HOME": str(tmp_path)}
    assert resolve_mixed_precision("bf16", env) == "bf16"
    assert resolve_mixed_precision("no", env) == "no"


def test_mixed_precision_from_accelerate_env(tmp_path):
    assert resolve_mixed_precision(None, {"ACCELERATE_MIXED_PRECISION": "bf16", "HF_HOME": str(tmp_path)}) == "bf16"
    assert resolve_mixed_precision(None, {"ACCELERATE_MIXED_PRECISION": "FP16", "HF_HOME": str(tmp_path)}) == "fp16"
    with pytest.raises(UserError, match="ACCELERATE_MIXED_PRECISION"):
        resolve_mixed_precision(None, {"ACCELERATE_MIXED_PRECISION": "fp8", "HF_HOME": str(tmp_path)})


def test_mixed_precision_auto_is_bf16_only_where_it_is_native(tmp_path, monkeypatch):
    import bertdistill.devices as devices

    env = {"HF_HOME": str(tmp_path)}
    monkeypatch.setattr(devices, "native_bf16", lambda device: True)
    assert resolve_mixed_precision("auto", env, device="cpu") == "bf16"
    assert resolve_mixed_precision(None, {**env, "ACCELERATE_MIXED_PRECISION": "AUTO"}, device="cpu") == "bf16"
    monkeypatch.setattr(devices, "native_bf16", lambda device: False)
    assert resolve_mixed_precision("auto", env, device="cpu") == "no"
    assert resolve_mixed_precision("auto", env, device="cuda:0") == "fp16"  # a GPU without bf16
    assert resolve_mixed_precision("bf16", env, device="cpu") == "bf16"  # asked for: honoured (with a warning)
    assert "no AVX512-BF16 or AMX" in devices.emulated_bf16_warning("cpu", "bf16", "use --mixed-precision no")


def test_mixed_precision_from_accelerate_config_file(tmp_path):
    env = {"HF_HOME": str(tmp_path)}
    assert resolve_mixed_precision(None, env) == "no"  # no config anywhere
    path = accelerate_config_file(env)
    assert path == tmp_path / "accelerate" / "default_config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nmixed_precision: bf16\n")
    assert resolve_mixed_precision(None, env) == "bf16"
    assert resolve_mixed_precision(None, {**env, "ACCELERATE_MIXED_PRECISION": "no"}) == "no"  # env first
    # XDG_CACHE_HOME is where Accelerate looks when HF_HOME is unset
    assert accelerate_config_file({"XDG_CACHE_HOME": str(tmp_path / "x")}) == \
        tmp_path / "x" / "huggingface" / "accelerate" / "default_config.yaml"
    path.write_text("mixed_precision: [oops")
    with pytest.raises(UserError, match="Accelerate config"):
        resolve_mixed_precision(None, env)


def test_train_config_records_resolved_precision(monkeypatch, tmp_path):
    from bertdistill.training.config import TrainConfig

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    cfg = TrainConfig()
    assert cfg.mixed_precision is None
    cfg.check()
    assert cfg.mixed_precision == "bf16"
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION")
    cfg = TrainConfig()
    cfg.check()
    assert cfg.mixed_precision == "no"
    with pytest.raises(UserError, match="unknown mixed precision"):
        TrainConfig(mixed_precision="fp32").check()
