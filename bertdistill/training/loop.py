"""The one training loop (Accelerate) for fine-tuning, stage-2 distillation and stage-1 pre-training.

``train`` coordinates: a ``CheckpointManager`` (save/restore), a ``BestTracker`` (best model by a
metric), ``train_step`` (one optimizer update) and ``publish`` (the output directory). The stages
differ only in the ``Run`` they hand over: data, teachers and loss terms.

Batches are length-grouped and reproducible from seed + epoch, so a resumed run rebuilds the epoch's
order and skips the batches already consumed. With N processes each global batch is split N ways
(every N-th example), and each process's loss is scaled so the averaged gradient equals the
1-process gradient on the whole global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bertdistill.data.tokenize import (MODEL_INPUTS, length_grouped_batches, pad_batch, query_grouped_batches,
                                       sorted_batches)
from bertdistill.errors import UserError
from bertdistill.io import atomic_dir, check_writable_parent, is_complete, output_lock
from bertdistill.io import read_json  # noqa: F401  (with STATE_FILE: how callers read a checkpoint's state)
from bertdistill.training.checkpoints import (CHECKPOINTS, STATE_FILE, BestTracker,  # noqa: F401
                                              CheckpointManager, latest_checkpoint)
from bertdistill.training.config import DEFAULT_EPOCHS, MIN_DEFAULT_UPDATES, TrainConfig, default_updates
from bertdistill.training.objective import DistillationModule


@dataclass
class TrainSet:
    """Tokenized training rows (model inputs, ``row`` = index into the label store, optional ``label``)."""

    dataset: object
    pad_token_id: int
    teachers: object = None
    """A teacher source whose ``fetch(rows)`` adds per-row teacher targets to each batch (label stores)."""
    by_group: bool = False
    """Batches of whole query groups (ranking terms) instead of length-grouped batches."""

    def __post_init__(self):
        self.lengths = np.asarray(self.dataset["length"])
        self._columns = [c for c in (*MODEL_INPUTS, "label", "row", "group") if c in self.dataset.column_names]
        self.groups = np.asarray(self.dataset["group"]) if "group" in self.dataset.column_names else None
        if self.by_group and self.groups is None:
            raise UserError("the ranking loss terms need query groups, but the training rows have none", None,
                            "give ranking data with a group (query id) column (--group-column)")
        self._view = self.dataset.select_columns(self._columns)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self, batch_size: int, seed: int) -> list[list[int]]:
        """One epoch's training batches, reproducible from ``seed`` (seed + epoch)."""
        if self.by_group:
            return query_grouped_batches(self.groups, batch_size, seed)
        return length_grouped_batches(self.lengths, batch_size, seed)

    def batch(self, indices: list[int]) -> dict:
        block = self._view[indices]
        features = [{k: block[k][i] for k in self._columns} for i in range(len(indices))]
        out = pad_batch(features, self.pad_token_id)
        if self.teachers is not None:
            out.update(self.teachers.fetch(out["row"].numpy()))
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
    name: str = "eval"
    """``dev`` for rows held out of the training data."""


@dataclass
class Run:
    """Everything one training run needs, as prepared by ``training.setup`` for either stage."""

    module: DistillationModule
    train_set: TrainSet
    eval_set: EvalSet | None
    output: Path
    save_model: Callable[[object, Path], None]
    """save_model(student, directory) writes a model directory."""
    write_extras: Callable[[Path, "TrainResult"], None] | None = None
    check_result: Callable[["TrainResult"], list[str]] | None = None
    """Checks of the kept model's last evaluation; each failure is a warning line in the result."""
    teachers: object = None
    """The teacher source (label store or online models), or None for plain fine-tuning."""
    best_metric: str | None = None
    fingerprint: dict | None = None
    """The run's settings; a resumed run must match them."""
    resume: bool = False
    overwrite: bool = False
    notes: list[str] = field(default_factory=list)
    """Lines shown when training starts (after every check has passed)."""


@dataclass
class TrainResult:
    output: Path
    steps: int
    epochs_done: float
    best_metric: str | None
    best_value: float | None
    best_step: int | None
    evaluations: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    """Step history: {step, loss terms, lr, ex_s} every ``log_every`` steps (see TrainConfig.log_every)."""
    train_seconds: float = 0.0
    examples_per_second: float = 0.0
    stopped_by: str = "done"
    final_loss: float | None = None
    warnings: list[str] = field(default_factory=list)
    dev_report: dict | None = None
    """The kept student's metrics on the dev/eval set next to the majority baseline and the teachers'."""


def _move(batch: dict, device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {kk: vv.to(device) for kk, vv in v.items()}
        else:
            out[k] = v.to(device)
    return out


LOGS = "logs"
CURVES_FILE = "training_curves.png"
HISTORY_POINTS = 2000


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


def _optimizer(model, config: TrainConfig, device=None):
    from bertdistill.training.speed import fast_optimizer_kwargs

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr,
                             **fast_optimizer_kwargs(device or torch.device("cpu")))


def _linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def evaluate(accelerator, module, eval_set: EvalSet, batch_size: int) -> dict:
    """Task metrics (labeled data) and distill_loss / teacher_agreement / teacher_rank_corr (teacher logits known)."""
    from accelerate.utils import gather_object

    from bertdistill.metrics import (compute_metrics, positive_label_index, predicted_ids, relevance_scores,
                                     softmax, spearman)

    inner = accelerator.unwrap_model(module)
    student = inner.student
    was_training = student.training
    student.eval()
    mine = sorted_batches(eval_set.data.lengths, batch_size)[accelerator.process_index::accelerator.num_processes]
    results = []
    with torch.no_grad(), accelerator.autocast():
        for idx in mine:
            batch = _move(eval_set.data.batch(idx), accelerator.device)
            logits = student(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits
            results.append((idx, logits.float().cpu().numpy()))
    if accelerator.num_processes > 1:
        results = gather_object(results)
    if was_training:
        student.train()
    heads = results[0][1].shape[0]
    n = len(eval_set.data)
    all_logits = np.zeros((heads, n, results[0][1].shape[2]), dtype=np.float32)
    for idx, lg in results:
        all_logits[:, idx] = lg
    mean_logits = all_logits.mean(0)
    from bertdistill.training.guards import score_spread

    metrics: dict = {"score_spread": score_spread(mean_logits, eval_set.label_names)}
    if eval_set.teacher_logits is not None:
        metrics["teacher_score_spread"] = float(np.mean([score_spread(t, eval_set.label_names)
                                                         for t in eval_set.teacher_logits]))
    if eval_set.labels is not None:
        metrics.update(compute_metrics(eval_set.kind, eval_set.label_names, eval_set.labels, mean_logits,
                                       eval_set.groups))
        counts = np.bincount(predicted_ids(mean_logits, eval_set.label_names),
                             minlength=max(mean_logits.shape[-1], len(eval_set.label_names)))
        metrics["predicted_class_share"] = float(counts.max() / max(1, counts.sum()))
    kd = inner.objective.term("kd")
    if eval_set.teacher_logits is not None and kd is not None:
        teachers = torch.from_numpy(np.stack(eval_set.teacher_logits))
        metrics["distill_loss"] = float(kd.soft_loss(torch.from_numpy(all_logits), teachers))
        names = eval_set.label_names
        if mean_logits.shape[-1] == 1 or eval_set.teacher_logits[0].shape[-1] == 1:
            # A score head: agreement on the relevant/not decision (score > 0), rank correlation of the scores.
            teacher_scores = np.mean([relevance_scores(t, names) for t in eval_set.teacher_logits], axis=0)
            student_scores = relevance_scores(mean_logits, names)
            metrics["teacher_agreement"] = float(((student_scores > 0) == (teacher_scores > 0)).mean())
            metrics["teacher_rank_corr"] = spearman(student_scores, teacher_scores)
            return metrics
        target = np.mean([softmax(t) for t in eval_set.teacher_logits], axis=0)
        metrics["teacher_agreement"] = float((mean_logits.argmax(-1) == target.argmax(-1)).mean())
        if target.shape[-1] == 2:
            # Argmax agreement is near 1 whenever nearly all pairs are negatives (stage-1 corpora); the rank
            # correlation of the positive-class scores says whether the student orders pairs as the teachers do.
            pos = positive_label_index(names) if names else 1
            metrics["teacher_rank_corr"] = spearman(softmax(mean_logits)[:, pos], target[:, pos])
    return metrics


class Diverged(Exception):
    """A loss or a weight is no longer finite: nothing from this point on may be saved."""


def nonfinite_weights(module) -> str | None:
    """Name of the first parameter holding NaN or inf, or None."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if not torch.isfinite(param).all():
                return name
    return None


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

    def print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def train_step(accelerator, module, optimizer, scheduler, run: Run, group: list, config: TrainConfig) -> dict:
    """One optimizer update over ``group`` (global micro-batches); returns the mean of each term and the loss."""
    world = accelerator.num_processes
    terms_sum: dict[str, float] = {}
    for j, global_ids in enumerate(group):
        local_ids = global_ids[accelerator.process_index::world]
        batch = _move(run.train_set.batch(local_ids), accelerator.device)
        teachers = run.teachers.features(batch) if run.teachers is not None else {}
        sync = contextlib.nullcontext() if j == len(group) - 1 else accelerator.no_sync(module)
        with sync:
            with accelerator.autocast():
                loss, terms = module(batch, teachers)
            scale = len(local_ids) * world / len(global_ids) / len(group)
            accelerator.backward(loss * scale)
        for k, v in terms.items():
            terms_sum[k] = terms_sum.get(k, 0.0) + float(v.detach()) / len(group)
        terms_sum["loss"] = terms_sum.get("loss", 0.0) + float(loss.detach()) / len(group)
    bad = [k for k, v in terms_sum.items() if not math.isfinite(v) and k != "loss"]
    if bad or not math.isfinite(terms_sum["loss"]):
        optimizer.zero_grad(set_to_none=True)
        raise Diverged(f"loss term {bad[0]!r} is {terms_sum[bad[0]]}" if bad else f"the loss is {terms_sum['loss']}")
    if config.max_grad_norm:
        accelerator.clip_grad_norm_(module.parameters(), config.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return terms_sum


def _start_or_resume(run: Run, checkpoints: CheckpointManager, show: bool) -> tuple[Path | None, dict | None]:
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
            from bertdistill.training.curves import write_curves

            note = write_curves(tmp / CURVES_FILE, result)
            if note:
                result.warnings.append(note)
            if run.write_extras is not None:
                run.write_extras(tmp, result)
            root = run.output / CHECKPOINTS
            if keep_checkpoints and root.exists():
                shutil.move(str(root), str(tmp / CHECKPOINTS))
            if (run.output / LOGS).exists():
                shutil.move(str(run.output / LOGS), str(tmp / LOGS))

    accelerator.wait_for_everyone()


def train(config: TrainConfig, run: Run, show_progress: bool = True) -> TrainResult:
    """Train ``run.module`` and write the final (best) student to ``run.output`` atomically.

    One writer per output (a lock beside it); a diverged run (non-finite loss or weights) stops with
    one line, keeps its last good checkpoint and publishes nothing.
    """
    config.check()
    run.output = Path(run.output)
    check_writable_parent(run.output)  # before training, not at the first checkpoint or the end of a long run
    accelerator = make_accelerator(config, run.output)
    with output_lock(run.output) if accelerator.is_main_process else contextlib.nullcontext():
        try:
            return _train(config, run, accelerator, show_progress)
        except Diverged as exc:
            last = latest_checkpoint(run.output)
            kept = f"the last good checkpoint ({last.name}) is kept" if last else "no checkpoint was written yet"
            raise UserError(f"training diverged: {exc}; nothing was published, {kept}", str(run.output),
                            f"lower --lr (was {config.lr:g}) or check the loss weights and temperature, then "
                            "train again with --overwrite") from None


def _train(config: TrainConfig, run: Run, accelerator, show_progress: bool) -> TrainResult:
    output = run.output
    main = accelerator.is_main_process
    world = accelerator.num_processes
    checkpoints = CheckpointManager(accelerator, output, config.keep_last)
    state: dict = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed": 0.0, "examples": 0,
                   "best_value": None, "best_step": None, "evaluations": [], "history": [],
                   "fingerprint": run.fingerprint}
    latest, _ = _start_or_resume(run, checkpoints, show_progress)
    accelerator.wait_for_everyone()

    torch.manual_seed(config.seed)
    global_batch = config.batch_size * world
    batches_per_epoch = len([b for b in run.train_set.batches(global_batch, 0) if len(b) >= world])
    if batches_per_epoch == 0:
        raise UserError(f"{len(run.train_set)} training rows are fewer than the {world} processes", None,
                        "give more training data")
    updates_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    if config.max_steps:
        total = config.max_steps
    elif config.epochs is not None:
        total = max(1, math.ceil(config.epochs * updates_per_epoch))
    else:
        total = default_updates(updates_per_epoch)
        if show_progress and accelerator.is_main_process:
            from bertdistill.ui import err_console

            err_console.print(f"length: {total} updates ({total / updates_per_epoch:.3g} epochs of "
                              f"{updates_per_epoch}; the default is {DEFAULT_EPOCHS:g} epochs and at least "
                              f"{MIN_DEFAULT_UPDATES} updates)")
    log_every = config.log_every or max(1, math.ceil(total / HISTORY_POINTS))
    tracking = config.report_to != "none"
    if tracking:
        hparams = {k: v for k, v in dataclasses.asdict(config).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(run.output.name or "bertdistill", config=hparams)

    from bertdistill.training.speed import use_fast_attention

    # Eager attention on the CPU (not saved in the model's config; see training.speed for the figures).
    use_fast_attention(getattr(run.module.student, "classifier", run.module.student), accelerator.device)
    optimizer = _optimizer(run.module, config, accelerator.device)
    scheduler = _linear_schedule(optimizer, int(config.warmup_ratio * total), total)
    run.module, optimizer = module, optimizer = accelerator.prepare(run.module, optimizer)
    if run.teachers is not None:
        run.teachers.prepare(_teacher_requests(accelerator.unwrap_model(module), run.teachers),
                             accelerator.device, accelerator.autocast)
        if run.eval_set is not None and run.eval_set.teacher_logits is None and run.teachers.kind == "online":
            # Computed once, on the run's device and in its precision, for distill_loss and agreement.
            run.eval_set.teacher_logits = run.teachers.eval_logits(data=run.eval_set.data,
                                                                   batch_size=config.eval_batch_size)
    if latest is not None:
        checkpoints.restore(latest, state, scheduler)
    best = BestTracker(accelerator, checkpoints.root, run.best_metric,
                       lambda directory: run.save_model(accelerator.unwrap_model(module).student, directory))

    def save_checkpoint() -> None:
        _check_weights(module, state["step"])
        checkpoints.save(state, scheduler)

    if main and show_progress:
        from bertdistill.ui import err_console

        for note in run.notes:
            err_console.print(f"note: {note}", soft_wrap=True)
    bar = _Progress(main and show_progress, total, state["step"])

    def run_eval(epoch_end: bool) -> None:
        if run.eval_set is None:
            return
        metrics = evaluate(accelerator, module, run.eval_set, config.eval_batch_size)
        state["evaluations"].append({"step": state["step"], "epoch": round(state["step"] / updates_per_epoch, 4),
                                     "epoch_end": epoch_end, **metrics})
        best.consider(metrics, state)
        if tracking:
            accelerator.log({f"eval/{k}": v for k, v in metrics.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool)}, step=state["step"])
        if main:
            bar.print(f"step {state['step']}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                             if isinstance(v, float)))

    module.train()
    stopped_by = "done"
    loss_ema = None
    session_start = time.perf_counter()
    elapsed_before = state["elapsed"]
    if latest is None and run.eval_set is not None:
        run_eval(False)  # the starting point, so the record shows what training changed
    last_eval_step = state["evaluations"][-1]["step"] if state["evaluations"] else -1
    # RNG state at the last update boundary: an interrupted micro-batch must not shift dropout on resume.
    rng_at_step = torch.get_rng_state()
    try:
        while state["step"] < total and stopped_by == "done":
            epoch_batches = [b for b in run.train_set.batches(global_batch, config.seed + state["epoch"])
                             if len(b) >= world]
            position = state["batch_in_epoch"]
            while position < len(epoch_batches) and state["step"] < total:
                group = epoch_batches[position:position + config.grad_accum]
                t0 = time.perf_counter()
                try:
                    terms = train_step(accelerator, module, optimizer, scheduler, run, group, config)
                except Diverged as exc:
                    raise Diverged(f"at step {state['step'] + 1}, {exc}") from None
                rng_at_step = torch.get_rng_state()
                position += len(group)
                state["step"] += 1
                state["batch_in_epoch"] = position
                state["examples"] += sum(len(b) for b in group)
                state["elapsed"] = elapsed_before + time.perf_counter() - session_start
                state["last_terms"] = terms
                loss_ema = terms["loss"] if loss_ema is None else 0.9 * loss_ema + 0.1 * terms["loss"]
                rate = sum(len(b) for b in group) / max(1e-9, time.perf_counter() - t0)
                lr = scheduler.get_last_lr()[0]
                bar.update(loss=f"{loss_ema:.4f}", lr=f"{lr:.2e}", ex_s=f"{rate:.1f}")
                if tracking:
                    accelerator.log({**{f"train/{k}": float(v) for k, v in terms.items()}, "train/lr": lr,
                                     "train/examples_per_second": rate}, step=state["step"])
                if state["step"] % log_every == 0 or state["step"] == total:
                    state["history"].append({"step": state["step"], **{k: round(float(v), 6) for k, v in terms.items()},
                                             "lr": float(f"{lr:.6g}"), "ex_s": round(rate, 2)})
                epoch_done = position >= len(epoch_batches)
                if config.eval_every and state["step"] % config.eval_every == 0 and not epoch_done:
                    run_eval(False)
                    last_eval_step = state["step"]
                if config.time_budget is not None and _over_budget(state["elapsed"], config.time_budget, world):
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
        if tracking:
            accelerator.end_training()
        optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(rng_at_step)
        save_checkpoint()
        raise UserError(f"interrupted at step {state['step']} of {total}; checkpoint saved", str(output),
                        "continue with the same command plus --resume") from None
    bar.stop()
    if last_eval_step != state["step"]:
        run_eval(False)
    if tracking:
        accelerator.end_training()
    if stopped_by != "done":
        save_checkpoint()  # a time-budgeted run can be continued with --resume and a larger budget
    _check_weights(module, state["step"])

    result = TrainResult(output=output, steps=state["step"], epochs_done=round(state["step"] / updates_per_epoch, 4),
                         best_metric=run.best_metric if state["best_value"] is not None else None,
                         best_value=state["best_value"], best_step=state["best_step"],
                         evaluations=state["evaluations"], history=state["history"],
                         train_seconds=round(state["elapsed"], 2),
                         examples_per_second=round(state["examples"] / max(state["elapsed"], 1e-9), 2),
                         stopped_by=stopped_by, final_loss=loss_ema)
    if run.check_result is not None:
        result.warnings = run.check_result(result)
    publish(accelerator, run, best, state, result, config.keep_checkpoints or stopped_by != "done")
    return result


def _check_weights(module, step: int) -> None:
    bad = nonfinite_weights(module)
    if bad is not None:
        raise Diverged(f"weight {bad} holds NaN/inf after step {step}")


def _teacher_requests(module: DistillationModule, teachers) -> dict:
    return {info.name: module.objective.teacher_request(info) for info in teachers.infos}


def _over_budget(elapsed: float, budget: float, world: int) -> bool:
    over = [elapsed >= budget]
    if world > 1:  # every process must stop at the same step
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(over)
    return bool(over[0])
