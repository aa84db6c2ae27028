"""The student of a run and the measured defaults that depend on it: its source (a smaller student starts
from its first teacher), one head per teacher, and the learning rate."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bertdistill.training.config import STUDENT_LR, TEACHER_LR


def build_student(student_cfg, label_names: Sequence[str], head_names: Sequence[str], seed: int):
    """StudentModel with one head per name; restores per-teacher heads saved by an earlier stage."""
    from bertdistill.student.build import build_classifier
    from bertdistill.student.model import StudentModel, load_saved_heads

    classifier, tokenizer, info = build_classifier(student_cfg, label_names, seed)
    model = StudentModel(classifier, head_names)
    info["heads"] = list(head_names)
    if len(head_names) > 1:
        saved = load_saved_heads(info["source"])
        if saved is not None and saved[0] == list(head_names):
            model.load_head_state(_heads_for_width(saved[1], model.heads()[0].out_features, label_names))
            info["heads_from"] = "restored from the source's per-teacher heads"
        elif info.get("classifier_trained"):
            info["heads_from"] = "copies of the source's classifier"
        else:
            model.reinit_heads(seed)
            info["heads_from"] = "random"
    info["num_parameters"] = sum(p.numel() for p in classifier.parameters())
    return model, tokenizer, info


def _heads_for_width(state: dict, width: int, label_names: Sequence[str]) -> dict:
    """Saved per-teacher heads for a student of ``width`` outputs: 2-class heads of an earlier stage become
    score heads (w_pos − w_other, the same logit difference) when this stage has a score head."""
    if width != 1 or state["head_0.weight"].shape[0] == 1:
        return state
    from bertdistill.metrics import positive_label_index

    pos = positive_label_index(label_names)
    return {k: v[pos:pos + 1] - v[1 - pos:2 - pos] for k, v in state.items()}


def student_source_from_teacher(student_cfg, teacher: dict | None) -> tuple[str | None, str] | None:
    """(teacher directory, why) when a student with no source of its own should start from the first
    teacher's layers: it keeps fewer layers than that teacher, at the teacher's width. (None, warning) when it
    should but the teacher's directory is not on this machine (it then starts from the default model).
    Measured (examples/defaults/RESULTS.md): on 2,000 rows of MRPC and SST-2 the teacher's first 3 layers
    beat the packaged MiniLM's by 1.8 and 2.0 points and never collapsed."""
    if (teacher is None or student_cfg.source is not None or student_cfg.random_init or student_cfg.layers is None
            or any(getattr(student_cfg, k, None) is not None for k in ("width", "heads", "intermediate"))):
        return None
    path, layers = teacher.get("path"), teacher.get("num_layers")
    if not path or not layers or student_cfg.layers >= layers:
        return None
    # the path as given, then the absolute directory a label store records (stores written before it lack it)
    found = next((str(p) for p in (path, teacher.get("directory")) if p and Path(p).is_dir()), None)
    if found is None:
        return None, (f"teacher {teacher['name']!r} ({path}) is not a directory here, so the student starts from "
                      f"the default model instead of the teacher's first {student_cfg.layers} layers; pass "
                      f"--student-from with the teacher's directory to start from it")
    return found, (f"the student starts from teacher {teacher['name']!r}'s layers "
                   f"({student_cfg.layer_map} {student_cfg.layers} of {layers}; --student-from to choose another source)")


def default_lr(student_info: dict, distilled: bool) -> tuple[float, str]:
    """(learning rate, why) when --lr is not given: STUDENT_LR for a student, TEACHER_LR for a whole model."""
    if student_info.get("random_init"):
        return STUDENT_LR, "student default (randomly initialized)"
    if student_info.get("layers", 0) < student_info.get("source_layers", 0):
        return STUDENT_LR, f"student default ({student_info['layers']} of {student_info['source_layers']} layers)"
    if distilled:
        return STUDENT_LR, "student default (trained against teachers)"
    return TEACHER_LR, "default for a whole model fine-tuned without teachers"
