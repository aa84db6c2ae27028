"""Ctrl-C at safe points: the first press only asks the running loop to stop at its next safe point.

Python raises KeyboardInterrupt wherever the main thread happens to be: inside an optimizer update (half
the weights stepped), inside a finalizer (where Python drops it and the run goes on), inside a write.
``label`` and the training loop instead install a handler that records the press; the loop looks at it
between two units of work (a shard, an optimizer update) and stops there, in a state it can save and
resume exactly. A second press stops at once (``InterruptedAgain``), for a user who cannot wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator


class InterruptedAgain(KeyboardInterrupt):
    """Ctrl-C pressed a second time: raised at once, wherever the program is (nothing may be saved from there)."""


class Stopped(KeyboardInterrupt):
    """Ctrl-C handled by a command that kept its finished work: the CLI prints ``interrupted: <kept> — <how to
    continue>`` as its one line (exit 130); ``distill`` names the step and the recipe to run again instead."""

    def __init__(self, kept: str, fix: str):
        super().__init__(f"{kept} — {fix}")
        self.kept, self.fix = kept, fix


class CtrlC:
    """What the handler saw; ``check()`` raises KeyboardInterrupt once Ctrl-C has been pressed."""

    def __init__(self) -> None:
        self.presses = 0
        self.active = False
        """Whether the handler is installed (else Ctrl-C raises KeyboardInterrupt as usual)."""

    @property
    def pressed(self) -> bool:
        return self.presses > 0

    def check(self) -> None:
        if self.presses:
            raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_at_safe_points(notice: str | None = None) -> Iterator[CtrlC]:
    """Within the block, Ctrl-C only sets ``CtrlC.pressed`` (a second press raises ``InterruptedAgain``);
    ``notice`` is written to stderr at the first press, so a user waiting for the safe point knows why.
    Left alone where Ctrl-C is not Python's default (ignored, or handled by the caller) or off the main thread."""
    state = CtrlC()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield state
        return

    def on_ctrl_c(signum, frame) -> None:
        state.presses += 1
        if state.presses > 1:
            raise InterruptedAgain
        if notice:
            with contextlib.suppress(OSError):  # the raw descriptor: no Python stream is re-entered
                os.write(2, f"\n{notice}\n".encode())

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    state.active = True
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
        state.active = False
