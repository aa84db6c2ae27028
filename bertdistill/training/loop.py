"""The one training loop (Accelerate): fine-tuning, stage-2 distillation and stage-1 pre-training.

Batches are length-grouped and reproducible from seed + epoch, so a resumed run rebuilds the epoch's
order and skips the batches already consumed. With N processes each global batch is split N ways
(every N-th example), and each process's loss is scaled so the averaged gradient equals the
1-process gradient on the whole global batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bertdistill.data.tokenize import MODEL_INPUTS, length_grouped_batches, pad_batch, sorted_batches
from bertdistill.errors import UserError
from bertdistill.io import atomic_dir, check_writable_parent, is_complete, mark_complete, read_json, write_json
from bertdistill.training.config import TrainConfig
from bertdistill.training.losses import weighted_sum
from bertdistill.training.objective import Objective, TeacherTargets

CHECKPOINTS = "checkpoints"
BEST = "best"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainSet:
    """Tokenized training rows (model inputs, ``row`` = index into the label store, optional ``label``)."""

    dataset: object
    pad_token_id: int
    targets: TeacherTargets | None = None

    def __post_init__(self):
        self.lengths = np.asarray(self.dataset["length"])
        self._columns = [c for c in (*MODEL_INPUTS, "label", "row") if c in self.dataset.column_names]
        self._view = self.dataset.select_columns(self._columns)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, indices: list[int]) -> dict:
        block = self._view[indices]
        features = [{k: block[k][i] for k in self._columns} for i in range(len(indices))]
        out = pad_batch(features, self.pad_token_id)
        if self.targets is not None:
            out.update(self.targets.fetch(out["row"].numpy()))
        return out


@dataclass
class EvalSet:
    """Held-out rows with what is known about them: gold labels and/or the teachers' logits."""

    data: TrainSet
    kind: str
    label_names: list[str]
    labels: np.ndarray | None = None
    groups: list | None = None
    teacher_logits: list[np.ndarray] | None = None


@dataclass
class TrainResult:
    output: Path
    steps: int
    epochs_done: float
    best_metric: str | None
    best_value: float | None
    best_step: int | None
    evaluations: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    examples_per_second: float = 0.0
    stopped_by: str = "done"
    final_loss: float | None = None


def lower_is_better(metric: str) -> bool:
    return metric.endswith("loss")


def _move(batch: dict, device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {kk: vv.to(device) for kk, vv in v.items()}
        else:
            out[k] = v.to(device)
    return out


def make_accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # A library caller may train several times in one process (tests, notebooks) with different
    # precisions; Accelerate keeps its settings in a process-wide singleton, so start it afresh.
    if AcceleratorState._shared_state:
        AcceleratorState._reset_state()
    try:
        return Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available())
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"mixed precision {config.mixed_precision} is not available here ({str(exc)[:120]})",
                        "--mixed-precision", "use --mixed-precision bf16 or no on a CPU") from None


def _optimizer(model, config: TrainConfig):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def _linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def latest_checkpoint(output: Path) -> Path | None:
    root = Path(output) / CHECKPOINTS
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if is_complete(p)]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def evaluate(accelerator, model, eval_set: EvalSet, objective: Objective, batch_size: int) -> dict:
    """Task metrics (labeled data) and distill_loss / teacher_agreement / teacher_rank_corr (teacher logits known)."""
    from accelerate.utils import gather_object

    from bertdistill.metrics import compute_metrics, positive_label_index, softmax, spearman

    inner = accelerator.unwrap_model(model)
    was_training = inner.training
    inner.eval()
    mine = sorted_batches(eval_set.data.lengths, batch_size)[accelerator.process_index::accelerator.num_processes]
    results = []
    with torch.no_grad(), accelerator.autocast():
        for idx in mine:
            batch = _move(eval_set.data.batch(idx), accelerator.device)
            logits, _ = inner(**{k: batch[k] for k in MODEL_INPUTS if k in batch})
            results.append((idx, logits.float().cpu().numpy()))
    if accelerator.num_processes > 1:
        results = gather_object(results)
    if was_training:
        inner.train()
    heads = results[0][1].shape[0]
    n = len(eval_set.data)
    all_logits = np.zeros((heads, n, results[0][1].shape[2]), dtype=np.float32)
    for idx, lg in results:
        all_logits[:, idx] = lg
    mean_logits = all_logits.mean(0)
    metrics: dict = {}
    if eval_set.labels is not None:
        metrics.update(compute_metrics(eval_set.kind, eval_set.label_names, eval_set.labels, mean_logits,
                                       eval_set.groups))
    if eval_set.teacher_logits is not None and objective.weights.get("kd", 0) > 0:
        teachers = torch.from_numpy(np.stack(eval_set.teacher_logits))
        metrics["distill_loss"] = float(objective.soft_loss(torch.from_numpy(all_logits), teachers))
        target = np.mean([softmax(t) for t in eval_set.teacher_logits], axis=0)
        metrics["teacher_agreement"] = float((mean_logits.argmax(-1) == target.argmax(-1)).mean())
        if target.shape[-1] == 2:
            # Argmax agreement is near 1 whenever nearly all pairs are negatives (stage-1 corpora); the rank
            # correlation of the positive-class scores says whether the student orders pairs as the teachers do.
            pos = positive_label_index(eval_set.label_names) if eval_set.label_names else 1
            metrics["teacher_rank_corr"] = spearman(softmax(mean_logits)[:, pos], target[:, pos])
    return metrics


class _Progress:
    """Rich progress bar on the main process only."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.bar = None
        if enabled:
            from bertdistill.ui import progress

            self.bar = progress("loss", "lr", "ex_s")
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start, loss="-", lr="-", ex_s="-")

    def update(self, **fields) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, **fields)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def train(config: TrainConfig, model, train_set: TrainSet, eval_set: EvalSet | None, objective: Objective,
          output: str | Path, save_model: Callable[[object, Path], None],
          write_extras: Callable[[Path, TrainResult], None] | None = None, *, resume: bool = False,
          overwrite: bool = False, fingerprint: dict | None = None, best_metric: str | None = None,
          hidden_layers: list[int] | None = None, show_progress: bool = True) -> TrainResult:
    """Train ``model`` (a StudentModel) and write the final (best) model to ``output`` atomically.

    ``save_model(unwrapped_model, directory)`` writes a model directory; ``write_extras(directory,
    result)`` adds the record files. ``fingerprint`` (the run's configuration) must match on resume.
    """
    config.check()
    output = Path(output)
    check_writable_parent(output)  # before training, not at the first checkpoint or the end of a long run
    accelerator = make_accelerator(config)
    main = accelerator.is_main_process
    world = accelerator.num_processes
    ckpt_root = output / CHECKPOINTS
    state: dict = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed": 0.0, "examples": 0,
                   "best_value": None, "best_step": None, "evaluations": [], "fingerprint": fingerprint}
    latest = None
    if resume:
        latest = latest_checkpoint(output)
        if latest is None and is_complete(output):
            raise UserError("this run already finished (the output is a complete model)", str(output),
                            "drop --resume, or use --overwrite to train again")
        # No checkpoint yet (killed before the first one, or a first run with --resume): start afresh,
        # so the same command can simply be run again after any interruption.
        if latest is None and output.exists() and any(output.iterdir()) and not ckpt_root.exists():
            raise UserError("output path exists but holds no training checkpoint", str(output),
                            "choose another --output, or pass --overwrite to replace it")
    if latest is not None:
        saved = read_json(latest / STATE_FILE)
        if fingerprint is not None and saved.get("fingerprint") != fingerprint:
            old, new = saved.get("fingerprint") or {}, fingerprint
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise UserError(f"the checkpoint was made with other settings ({', '.join(diff[:4])})", str(latest),
                            "resume with the same options as the interrupted run")
        if main and show_progress:
            from bertdistill.ui import err_console

            err_console.print(f"resuming from {latest} (step {saved.get('step')})", soft_wrap=True)
    else:
        if output.exists() and not overwrite and not resume:
            raise UserError("output path already exists", str(output),
                            "pass --overwrite to replace it, --resume to continue it, or choose another path")
        if main and ckpt_root.exists():
            shutil.rmtree(ckpt_root)
    accelerator.wait_for_everyone()

    torch.manual_seed(config.seed)
    global_batch = config.batch_size * world
    batches_per_epoch = len([b for b in length_grouped_batches(train_set.lengths, global_batch, 0) if len(b) >= world])
    if batches_per_epoch == 0:
        raise UserError(f"{len(train_set)} training rows are fewer than the {world} processes", None,
                        "give more training data")
    updates_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total = config.max_steps or max(1, math.ceil(config.epochs * updates_per_epoch))
    warmup = int(config.warmup_ratio * total)

    optimizer = _optimizer(model, config)
    scheduler = _linear_schedule(optimizer, warmup, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    # The scheduler's state travels in trainer_state.json, not as a registered Accelerate object: those
    # are unpickled with torch.load(weights_only=False), which runs code from a tampered checkpoint.
    if latest is not None:
        saved = read_json(latest / STATE_FILE)
        if "scheduler" not in saved:
            raise UserError("the checkpoint was written by an older bertdistill", str(latest),
                            "start the run afresh with --overwrite")
        accelerator.load_state(str(latest))  # weights, optimizer and RNG states, with weights_only=True
        state.update(saved)
        scheduler.load_state_dict(state["scheduler"])
        state["fingerprint"] = fingerprint

    def save_checkpoint() -> None:
        name = f"step-{state['step']}"
        tmp = ckpt_root / f".{name}.tmp"
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if main:
            write_json(tmp / STATE_FILE, {**state, "scheduler": scheduler.state_dict()})
            mark_complete(tmp)
            final = ckpt_root / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            done = sorted((p for p in ckpt_root.glob("step-*") if is_complete(p)),
                          key=lambda p: int(p.name.split("-")[1]))
            for old in done[:-config.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def run_eval(epoch_end: bool) -> None:
        if eval_set is None:
            return
        metrics = evaluate(accelerator, model, eval_set, objective, config.eval_batch_size)
        entry = {"step": state["step"], "epoch": round(state["step"] / updates_per_epoch, 4),
                 "epoch_end": epoch_end, **metrics}
        state["evaluations"].append(entry)
        if best_metric and best_metric in metrics:
            value = metrics[best_metric]
            best = state["best_value"]
            better = best is None or (value < best if lower_is_better(best_metric) else value > best)
            if better:
                state["best_value"], state["best_step"] = value, state["step"]
                if main:
                    with atomic_dir(ckpt_root / BEST, overwrite=True) as tmp:
                        save_model(accelerator.unwrap_model(model), tmp)
                accelerator.wait_for_everyone()
        if main and bar.bar is not None:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            bar.bar.console.print(f"step {state['step']}: {shown}")

    bar = _Progress(main and show_progress, total, state["step"])
    model.train()
    stopped_by = "done"
    loss_ema = None
    session_start = time.perf_counter()
    elapsed_before = state["elapsed"]
    if latest is None and eval_set is not None:
        run_eval(False)  # the starting point, so the record shows what training changed
    last_eval_step = state["evaluations"][-1]["step"] if state["evaluations"] else -1
    # RNG state at the last update boundary: an interrupted micro-batch must not shift dropout on resume.
    rng_at_step = torch.get_rng_state()
    try:
        while state["step"] < total and stopped_by == "done":
            epoch = state["epoch"]
            epoch_batches = [b for b in length_grouped_batches(train_set.lengths, global_batch, config.seed + epoch)
                             if len(b) >= world]
            position = state["batch_in_epoch"]
            while position < len(epoch_batches) and state["step"] < total:
                group = epoch_batches[position:position + config.grad_accum]
                t0 = time.perf_counter()
                terms_sum: dict[str, float] = {}
                for j, global_ids in enumerate(group):
                    local_ids = global_ids[accelerator.process_index::world]
                    batch = _move(train_set.batch(local_ids), accelerator.device)
                    sync = contextlib.nullcontext() if j == len(group) - 1 else accelerator.no_sync(model)
                    with sync:
                        with accelerator.autocast():
                            logits, cls = model(**{k: batch[k] for k in MODEL_INPUTS if k in batch},
                                                hidden_layers=hidden_layers)
                        terms = objective(accelerator.unwrap_model(model), logits, cls, batch)
                        loss = weighted_sum(terms, objective.weights)
                        scale = len(local_ids) * world / len(global_ids) / len(group)
                        accelerator.backward(loss * scale)
                    for k, v in terms.items():
                        terms_sum[k] = terms_sum.get(k, 0.0) + float(v.detach()) / len(group)
                    terms_sum["loss"] = terms_sum.get("loss", 0.0) + float(loss.detach()) / len(group)
                if config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                rng_at_step = torch.get_rng_state()
                position += len(group)
                state["step"] += 1
                state["batch_in_epoch"] = position
                state["examples"] += sum(len(b) for b in group)
                state["elapsed"] = elapsed_before + time.perf_counter() - session_start
                state["last_terms"] = terms_sum
                loss_ema = terms_sum["loss"] if loss_ema is None else 0.9 * loss_ema + 0.1 * terms_sum["loss"]
                rate = sum(len(b) for b in group) / max(1e-9, time.perf_counter() - t0)
                bar.update(loss=f"{loss_ema:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", ex_s=f"{rate:.1f}")
                epoch_done = position >= len(epoch_batches)
                if config.eval_every and state["step"] % config.eval_every == 0 and not epoch_done:
                    run_eval(False)
                    last_eval_step = state["step"]
                if config.time_budget is not None:
                    over = [state["elapsed"] >= config.time_budget]
                    if world > 1:
                        from accelerate.utils import broadcast_object_list

                        broadcast_object_list(over)
                    if over[0]:
                        stopped_by = "time_budget"
                        break
                if config.save_every and state["step"] % config.save_every == 0 and not epoch_done:
                    save_checkpoint()
            if position >= len(epoch_batches):
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                run_eval(True)
                last_eval_step = state["step"]
                if state["step"] < total and stopped_by == "done":
                    save_checkpoint()
    except KeyboardInterrupt:
        bar.stop()
        optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(rng_at_step)
        save_checkpoint()
        raise UserError(f"interrupted at step {state['step']} of {total}; checkpoint saved", str(output),
                        "continue with the same command plus --resume") from None
    bar.stop()
    if last_eval_step != state["step"]:
        run_eval(False)
    if stopped_by != "done":
        save_checkpoint()  # a time-budgeted run can be continued with --resume and a larger budget

    result = TrainResult(output=output, steps=state["step"], epochs_done=round(state["step"] / updates_per_epoch, 4),
                         best_metric=best_metric if state["best_value"] is not None else None,
                         best_value=state["best_value"], best_step=state["best_step"],
                         evaluations=state["evaluations"], train_seconds=round(state["elapsed"], 2),
                         examples_per_second=round(state["examples"] / max(state["elapsed"], 1e-9), 2),
                         stopped_by=stopped_by, final_loss=loss_ema)
    if main:
        keep = config.keep_checkpoints or stopped_by != "done"
        with atomic_dir(output, overwrite=True) as tmp:
            best_dir = ckpt_root / BEST
            if state["best_value"] is not None and is_complete(best_dir):
                for item in best_dir.iterdir():
                    if item.name != ".complete":
                        shutil.copy2(item, tmp / item.name)
            else:
                save_model(accelerator.unwrap_model(model), tmp)
            if write_extras is not None:
                write_extras(tmp, result)
            if keep and ckpt_root.exists():
                shutil.move(str(ckpt_root), str(tmp / CHECKPOINTS))
    accelerator.wait_for_everyone()
    return result
