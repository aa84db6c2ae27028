"""What a label store and the run that reads it must agree on, beyond the data (``LabelStore.check_data``).

The teachers' targets describe the inputs the teachers saw: each row tokenized with the teachers'
tokenizer and cut at the store's ``--max-length``. A run with another ``--max-length`` cuts some rows
elsewhere, and for those rows the targets describe other inputs than the student sees: refused, naming
how many rows. When no row is long enough for the cut to matter, the runs see the same inputs: a note.
A student whose tokenizer differs from the teachers' is legitimate (the logits and [CLS] states do not
depend on it), but the row count above is then measured with the student's tokenizer: a note says so.
An eval store must hold the same teachers (names and weights) as the training store.
Every finding is recorded in ``training_record.json`` (``objective.label_stores``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bertdistill.errors import UserError
from bertdistill.io import column_array


def tokenizer_identity(tokenizer) -> dict[str, Any]:
    """What identifies a tokenizer's output, as ``teachers.teacher.Teacher.info`` records it in a store."""
    return {"class": type(tokenizer).__name__, "vocab_size": len(tokenizer)}


def _same_tokenizer(stored: dict | None, student: dict) -> bool | None:
    """Whether a store teacher's recorded tokenizer matches the student's (None: the store did not record it).
    Fast and slow classes of one tokenizer (BertTokenizerFast, BertTokenizer) tokenize alike."""
    if not stored or stored.get("vocab_size") is None:
        return None
    base = str(stored.get("class", "")).removesuffix("Fast")
    return base == student["class"].removesuffix("Fast") and int(stored["vocab_size"]) == student["vocab_size"]


def rows_cut_differently(tokenizer, data, lengths: np.ndarray, store_max: int, run_max: int) -> int:
    """Rows whose input differs between a cut at ``store_max`` and one at ``run_max`` tokens (``lengths``: the
    rows' lengths cut at ``run_max``): those longer than the smaller cut."""
    lengths = np.asarray(lengths)
    if run_max > store_max:
        return int((lengths > store_max).sum())
    candidates = np.flatnonzero(lengths >= run_max)  # reached the run's cut: longer, or exactly as long
    if not len(candidates):
        return 0
    rows = data.dataset.select(candidates.tolist())
    text_b = list(rows["text_b"]) if "text_b" in rows.column_names else None
    full = tokenizer(list(rows["text_a"]), text_b, truncation=False, padding=False)["input_ids"]
    return int(sum(len(ids) > run_max for ids in full))


def check_label_stores(teachers, eval_store, tokenizer, run_max: int, sets: dict[str, tuple[Any, Any]],
                       notes: list[str]) -> dict[str, Any]:
    """Check the run's label stores against its settings; append notes; return what to record.

    ``sets`` maps "training data" / "eval data" to (task data, its encoded rows with a ``length`` column).
    """
    store = getattr(teachers, "store", None)
    if store is None:
        return {}
    student_tok = tokenizer_identity(tokenizer)
    names = list(teachers.names)
    recorded: dict[str, Any] = {}
    stores = {"training data": store}
    if eval_store is not None:
        _check_same_teachers(store, eval_store, names)
        stores["eval data"] = eval_store
    for what, label_store in stores.items():
        data, encoded = sets.get(what, (None, None))
        entry: dict[str, Any] = {"path": str(label_store.path), "store_max_length": label_store.meta.get("max_length"),
                                 "run_max_length": run_max}
        same = [_same_tokenizer(t.get("tokenizer"), student_tok) for t in label_store.teachers
                if t.get("name") in names]
        entry["tokenizer"] = ("unknown" if any(s is None for s in same) else
                              "same as the student's" if all(same) else "differs from the student's")
        store_max = entry["store_max_length"]
        if store_max is None:
            notes.append(f"the {what}'s label store does not record its --max-length, so it cannot be checked "
                         f"against this run's {run_max}")
        elif int(store_max) != run_max and data is not None:
            cut = rows_cut_differently(tokenizer, data, column_array(encoded, "length"), int(store_max), run_max)
            entry["rows_cut_differently"] = cut
            shorter = min(int(store_max), run_max)
            measured = "" if entry["tokenizer"] == "same as the student's" else " (counted with the student's tokenizer)"
            if cut:
                raise UserError(
                    f"the label store was made with --max-length {store_max} and this run uses {run_max}: {cut} of "
                    f"{data.num_rows} {what} rows are longer than {shorter} tokens{measured}, so for them the "
                    "teachers' targets describe other inputs than the student sees", str(label_store.path),
                    f"train with --max-length {store_max}, or label the data again with --max-length {run_max}")
            notes.append(f"the {what}'s label store was made with --max-length {store_max}, this run uses {run_max}; "
                         f"no row is longer than {shorter} tokens{measured}, so teachers and student see the same "
                         "inputs")
        if entry["tokenizer"] == "differs from the student's":
            notes.append(f"the teachers of the {what}'s label store tokenized with another vocabulary than the "
                         f"student ({student_tok['class']}, {student_tok['vocab_size']} tokens): their targets "
                         "are for the same texts, not the same tokens")
        recorded[what] = entry
    return recorded


def _check_same_teachers(store, eval_store, names: list[str]) -> None:
    """The eval store must hold the run's teachers, made from the same weights as the training store's."""
    train_by_name = {t["name"]: t for t in store.teachers}
    eval_by_name = {t["name"]: t for t in eval_store.teachers}
    for name in names:
        if name not in eval_by_name:
            raise UserError(f"the eval label store has no teacher {name!r} (it has: {', '.join(eval_by_name)})",
                            str(eval_store.path), "label the eval data with the same --teacher NAME=DIR as the "
                                                  "training data")
        mine, theirs = train_by_name[name].get("weights_sha256"), eval_by_name[name].get("weights_sha256")
        if mine and theirs and mine != theirs:
            raise UserError(f"teacher {name!r} of the eval label store has other weights than the one of the "
                            f"training label store ({theirs[:12]} vs {mine[:12]})", str(eval_store.path),
                            "label the eval data with the same teacher models as the training data")
