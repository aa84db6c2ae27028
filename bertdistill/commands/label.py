"""``bertdistill label``: filled in by its own issue."""

from __future__ import annotations

from bertdistill.errors import UserError

NAME = "label"
HELP = "Not available yet."


def command() -> None:
    raise UserError("not available yet", "bertdistill label", "see the issue tracker")
