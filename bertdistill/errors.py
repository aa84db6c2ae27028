"""User-facing errors: one line saying what went wrong, where, and how to fix it."""

from __future__ import annotations

PART_WIDTH = 400
"""Longest a part of an error line (what, where, fix) is printed: a value echoed from a crafted input
(a huge config value, a binary "line") must not turn one line into pages."""


def clip(text: str, width: int = PART_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis and the length it had."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    return f"{text[:width]}… ({len(text):,} characters in all)"


class UserError(Exception):
    """A problem with the user's input or environment; the CLI prints it as one line and exits 2."""

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = [clip(self.what)]
        if self.where:
            parts[0] = f"{clip(self.where)}: {parts[0]}"
        if self.fix:
            parts.append(f"fix: {clip(self.fix)}")
        return " — ".join(parts)


EXIT_RUN_FAILED = 3
"""Exit status of a command that wrote its output, but a check failed: a training run whose every evaluation
collapsed or whose --strict check failed (model saved, marked FAILED), an export whose fp32 model passed but whose
int8 copy did not (fp32 written, int8 left out). Distinct from bad input (2) so that scripts can tell "nothing ran" from "ran, no result"."""


class RunFailed(UserError):
    """A training run whose model was saved but marked as failed (``FAILED`` in its folder, the verdict in its
    record). The CLI prints ``failed: <where>: <verdict> — fix: ...`` and exits ``EXIT_RUN_FAILED``. A
    UserError subclass so that callers that caught --strict failures as UserError still do."""

    exit_code = EXIT_RUN_FAILED

    def __init__(self, what: str, where: str | None = None, fix: str | None = None, result=None):
        super().__init__(what, where, fix)
        self.result = result
