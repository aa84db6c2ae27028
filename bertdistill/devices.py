"""Where a command runs and in which precision: ``--device`` and ``--mixed-precision`` resolved once.

* ``resolve_device``: ``auto | cpu | cuda | cuda:N`` → a ``torch.device``. ``auto`` is the Accelerate
  process's device under ``accelerate launch`` (its local rank's GPU, or the CPU when launched with
  ``--cpu`` or where there is no GPU), else CUDA when available, else the CPU.
* ``autocast_dtype``: the reduced-precision type for a device (bf16 on the CPU and on GPUs that have it,
  else fp16).
* ``resolve_mixed_precision``: the training precision when ``--mixed-precision`` is not given: what
  Accelerate is configured with (``ACCELERATE_MIXED_PRECISION``, which ``accelerate launch`` sets, or the
  ``accelerate config`` file), else ``no``; ``auto`` is bf16 where the device computes it in hardware.
* ``native_bf16`` / ``emulated_bf16_warning``: whether bf16 is fast here. A CPU without AVX512-BF16 or AMX
  (an AVX2 one) emulates it: measured on this project's build machine (AMD EPYC, AVX2 only), a MiniLM-L6
  forward pass took 4.4× as long under bf16 autocast as in fp32, a 3-layer student's training step 16×, a
  1024² matmul 128×; the demo's corpus labeling had not finished after 6.7 minutes in bf16 (it and the
  training set's took 1 min 50 s in fp32), and an MPNet-base teacher had not reached step 57 of 300 after
  57 minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bertdistill.errors import UserError

AUTO = "auto"
DEVICE_HELP = "auto (the Accelerate process's GPU, else CUDA when available, else CPU), cpu, cuda or cuda:N."
MIXED_PRECISION = ("no", "bf16", "fp16", AUTO)
"""What training accepts (Accelerate's fp8 is not supported); ``auto`` resolves to one of the others here."""
_TRUE = ("1", "true", "yes", "on")


def under_accelerate_launch(env: dict[str, str] | None = None) -> bool:
    """True in a process started by ``accelerate launch`` (or torchrun, which it uses for several)."""
    env = os.environ if env is None else env
    return "LOCAL_RANK" in env or "ACCELERATE_USE_CPU" in env


def local_rank(env: dict[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    for key in ("LOCAL_RANK", "ACCELERATE_LOCAL_PROCESS_INDEX"):
        value = env.get(key, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def parse_device(spec: str | None) -> tuple[str, int | None]:
    """``auto | cpu | cuda | cuda:N`` → (kind, index or None), checked for spelling only."""
    text = (spec or AUTO).strip().lower()
    if text in (AUTO, "cpu"):
        return text, None
    kind, sep, index = text.partition(":")
    if kind != "cuda" or (sep and not index.isdigit()):
        raise UserError(f"unknown device {spec!r}", "--device", "use auto, cpu, cuda or cuda:N (e.g. cuda:0)")
    return kind, int(index) if sep else None


def resolve_device(spec: str | None = AUTO, env: dict[str, str] | None = None) -> torch.device:
    """``auto | cpu | cuda | cuda:N`` → the device; a GPU asked for where there is none is a UserError."""
    env = os.environ if env is None else env
    kind, index = parse_device(spec)
    if kind == AUTO:
        if under_accelerate_launch(env):
            if env.get("ACCELERATE_USE_CPU", "").lower() in _TRUE or not torch.cuda.is_available():
                return torch.device("cpu")
            return torch.device("cuda", local_rank(env) % torch.cuda.device_count())
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"device {spec} asked for, but torch sees no CUDA GPU (torch {torch.__version__})", "--device",
                        "use --device cpu or auto, or install a CUDA build of torch on a machine with a GPU")
    count = torch.cuda.device_count()
    if index is not None:
        n = index
        if n >= count:
            raise UserError(f"device {spec} asked for, but there {'is' if count == 1 else 'are'} only {count} GPU(s)",
                            "--device", f"use cuda:0 to cuda:{count - 1}")
    else:  # plain "cuda": under accelerate launch each process takes its own GPU
        n = local_rank(env) % count if under_accelerate_launch(env) else torch.cuda.current_device()
    return torch.device("cuda", n)


def autocast_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on the CPU and on GPUs that support it, fp16 on older GPUs."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def training_device() -> torch.device:
    """The device a training run uses (runtime.make_accelerator: a GPU when there is one, else the CPU)."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 in hardware: a GPU that supports it, an x86 CPU with AVX512-BF16 or AMX,
    an Arm CPU whose oneDNN has bf16. Elsewhere torch emulates bf16, several times slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return True  # other accelerators: trust the user's choice
    import platform

    try:
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without these probes: assume bf16 is what the user wants
        return True


def emulated_bf16_warning(device: torch.device | str, what: str, fix: str) -> str | None:
    """One warning line when ``device`` is a CPU that emulates bf16; None where bf16 is native and on GPUs
    (the bf16 backend autocasts to fp16 on those without bf16)."""
    device = torch.device(device)
    if device.type != "cpu" or native_bf16(device):
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"{what} on this CPU ({capability}: no AVX512-BF16 or AMX) is emulated and runs several times slower "
            f"than fp32 (4.4× for a MiniLM forward pass on an AVX2 CPU); {fix}")


def device_name(device: torch.device | str) -> str:
    """A readable name: the GPU model, or the CPU model."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that wall clocks measure it."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def accelerate_config_file(env: dict[str, str] | None = None) -> Path:
    """The file ``accelerate config`` writes (the same rule as Accelerate's ``default_config_file``)."""
    env = os.environ if env is None else env
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    folder = Path(os.path.expanduser(home)) / "accelerate"
    yaml_file, json_file = folder / "default_config.yaml", folder / "default_config.json"
    return json_file if json_file.is_file() and not yaml_file.is_file() else yaml_file


def resolve_mixed_precision(given: str | None, env: dict[str, str] | None = None,
                            device: torch.device | str | None = None) -> str:
    """``given`` when set; else Accelerate's setting (env, then its config file); else ``no``. ``auto`` becomes
    bf16 where the training device (``device``) computes it in hardware, fp16 on a GPU without bf16, else no."""
    env = os.environ if env is None else env
    if given is not None:
        value, where = given, "--mixed-precision"
    elif env.get("ACCELERATE_MIXED_PRECISION"):
        value, where = env["ACCELERATE_MIXED_PRECISION"], "ACCELERATE_MIXED_PRECISION"
    else:
        value, where = _config_file_precision(env)
    value = str(value).strip().lower()
    if value not in MIXED_PRECISION:
        raise UserError(f"unknown mixed precision {value!r}", where, f"use one of: {', '.join(MIXED_PRECISION)}")
    if value == AUTO:
        device = torch.device(device) if device is not None else training_device()
        if native_bf16(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "no"
    return value


def _config_file_precision(env: dict[str, str]) -> tuple[str, str]:
    path = accelerate_config_file(env)
    if not path.is_file():
        return "no", "--mixed-precision"
    try:
        if path.suffix == ".json":
            import json

            data = json.loads(path.read_text())
        else:
            import yaml

            data = yaml.safe_load(path.read_text())
    except Exception as exc:
        raise UserError(f"cannot read the Accelerate config ({str(exc)[:120]})", str(path),
                        "fix it with accelerate config, or pass --mixed-precision") from None
    value = (data or {}).get("mixed_precision") if isinstance(data, dict) else None
    return (str(value) if value else "no"), str(path)


def move_batch(batch: dict, device: torch.device | str) -> dict:
    """A batch's tensors on ``device``, nested dicts (per-teacher inputs, stored states) included."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out[key] = move_batch(value, device)
        elif isinstance(value, torch.Tensor):
            out[key] = value.to(device)
        else:
            out[key] = value
    return out
