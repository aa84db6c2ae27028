"""Layer maps as (student layer, teacher layer) pairs for the intermediate-layer loss terms.

The teacher layers come from ``bertdistill.teachers.layers.pkd_teacher_layers``, the same function
``label --hidden-layers skip|last`` uses to choose what to store, so the two can never disagree.
PKD matches the M−1 intermediate layers (the top is left to the logits); the TinyBERT terms
(hidden states, attention maps) match every layer, the top included, and the embeddings for states.
"""

from __future__ import annotations

from bertdistill.errors import UserError
from bertdistill.teachers.layers import PKD_STRATEGIES, pkd_teacher_layers

PKD_MODES = ("none", *PKD_STRATEGIES)


def pkd_layer_map(teacher_layers: int, student_layers: int, mode: str) -> list[tuple[int, int]]:
    """(student layer i, teacher layer) for i in 1..M−1; skip: every (L//M)-th (12→6: 2,4,6,8,10), last: M−1 below the top."""
    if mode not in PKD_MODES:
        raise UserError(f"unknown PKD mode {mode!r}", "--pkd", f"use one of: {', '.join(PKD_MODES)}")
    if mode == "none" or student_layers < 2:
        return []
    teacher = pkd_teacher_layers(teacher_layers, student_layers, mode)
    return list(zip(range(1, student_layers), teacher))


def layer_pairs(teacher_layers: int, student_layers: int, mode: str, embeddings: bool = False) -> list[tuple[int, int]]:
    """(student layer i, teacher layer) for i in 1..M: the PKD map plus top→top (skip 6→3: 2,4,6; last: 4,5,6),
    or explicit teacher layers "i,j,k" for student layers 1..M; (0, 0) first when ``embeddings``."""
    if mode in PKD_STRATEGIES:
        pairs = pkd_layer_map(teacher_layers, student_layers, mode) + [(student_layers, teacher_layers)]
    else:
        try:
            chosen = [int(x) for x in mode.split(",")]
        except ValueError:
            raise UserError(f"layer match {mode!r} is not skip, last or a list like 2,4,6", "--match-layers",
                            "use skip, last or one teacher layer per student layer") from None
        if len(chosen) != student_layers or any(not 1 <= x <= teacher_layers for x in chosen):
            raise UserError(f"layer match {mode!r} needs {student_layers} teacher layers within 1..{teacher_layers}",
                            "--match-layers", "give one teacher layer per student layer, e.g. 2,4,6")
        pairs = list(zip(range(1, student_layers + 1), chosen))
    return ([(0, 0)] if embeddings else []) + pairs
