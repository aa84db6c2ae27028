"""PKD layer maps as (student layer, teacher layer) pairs for the loss.

The teacher layers come from ``bertdistill.teachers.layers.pkd_teacher_layers``, the same function
``label --hidden-layers skip|last`` uses to choose what to store, so the two can never disagree.
"""

from __future__ import annotations

from bertdistill.errors import UserError
from bertdistill.teachers.layers import pkd_teacher_layers

PKD_MODES = ("none", "skip", "last")


def pkd_layer_map(teacher_layers: int, student_layers: int, mode: str) -> list[tuple[int, int]]:
    """(student layer i, teacher layer) for i in 1..M−1; skip: every (L//M)-th (12→6: 2,4,6,8,10), last: M−1 below the top."""
    if mode not in PKD_MODES:
        raise UserError(f"unknown PKD mode {mode!r}", "--pkd", f"use one of: {', '.join(PKD_MODES)}")
    if mode == "none" or student_layers < 2:
        return []
    teacher = pkd_teacher_layers(teacher_layers, student_layers, mode)
    return list(zip(range(1, student_layers), teacher))
