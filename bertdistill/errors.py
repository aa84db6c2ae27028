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
