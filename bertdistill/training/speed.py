"""Training-speed settings chosen per device, each kept because it measured faster with the same results
(``benchmarks/bench_train_levers.py``; figures in CHANGELOG.md, issue 34).

* ``use_fast_attention``: on the CPU, eager attention (matmul + softmax) instead of PyTorch's SDPA kernel,
  whose backward pass is slower there; on GPUs SDPA stays.
* ``fast_optimizer_kwargs``: AdamW's fused kernel (one pass over every parameter) where torch has it for the
  device, instead of the one-tensor-at-a-time loop that is torch's CPU default.
"""

from __future__ import annotations

import torch


def use_fast_attention(model: torch.nn.Module, device: torch.device) -> str | None:
    """Switch a Hugging Face model to eager attention on the CPU; returns the implementation it had (to put
    back before saving), or None when nothing changed."""
    if device.type != "cpu":
        return None
    target = model
    config = getattr(target, "config", None)
    if config is None or not hasattr(target, "set_attn_implementation"):
        return None
    before = getattr(config, "_attn_implementation", None)
    if before in (None, "eager"):
        return None
    try:
        target.set_attn_implementation("eager")
    except (ValueError, ImportError, AttributeError):  # a model without an eager path keeps its own
        return None
    return before


def fast_optimizer_kwargs(device: torch.device) -> dict:
    """``torch.optim.AdamW`` options for ``device``: the fused implementation on CPU and CUDA."""
    if device.type in ("cpu", "cuda"):
        return {"fused": True}
    return {}
