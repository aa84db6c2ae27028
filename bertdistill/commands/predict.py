"""``bertdistill predict``: filled in by its own issue."""

from __future__ import annotations

from bertdistill.errors import UserError

NAME = "predict"
HELP = "Not available yet."


def command() -> None:
    raise UserError("not available yet", "bertdistill predict", "see the issue tracker")
