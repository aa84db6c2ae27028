"""The shipped demo QA set is what its generator writes, and its test split shares nothing with the rest."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "bertdistill" / "demo_data"


def _generator():
    spec = importlib.util.spec_from_file_location("make_demo_qa", DEMO / "make_demo_qa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(name: str) -> list[dict]:
    with (DEMO / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_shipped_files_are_the_generators_output():
    for name, lines in _generator().build().items():
        assert (DEMO / name).read_text(encoding="utf-8") == "\n".join(lines) + "\n", name


def test_every_question_has_six_candidates_and_one_answer():
    for name in ("demo_qa_train.tsv", "demo_qa_test.tsv"):
        by_question: dict[str, list[int]] = {}
        for row in _rows(name):
            by_question.setdefault(row["qid"], []).append(int(row["label"]))
        assert len(by_question) >= 70
        assert all(len(labels) == 6 and sum(labels) == 1 for labels in by_question.values()), name


def test_test_split_shares_no_text_with_training_or_stage1_files():
    test = _rows("demo_qa_test.tsv")
    test_texts = {r["question"] for r in test} | {r["passage"] for r in test}
    train = _rows("demo_qa_train.tsv")
    others = {r["question"] for r in train} | {r["passage"] for r in train}
    for name in ("demo_questions.txt", "demo_passages.txt"):
        others |= set((DEMO / name).read_text(encoding="utf-8").splitlines())
    assert not test_texts & others
    # and no test entity is named anywhere else: the test asks about towns, people and animals never seen
    names = {r["question"].split()[-1] for r in test if r["question"].split()[-1][0].isupper()}
    assert names and not any(n in text for n in names for text in others)
