"""The on-disk data path used by ``label`` agrees row for row with the in-memory one."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pytest

from bertdistill.data.ondisk import OnDiskTaskData, load_task_data_on_disk
from bertdistill.data.sources import ContentHasher, DataSpec, load_task_data
from bertdistill.errors import UserError
from tests.conftest import write_toy_pairs


def _same(spec: DataSpec, tmp_path, label_names=None) -> tuple[OnDiskTaskData, object]:
    disk = load_task_data_on_disk(spec, tmp_path, label_names=label_names)
    mem = load_task_data(spec, label_names=label_names)
    assert disk.fingerprint() == mem.fingerprint()
    assert (disk.num_rows, disk.kind, disk.label_names, disk.column_map, disk.dropped) == (
        mem.num_rows, mem.kind, mem.label_names, mem.column_map, mem.dropped)
    return disk, mem


def test_content_hash_does_not_depend_on_batching():
    texts = pa.array([f"query {i}" for i in range(25_003)])
    passages = pa.array([f"passage {i}" for i in range(25_003)])
    whole = ContentHasher()
    whole.update(texts, passages)
    pieces = ContentHasher()
    for start, end in ((0, 7), (7, 10_000), (10_000, 10_001), (10_001, 25_003)):
        pieces.update(texts[start:end], passages[start:end])
    assert whole.hexdigest() == pieces.hexdigest()
    assert whole.hexdigest() == whole.hexdigest()  # reading the digest does not change it
    # The stored layout, spelled out: per block of 10k rows all text_a, then all text_b, then 0x1e.
    reference = hashlib.sha256()
    for start in range(0, 25_003, 10_000):
        for column in (texts, passages):
            for text in column[start:start + 10_000].to_pylist():
                reference.update(text.encode() + b"\x1f")
        reference.update(b"\x1e")
    assert whole.hexdigest() == reference.hexdigest()


def test_rows_labels_and_fingerprint_match_in_memory(tmp_path):
    # 45k rows: several 20k-row source batches, 10k-row hash blocks and 1024-row stored batches.
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=45_000, seed=3)
    disk, mem = _same(DataSpec(path=str(data)), tmp_path)
    for start, end in ((0, 1), (1000, 1030), (1023, 1025), (19_999, 20_001), (44_990, 45_000), (0, 45_000)):
        got = disk.rows(start, end)
        want = mem.dataset[start:end]
        assert got["text_a"] == list(want["text_a"]) and got["text_b"] == list(want["text_b"])
        assert got["label"] == list(want["label"])
    assert disk.labels().tolist() == list(mem.dataset["label"])
    assert disk.rows(5, 9, ["text_a"]).keys() == {"text_a"}


def test_limit_drop_and_fixed_label_names(tmp_path):
    path = tmp_path / "snli.tsv"
    rows = ["sentence1\tsentence2\tgold_label"]
    rows += [f"a {i}\tb {i}\t{['entailment', '-', 'neutral', 'contradiction'][i % 4]}" for i in range(30_000)]
    path.write_text("\n".join(rows) + "\n")
    names = ["entailment", "neutral", "contradiction"]
    disk, mem = _same(DataSpec(path=str(path), limit=21_000), tmp_path, label_names=names)
    assert disk.num_rows == 21_000 and disk.dropped == 7_500
    assert disk.labels().tolist() == list(mem.dataset["label"])
    assert disk.rows(20_990, 21_000)["text_a"] == list(mem.dataset[20_990:21_000]["text_a"])


def test_group_codes_follow_the_groups(tmp_path):
    data = write_toy_pairs(tmp_path / "rank.tsv", n=30_000, ranking=True)
    disk, mem = _same(DataSpec(path=str(data), group_column="qid"), tmp_path)
    groups = list(mem.dataset["group"])
    codes = disk.group_codes
    assert len(codes) == len(groups)
    first_code = {}
    for g, c in zip(groups, codes.tolist()):  # one code per group, and different groups differ
        assert first_code.setdefault(g, c) == c
    assert len(set(first_code.values())) == len(first_code)


def test_jsonl_and_parquet_sources(tmp_path):
    records = [{"query": f"q {i}", "passage": f"p {i}", "label": i % 2} for i in range(3_000)]
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    _same(DataSpec(path=str(jsonl)), tmp_path / "j")
    parquet = tmp_path / "pairs.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records), parquet, row_group_size=700)
    disk, mem = _same(DataSpec(path=str(parquet)), tmp_path / "p")
    assert disk.rows(690, 710)["text_b"] == [f"p {i}" for i in range(690, 710)]


@pytest.mark.parametrize("body, message", [
    ("query\tpassage\tlabel\n", "no data rows"),
    ("query\tpassage\tlabel\na\tb\t1\nc\td\tx\n", "row 2 has label 'x'"),
    ("query\tpassage\tlabel\n" + "a\tb\t1\n" * 3 + "c\t\t\n", "row 4 has an empty label"),
])
def test_bad_rows_are_user_errors(tmp_path, body, message):
    path = tmp_path / "bad.tsv"
    path.write_text(body)
    with pytest.raises(UserError, match=message):
        load_task_data_on_disk(DataSpec(path=str(path)), tmp_path, label_names=["0", "1"])


def test_one_candidate_per_group_refused(tmp_path):
    data = tmp_path / "pairs.tsv"
    data.write_text("query\tpassage\tlabel\n" + "".join(f"q{i}\tp{i}\t{i % 2}\n" for i in range(50)))
    with pytest.raises(UserError, match="one candidate per group"):
        load_task_data_on_disk(DataSpec(path=str(data), task="ranking"), tmp_path)


def test_labels_are_ids_in_label_name_order(tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=200)
    disk = load_task_data_on_disk(DataSpec(path=str(data)), tmp_path, label_names=["1", "0"])
    mem = load_task_data(DataSpec(path=str(data)), label_names=["1", "0"])
    assert np.array_equal(disk.labels(), np.asarray(mem.dataset["label"]))
