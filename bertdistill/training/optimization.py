"""The optimizer and learning-rate schedule of a run, and how many updates it makes."""

from __future__ import annotations

import math

import torch

from bertdistill.training.config import DEFAULT_EPOCHS, MIN_DEFAULT_UPDATES, TrainConfig, default_updates


def make_optimizer(model, config: TrainConfig, device: torch.device | None = None):
    """AdamW, fused where torch has the kernel for ``device`` (``training.speed``; the CPU when None)."""
    from bertdistill.training.speed import fast_optimizer_kwargs

    # Biases and normalization weights take no decay; norms are found by module type, since families name
    # them differently (LayerNorm, sa_layer_norm, attn_norm, final_norm ...).
    norm_params = {id(p) for m in model.modules() if "Norm" in type(m).__name__ for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(param) in norm_params else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr,
                             **fast_optimizer_kwargs(device or torch.device("cpu")))


def linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def plan_updates(config: TrainConfig, train_set, world: int) -> tuple[int, int, str | None]:
    """(updates of the run, updates per epoch, the length line to show when the defaults chose it)."""
    from bertdistill.errors import UserError

    global_batch = config.batch_size * world
    batches_per_epoch = len([b for b in train_set.batches(global_batch, 0) if len(b) >= world])
    if batches_per_epoch == 0:
        raise UserError(f"{len(train_set)} training rows are fewer than the {world} processes", None,
                        "give more training data")
    updates_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    if config.max_steps:
        return config.max_steps, updates_per_epoch, None
    if config.epochs is not None:
        return max(1, math.ceil(config.epochs * updates_per_epoch)), updates_per_epoch, None
    total = default_updates(updates_per_epoch)
    return total, updates_per_epoch, (f"length: {total} updates ({total / updates_per_epoch:.3g} epochs of "
                                      f"{updates_per_epoch}; the default is {DEFAULT_EPOCHS:g} epochs and at least "
                                      f"{MIN_DEFAULT_UPDATES} updates)")
