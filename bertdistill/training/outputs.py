"""A run's output directory: whether to start afresh, resume or refuse; a diverged run; publishing the result.

The output is written once, atomically, at the end (``publish``): the best (or last) model, the
training curves, the record, and the checkpoints when kept. Until then it holds only ``checkpoints/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bertdistill.errors import UserError
from bertdistill.io import atomic_dir, is_complete
from bertdistill.model_card import write_model_card
from bertdistill.training.checkpoints import CHECKPOINTS, BestTracker, CheckpointManager
from bertdistill.training.curves import write_curves
from bertdistill.training.run import Run, TrainResult

LOGS = "logs"
CURVES_FILE = "training_curves.png"


class Diverged(Exception):
    """A loss or a weight is no longer finite: nothing from this point on may be saved."""


def nonfinite_weights(module) -> str | None:
    """Name of the first parameter holding NaN or inf, or None."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if not torch.isfinite(param).all():
                return name
    return None


def check_weights(module, step: int) -> None:
    bad = nonfinite_weights(module)
    if bad is not None:
        raise Diverged(f"weight {bad} holds NaN/inf after step {step}")


def start_or_resume(run: Run, checkpoints: CheckpointManager, show: bool) -> tuple[Path | None, dict | None]:
    """The checkpoint to continue from (and its state), after refusing outputs that must not be touched."""
    output = run.output
    latest = None
    if run.resume:
        latest = checkpoints.latest()
        if latest is None and is_complete(output):
            raise UserError("this run already finished (the output is a complete model)", str(output),
                            "drop --resume, or use --overwrite to train again")
        # No checkpoint yet (killed before the first one, or a first run with --resume): start afresh,
        # so the same command can simply be run again after any interruption.
        if latest is None and output.exists() and any(output.iterdir()) and not checkpoints.root.exists():
            raise UserError("output path exists but holds no training checkpoint", str(output),
                            "choose another --output, or pass --overwrite to replace it")
    if latest is not None:
        saved = checkpoints.read_state(latest, run.fingerprint)
        if checkpoints.accelerator.is_main_process and show:
            from bertdistill.ui import err_console

            err_console.print(f"resuming from {latest} (step {saved.get('step')})", soft_wrap=True)
        return latest, saved
    if output.exists() and not run.overwrite and not run.resume:
        raise UserError("output path already exists", str(output),
                        "pass --overwrite to replace it, --resume to continue it, or choose another path")
    if output.exists() and run.overwrite and not run.resume:
        from bertdistill.io import check_replaceable

        check_replaceable(output)  # --overwrite replaces a bertdistill artifact or an empty folder, nothing else
    checkpoints.clear()
    return None, None


def publish(accelerator, run: Run, best: BestTracker, state: dict, result: TrainResult, keep_checkpoints: bool) -> None:
    """Write the output directory atomically: the best (or last) model, the record, checkpoints if kept."""
    if accelerator.is_main_process:
        with atomic_dir(run.output, overwrite=True) as tmp:
            if not best.copy_into(tmp, state):
                run.save_model(accelerator.unwrap_model(run.module).student, tmp)
            note = write_curves(tmp / CURVES_FILE, result)
            if note:
                result.warnings.append(note)
            if run.write_extras is not None:
                run.write_extras(tmp, result)
            write_model_card(tmp, run.output.name)
            root = run.output / CHECKPOINTS
            if keep_checkpoints and root.exists():
                shutil.move(str(root), str(tmp / CHECKPOINTS))
            if (run.output / LOGS).exists():
                shutil.move(str(run.output / LOGS), str(tmp / LOGS))

    accelerator.wait_for_everyone()
