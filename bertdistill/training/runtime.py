"""The processes a run spans (Accelerate): the accelerator, and the decisions every process must take together."""

from __future__ import annotations

from pathlib import Path

import torch

from bertdistill.errors import UserError
from bertdistill.training.config import TrainConfig
from bertdistill.training.outputs import LOGS


def make_accelerator(config: TrainConfig, output: Path | None = None):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # A library caller may train several times in one process (tests, notebooks) with different
    # precisions; Accelerate keeps its settings in a process-wide singleton, so start it afresh.
    if AcceleratorState._shared_state:
        AcceleratorState._reset_state()
    from bertdistill.devices import resolve_mixed_precision

    config.mixed_precision = resolve_mixed_precision(config.mixed_precision)  # None: Accelerate's setting
    try:
        tracking = {} if config.report_to == "none" else {
            "log_with": config.report_to, "project_dir": str(Path(output or ".") / LOGS)}
        return Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available(), **tracking)
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"mixed precision {config.mixed_precision} is not available here ({str(exc)[:120]})",
                        "--mixed-precision", "use --mixed-precision bf16 or no on a CPU") from None


def precision_warnings(config: TrainConfig, device: torch.device) -> list[str]:
    """One line when the run trains in bf16 on a CPU that emulates it, several times slower than fp32."""
    if config.mixed_precision != "bf16":
        return []
    from bertdistill.devices import emulated_bf16_warning

    line = emulated_bf16_warning(device, "bf16 mixed precision", "use --mixed-precision no or auto")
    return [line] if line else []


def stop_requested(ctrl_c, accelerator) -> bool:
    """Whether Ctrl-C was pressed (on any process: every process must stop at the same update)."""
    if accelerator.num_processes == 1:
        return ctrl_c.pressed
    from accelerate.utils import reduce

    flag = torch.tensor([1.0 if ctrl_c.pressed else 0.0], device=accelerator.device)
    return bool(reduce(flag, reduction="sum").item() > 0)


def over_budget(elapsed: float, budget: float, world: int) -> bool:
    over = [elapsed >= budget]
    if world > 1:  # every process must stop at the same step
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(over)
    return bool(over[0])
