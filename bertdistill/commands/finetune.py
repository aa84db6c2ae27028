"""``bertdistill finetune``: filled in by its own issue."""

from __future__ import annotations

from bertdistill.errors import UserError

NAME = "finetune"
HELP = "Not available yet."


def command() -> None:
    raise UserError("not available yet", "bertdistill finetune", "see the issue tracker")
