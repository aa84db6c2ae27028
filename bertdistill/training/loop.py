"""The one training loop (Accelerate) for fine-tuning, stage-2 distillation and stage-1 pre-training.

``train`` runs a ``Run`` (``training.run``, prepared by ``training.setup`` for either stage; the stages
differ only in its data, teachers and loss terms) and writes its result. The loop decides: the update
(``train_step``), evaluations and the best model (``BestTracker``), checkpoints and resuming
(``CheckpointManager``, ``outputs``), the time budget and Ctrl-C. What only reports (progress bar,
trackers, step history) are callbacks (``training.callbacks``).

Batches are length-grouped and reproducible from seed + epoch, so a resumed run rebuilds the epoch's
order and skips the batches already consumed. With N processes each global batch is split N ways
(every N-th example), and each process's loss is scaled so the averaged gradient equals the
1-process gradient on the whole global batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import torch

from bertdistill.devices import move_batch
from bertdistill.errors import UserError
from bertdistill.interrupts import CtrlC, InterruptedAgain, ctrl_c_at_safe_points
from bertdistill.io import check_writable_parent, output_lock
from bertdistill.training.callbacks import Callbacks, ProgressBar, StepHistory, Trackers
from bertdistill.training.checkpoints import BestTracker, CheckpointManager, latest_checkpoint
from bertdistill.training.config import TrainConfig, short_run_warning
from bertdistill.training.evaluation import cache_teacher_logits, evaluate
from bertdistill.training.optimization import linear_schedule, make_optimizer, plan_updates
from bertdistill.training.outputs import Diverged, check_weights, publish, start_or_resume
from bertdistill.training.run import Run, TrainResult
from bertdistill.training.runtime import make_accelerator, over_budget, precision_warnings, stop_requested


def train_step(accelerator, module, optimizer, scheduler, run: Run, group: list, config: TrainConfig) -> dict:
    """One optimizer update over ``group`` (global micro-batches); returns the mean of each term and the loss."""
    world = accelerator.num_processes
    terms_sum: dict[str, float] = {}
    for j, global_ids in enumerate(group):
        local_ids = global_ids[accelerator.process_index::world]
        batch = move_batch(run.train_set.batch(local_ids), accelerator.device)
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


def train(config: TrainConfig, run: Run, show_progress: bool = True) -> TrainResult:
    """Train ``run.module`` and write the final (best) student to ``run.output`` atomically.

    One writer per output (a lock beside it); a diverged run (non-finite loss or weights) stops with
    one line, keeps its last good checkpoint and publishes nothing.
    """
    config.check()
    run.output = Path(run.output)
    check_writable_parent(run.output)  # before training, not at the first checkpoint or the end of a long run
    accelerator = make_accelerator(config, run.output)
    # Ctrl-C is deferred to the boundary between two updates for the whole run (interrupts.py): an interrupt
    # inside optimizer.step() would leave some weights one step ahead of the rest and of the saved step
    # count, one inside publishing would leave half an output.
    with (output_lock(run.output) if accelerator.is_main_process else contextlib.nullcontext(),
          ctrl_c_at_safe_points("Ctrl-C: stopping after this update, with a checkpoint (press it again to stop "
                                "at once, without one)") as ctrl_c):
        try:
            return _train(config, run, accelerator, show_progress, ctrl_c)
        except Diverged as exc:
            last = latest_checkpoint(run.output)
            kept = f"the last good checkpoint ({last.name}) is kept" if last else "no checkpoint was written yet"
            raise UserError(f"training diverged: {exc}; nothing was published, {kept}", str(run.output),
                            f"lower --lr (was {config.lr:g}) or check the loss weights and temperature, then "
                            "train again with --overwrite") from None


def _train(config: TrainConfig, run: Run, accelerator, show_progress: bool,
           ctrl_c: CtrlC | None = None) -> TrainResult:
    output = run.output
    world = accelerator.num_processes
    checkpoints = CheckpointManager(accelerator, output, config.keep_last)
    state: dict = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed": 0.0, "examples": 0,
                   "best_value": None, "best_step": None, "best_collapsed": False, "evaluations": [], "history": [],
                   "fingerprint": run.fingerprint}
    latest, _ = start_or_resume(run, checkpoints, show_progress)
    checkpoints.remove_unfinished()
    accelerator.wait_for_everyone()

    torch.manual_seed(config.seed)
    total, updates_per_epoch, length_line = plan_updates(config, run.train_set, world)
    short_run = short_run_warning(total, updates_per_epoch, config)
    run.warnings += [w for w in precision_warnings(config, accelerator.device) if w not in run.warnings]
    from bertdistill.training.speed import use_fast_attention

    # Eager attention on the CPU (not saved in the model's config; see training.speed for the figures).
    classifier = getattr(run.module.student, "classifier", run.module.student)
    use_fast_attention(classifier, accelerator.device)
    if config.freeze_word_embeddings:  # before the optimizer, which then holds no state for them
        classifier.get_input_embeddings().weight.requires_grad_(False)
    optimizer = make_optimizer(run.module, config, accelerator.device)
    scheduler = linear_schedule(optimizer, int(config.warmup_ratio * total), total)
    run.module, optimizer = module, optimizer = accelerator.prepare(run.module, optimizer)
    if run.teachers is not None:
        inner = accelerator.unwrap_model(module)
        run.teachers.prepare({t.name: inner.objective.teacher_request(t) for t in run.teachers.infos},
                             accelerator.device, accelerator.autocast)
        cache_teacher_logits(run, config.eval_batch_size)
    if latest is not None:
        checkpoints.restore(latest, state, scheduler)
    best = BestTracker(accelerator, checkpoints.root, run.best_metric,
                       lambda directory: run.save_model(accelerator.unwrap_model(module).student, directory),
                       collapsed=run.collapsed)
    callbacks = [StepHistory(config.log_every, total)]
    if config.report_to != "none":
        callbacks.append(Trackers(accelerator, config, run.output.name))
    if accelerator.is_main_process and show_progress:
        lines = [length_line] if length_line else []
        lines += [f"warning: {w}" for w in ([short_run] if short_run else []) + run.warnings]
        lines += [f"note: {note}" for note in run.notes]
        callbacks.append(ProgressBar(lines))
    events = Callbacks(callbacks)

    def save_checkpoint() -> None:
        check_weights(module, state["step"])
        checkpoints.save(state, scheduler)

    def run_eval(epoch_end: bool) -> None:
        if run.eval_set is None:
            return
        metrics = evaluate(accelerator, module, run.eval_set, config.eval_batch_size)
        state["evaluations"].append({"step": state["step"], "epoch": round(state["step"] / updates_per_epoch, 4),
                                     "epoch_end": epoch_end, **metrics})
        best.consider(metrics, state)
        events.on_evaluate(state, metrics)

    module.train()
    stopped_by = "done"
    state.setdefault("loss_ema", None)
    session_start = time.perf_counter()
    elapsed_before = state["elapsed"]
    events.on_train_begin(state, total)
    if latest is None and run.eval_set is not None:
        run_eval(False)  # the starting point, so the record shows what training changed
    last_eval_step = state["evaluations"][-1]["step"] if state["evaluations"] else -1
    # RNG state at the last update boundary: an interrupted micro-batch must not shift dropout on resume.
    rng_at_step = torch.get_rng_state()
    # A deferred Ctrl-C stops between two updates (train). ``updating`` says whether this update has started
    # changing weights, for a KeyboardInterrupt raised at once (a second Ctrl-C, or where the handler could
    # not be installed): nothing is saved from there.
    ctrl_c = ctrl_c or CtrlC()
    updating = [False]
    step_hook = getattr(optimizer, "optimizer", optimizer).register_step_pre_hook(
        lambda *args: updating.__setitem__(0, True))
    try:
        while state["step"] < total and stopped_by == "done":
            epoch_batches = [b for b in run.train_set.batches(config.batch_size * world, config.seed + state["epoch"])
                             if len(b) >= world]
            position = state["batch_in_epoch"]
            while position < len(epoch_batches) and state["step"] < total:
                if stop_requested(ctrl_c, accelerator):
                    raise KeyboardInterrupt
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
                updating[0] = False  # the weights and the step count agree again
                # saved with checkpoints: a resumed run reports the same final loss
                ema = state["loss_ema"]
                state["loss_ema"] = terms["loss"] if ema is None else 0.9 * ema + 0.1 * terms["loss"]
                rate = sum(len(b) for b in group) / max(1e-9, time.perf_counter() - t0)
                events.on_step_end(state, terms, scheduler.get_last_lr()[0], rate)
                epoch_done = position >= len(epoch_batches)
                if config.eval_every and state["step"] % config.eval_every == 0 and not epoch_done:
                    run_eval(False)
                    last_eval_step = state["step"]
                if config.time_budget is not None and over_budget(state["elapsed"], config.time_budget, world):
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
        if stop_requested(ctrl_c, accelerator):  # pressed during the last update: stop before publishing
            raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        events.on_train_end(state)
        if isinstance(exc, InterruptedAgain) or updating[0]:
            last = latest_checkpoint(output)
            kept = (f"the last checkpoint (step {last.name.split('-')[1]}) is kept" if last
                    else "no checkpoint was written yet")
            raise UserError(f"interrupted inside update {state['step'] + 1} of {total}, so nothing was saved; {kept}",
                            str(output), "continue with the same command plus --resume (press Ctrl-C once to stop "
                                         "after the current update with a checkpoint)") from None
        optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(rng_at_step)
        save_checkpoint()
        raise UserError(f"interrupted at step {state['step']} of {total}; checkpoint saved", str(output),
                        "continue with the same command plus --resume") from None
    finally:
        step_hook.remove()
    if last_eval_step != state["step"]:
        run_eval(False)
    events.on_train_end(state)
    if stopped_by != "done":
        save_checkpoint()  # a time-budgeted run can be continued with --resume and a larger budget
    check_weights(module, state["step"])

    result = TrainResult(output=output, steps=state["step"], epochs_done=round(state["step"] / updates_per_epoch, 4),
                         best_metric=run.best_metric if state["best_value"] is not None else None,
                         best_value=state["best_value"], best_step=state["best_step"],
                         evaluations=state["evaluations"], history=state["history"],
                         train_seconds=round(state["elapsed"], 2),
                         examples_per_second=round(state["examples"] / max(state["elapsed"], 1e-9), 2),
                         stopped_by=stopped_by, final_loss=state["loss_ema"], length_warning=short_run)
    result.warnings = list(run.warnings)
    if run.check_result is not None:
        result.warnings += run.check_result(result)
    publish(accelerator, run, best, state, result, config.keep_checkpoints or stopped_by != "done")
    return result
