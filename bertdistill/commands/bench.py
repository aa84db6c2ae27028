"""``bertdistill bench``: filled in by its own issue."""

from __future__ import annotations

from bertdistill.errors import UserError

NAME = "bench"
HELP = "Not available yet."


def command() -> None:
    raise UserError("not available yet", "bertdistill bench", "see the issue tracker")
