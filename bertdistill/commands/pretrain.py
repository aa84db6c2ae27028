"""``bertdistill pretrain-student``: filled in by its own issue."""

from __future__ import annotations

from bertdistill.errors import UserError

NAME = "pretrain-student"
HELP = "Not available yet."


def command() -> None:
    raise UserError("not available yet", "bertdistill pretrain-student", "see the issue tracker")
