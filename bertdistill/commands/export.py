"""``bertdistill export``: filled in by its own issue."""

from __future__ import annotations

from bertdistill.errors import UserError

NAME = "export"
HELP = "Not available yet."


def command() -> None:
    raise UserError("not available yet", "bertdistill export", "see the issue tracker")
