"""Timing harness: warm-up, then repeated calls interleaved round-robin across models.

Interleaving (model A, B, C, then B, C, A, ...) spreads a noisy machine's slow moments over all
models instead of charging them to whichever model happened to run at the time, so ratios between
models stay fair. The harness knows nothing about models: it calls ``runner(i)`` callables, which
makes it testable with fakes.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

Runner = Callable[[int], object]
"""Runs the ``i``-th prepared input once (``i`` in ``range(repeats)``)."""


@dataclass
class Timing:
    """Wall-clock seconds of each timed call of one model at one batch size."""

    name: str
    batch_size: int
    seconds: list[float] = field(default_factory=list)
    examples: int = 0
    """Examples processed by the timed calls (sum of the batches' sizes)."""

    @property
    def calls(self) -> int:
        return len(self.seconds)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.seconds) * 1000.0, q)) if self.seconds else float("nan")

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.seconds) * 1000.0) if self.seconds else float("nan")

    @property
    def throughput(self) -> float:
        """Examples per second over all timed calls."""
        total = float(np.sum(self.seconds))
        return self.examples / total if total > 0 else float("nan")


@contextlib.contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Pin torch's intra-op thread count for the block (ONNX Runtime sessions get theirs at load)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def time_interleaved(runners: Sequence[tuple[str, Runner]], warmup: int, repeats: int,
                     batch_size: int = 1, examples_per_call: Sequence[Sequence[int]] | None = None,
                     clock: Callable[[], float] = time.perf_counter,
                     on_round: Callable[[], None] | None = None,
                     sync: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Warm up each runner ``warmup`` times, then time ``repeats`` calls of each, round-robin.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before the clock starts and before it stops, so
    work a GPU still has queued is charged to the call that queued it, not to the next one.

    Round ``r`` calls every runner with input ``r`` (warm-up rounds reuse inputs ``0, 1, ...``), in
    an order rotated by one model per round so no model always runs first. ``examples_per_call[m][r]``
    is the number of examples in model ``m``'s input ``r`` (default ``batch_size``).
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if warmup < 0:
        raise ValueError("warmup must be 0 or more")
    names = [name for name, _ in runners]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate runner names in {names}")
    timings = {name: Timing(name, batch_size) for name in names}
    n = len(runners)
    for r in range(warmup):
        for k in range(n):
            runners[(k + r) % n][1](r % repeats)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one model's call would be charged to that model only
    try:
        for r in range(repeats):
            for k in range(n):
                m = (k + r) % n
                name, run = runners[m]
                if sync:
                    sync()
                start = clock()
                run(r)
                if sync:
                    sync()
                timings[name].seconds.append(clock() - start)
                timings[name].examples += (examples_per_call[m][r] if examples_per_call else batch_size)
            if on_round:
                on_round()
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings
