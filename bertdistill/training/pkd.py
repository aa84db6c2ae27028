"""PKD layer maps: which teacher layer each intermediate student layer is pulled toward.

Layers are numbered like ``hidden_states`` (1..L). Student layers 1..M−1 are mapped; the top layer
is left to the logits loss.
"""

from __future__ import annotations

from bertdistill.errors import UserError

PKD_MODES = ("none", "skip", "last")


def pkd_layer_map(teacher_layers: int, student_layers: int, mode: str) -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs; skip: evenly spaced (12→6: 2,4,6,8,10), last: M−1 below the top."""
    if mode not in PKD_MODES:
        raise UserError(f"unknown PKD mode {mode!r}", "--pkd", f"use one of: {', '.join(PKD_MODES)}")
    if mode == "none" or student_layers < 2:
        return []
    if student_layers > teacher_layers:
        raise UserError(f"student has {student_layers} layers, more than the teacher's {teacher_layers}", "--pkd",
                        "use a student with fewer layers than the teacher, or --pkd none")
    pairs = []
    for i in range(1, student_layers):
        if mode == "skip":
            # Rounded half up so non-divisible depths (12→5) still spread evenly.
            t = (2 * i * teacher_layers + student_layers) // (2 * student_layers)
        else:
            t = teacher_layers - student_layers + i
        pairs.append((i, t))
    return pairs
