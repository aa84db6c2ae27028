"""Which teacher layers PKD pulls a student's intermediate [CLS] states toward.

Layers are numbered like ``hidden_states``: 1..L (0 is the embeddings). The student's top layer is
left to the logits loss, so a student of M layers has M−1 intermediate layers, and each strategy
returns M−1 teacher layers, student layer k (1..M−1) being matched to the k-th of them:

* ``skip``: every (L // M)-th layer, e.g. 12→6 gives 2,4,6,8,10 and 6→3 gives 2,4;
* ``last``: the M−1 layers just below the top, e.g. 12→6 gives 7,8,9,10,11;
* ``all``: every layer 1..L (what ``label --hidden-layers all`` stores; not a PKD map).
"""

from __future__ import annotations

from bertdistill.errors import UserError

PKD_STRATEGIES = ("skip", "last")


def pkd_teacher_layers(teacher_layers: int, student_layers: int, strategy: str) -> list[int]:
    """Teacher layers for student layers 1..M−1 under ``strategy`` (skip, last or all)."""
    if teacher_layers < 1:
        raise UserError(f"teacher has {teacher_layers} layers", None, "use a teacher with at least one layer")
    if strategy == "all":
        return list(range(1, teacher_layers + 1))
    if strategy not in PKD_STRATEGIES:
        raise UserError(f"unknown PKD strategy {strategy!r}", None, "use skip or last")
    if student_layers < 1:
        raise UserError(f"student depth {student_layers} must be at least 1", None, "use 1 or more student layers")
    if student_layers > teacher_layers:
        raise UserError(f"a {student_layers}-layer student is deeper than the {teacher_layers}-layer teacher",
                        None, f"use at most {teacher_layers} student layers")
    if strategy == "skip":
        step = teacher_layers // student_layers
        return [step * k for k in range(1, student_layers)]
    return list(range(teacher_layers - student_layers + 1, teacher_layers))


def parse_hidden_layers(spec: str | None, teacher_layers: int, student_layers: int | None = None,
                        teacher: str = "teacher") -> list[int]:
    """Layers to store for one teacher: none | skip | last | all | a list such as 1,3,5."""
    text = (spec or "none").strip().lower()
    if text in ("", "none"):
        return []
    if text in PKD_STRATEGIES:
        if student_layers is None:
            raise UserError(f"--hidden-layers {text} needs the student depth", None,
                            "add --student-layers M (e.g. 3), or use --hidden-layers all")
        return pkd_teacher_layers(teacher_layers, student_layers, text)
    if text == "all":
        return pkd_teacher_layers(teacher_layers, 0, "all")
    try:
        layers = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--hidden-layers {spec!r} is not understood", None,
                        "use none, skip, last, all or a comma-separated list such as 1,3,5") from None
    bad = [layer for layer in layers if not 1 <= layer <= teacher_layers]
    if bad:
        raise UserError(f"{teacher} has layers 1..{teacher_layers}, not {bad}", None,
                        f"choose --hidden-layers within 1..{teacher_layers}")
    return sorted(set(layers))
