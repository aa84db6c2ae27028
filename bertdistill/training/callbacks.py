"""What watches a run without steering it: the progress bar, the experiment trackers and the step history.

Modelled on transformers' ``TrainerCallback``: the loop calls every callback at named events and each
does one thing. The loop itself decides (evaluations, checkpoints, stopping); callbacks only report.
"""

from __future__ import annotations

import dataclasses

HISTORY_POINTS = 2000
"""About how many steps the record's step history keeps when ``--log-every`` is not given."""


class Callback:
    """Events of a run; every method is optional."""

    def on_train_begin(self, state: dict, total: int) -> None:
        """Before the first update of this session (``state`` may come from a checkpoint)."""

    def on_step_end(self, state: dict, terms: dict[str, float], lr: float, rate: float) -> None:
        """After an update: the mean of each loss term, the learning rate, this update's examples per second."""

    def on_evaluate(self, state: dict, metrics: dict) -> None:
        """After an evaluation at ``state["step"]``."""

    def on_train_end(self, state: dict) -> None:
        """When the loop ends, normally or not (called once)."""


class Callbacks(Callback):
    """Calls each callback in turn."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = callbacks

    def on_train_begin(self, state, total):
        for cb in self.callbacks:
            cb.on_train_begin(state, total)

    def on_step_end(self, state, terms, lr, rate):
        for cb in self.callbacks:
            cb.on_step_end(state, terms, lr, rate)

    def on_evaluate(self, state, metrics):
        for cb in self.callbacks:
            cb.on_evaluate(state, metrics)

    def on_train_end(self, state):
        for cb in self.callbacks:
            cb.on_train_end(state)


class ProgressBar(Callback):
    """The run's notes, then a rich progress bar (loss EMA, learning rate, ex/s) and a line per evaluation."""

    def __init__(self, notes: list[str]):
        self.notes = notes
        self.bar = None

    def on_train_begin(self, state, total):
        from bertdistill.ui import err_console, progress

        for note in self.notes:
            err_console.print(note, soft_wrap=True)
        self.bar = progress("loss", "lr", "ex_s")
        self.bar.start()
        self.task = self.bar.add_task("train", total=total, completed=state["step"], loss="-", lr="-", ex_s="-")

    def on_step_end(self, state, terms, lr, rate):
        if self.bar is not None:
            self.bar.update(self.task, advance=1, loss=f"{state['loss_ema']:.4f}", lr=f"{lr:.2e}", ex_s=f"{rate:.1f}")

    def on_evaluate(self, state, metrics):
        if self.bar is not None:
            self.bar.console.print(f"step {state['step']}: " + ", ".join(
                f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))

    def on_train_end(self, state):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class Trackers(Callback):
    """Every loss term, the learning rate, ex/s and each evaluation, to Accelerate's trackers (TensorBoard, W&B)."""

    def __init__(self, accelerator, config, name: str):
        self.accelerator = accelerator
        self.config = config
        self.name = name
        self.open = False

    def on_train_begin(self, state, total):
        hparams = {k: v for k, v in dataclasses.asdict(self.config).items() if isinstance(v, (int, float, str, bool))}
        self.accelerator.init_trackers(self.name or "bertdistill", config=hparams)
        self.open = True

    def on_step_end(self, state, terms, lr, rate):
        self.accelerator.log({**{f"train/{k}": float(v) for k, v in terms.items()}, "train/lr": lr,
                              "train/examples_per_second": rate}, step=state["step"])

    def on_evaluate(self, state, metrics):
        self.accelerator.log({f"eval/{k}": v for k, v in metrics.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)}, step=state["step"])

    def on_train_end(self, state):
        if self.open:
            self.accelerator.end_training()
            self.open = False


class StepHistory(Callback):
    """Every ``log_every``-th step (and the last) into ``state["history"]``, kept in the training record."""

    def __init__(self, log_every: int | None, total: int):
        self.every = log_every or max(1, -(-total // HISTORY_POINTS))
        self.total = total

    def on_step_end(self, state, terms, lr, rate):
        if state["step"] % self.every == 0 or state["step"] == self.total:
            state["history"].append({"step": state["step"], **{k: round(float(v), 6) for k, v in terms.items()},
                                     "lr": float(f"{lr:.6g}"), "ex_s": round(rate, 2)})
