"""Data layer: every shared data set loads with the expected rows and labels; malformed input fails clearly."""

from __future__ import annotations

from collections import Counter

import pytest
from cli_helpers import assert_user_error, run_cli
from conftest import SHARED, requires_shared

from bertdistill.config import config_from_dict
from bertdistill.data import DataSpec, load_task_data
from bertdistill.data.tokenize import length_grouped_batches, sorted_batches
from bertdistill.errors import UserError

WIKIQA_COLUMNS = ["query", "passage", "label"]

# (relative path, spec fields, rows, label counts by name or None for unlabeled, groups)
SHARED_FILES = [
    ("glue/RTE/train.tsv", {}, 2490, {"entailment": 1249, "not_entailment": 1241}, None),
    ("glue/RTE/dev.tsv", {}, 277, {"entailment": 146, "not_entailment": 131}, None),
    ("glue/RTE/test.tsv", {}, 3000, None, None),
    ("glue/MRPC/train.tsv", {}, 3668, {"0": 1194, "1": 2474}, None),
    ("glue/MRPC/dev.tsv", {}, 408, {"0": 129, "1": 279}, None),
    ("glue/MRPC/test.tsv", {}, 1725, None, None),
    ("glue/MRPC/msr_paraphrase_test.txt", {}, 1725, {"0": 578, "1": 1147}, None),
    ("glue/QNLI/dev.tsv", {}, 5463, {"entailment": 2702, "not_entailment": 2761}, None),
    ("glue/QNLI/test.tsv", {}, 5463, None, None),
    ("glue/SST-2/train.tsv", {}, 67349, None, None),
    ("glue/SST-2/dev.tsv", {}, 872, None, None),
    ("glue/SST-2/test-labeled.tsv", {}, 1821, None, None),
    ("snli_sample/snli_1.0_dev.head.jsonl", {}, 1289 - 16,
     {"entailment": 433, "neutral": 421, "contradiction": 419}, None),
    ("snli_sample/snli_1.0_test.head.jsonl", {}, 1277 - 23,
     {"entailment": 405, "neutral": 429, "contradiction": 420}, None),
    ("wikiqa/WikiQA-train.txt", {"columns": WIKIQA_COLUMNS, "task": "ranking"}, 20360, {"0": 19320, "1": 1040}, 2118),
    ("wikiqa/WikiQA-dev.tsv", {"group_column": "QuestionID"}, 2733, {"0": 2593, "1": 140}, 296),
    ("wikiqa/WikiQA-test.tsv", {"group_column": "QuestionID"}, 6165, {"0": 5872, "1": 293}, 633),
    ("wikiqa/WikiQA-dev.txt", {"columns": WIKIQA_COLUMNS, "task": "ranking"}, 2733, {"0": 2593, "1": 140}, 296),
    ("wikiqa/WikiQA-test.txt", {"columns": WIKIQA_COLUMNS, "task": "ranking"}, 6165, {"0": 5872, "1": 293}, 633),
]


@requires_shared()
@pytest.mark.parametrize("rel,fields,rows,labels,groups", SHARED_FILES, ids=[f[0] for f in SHARED_FILES])
def test_shared_files_load(rel, fields, rows, labels, groups):
    data = load_task_data(DataSpec(path=str(SHARED / rel), **fields))
    assert data.num_rows == rows
    if labels is None and data.has_labels:
        assert len(data.label_names) == 2
    elif labels is not None:
        counts = Counter(data.dataset["label"])
        assert {data.label_names[i]: n for i, n in counts.items()} == labels
    else:
        assert not data.has_labels
    if groups is not None:
        assert data.kind == "ranking"
        assert len(set(data.dataset["group"])) == groups
    # Texts come through verbatim: no quote handling, no stray BOM or line ends.
    assert all("\t" not in t and "\n" not in t for t in data.column("text_a")[:200])


@requires_shared()
def test_glue_quotes_are_not_special():
    # RTE train has unbalanced quote characters; a quote-aware reader would merge rows.
    data = load_task_data(DataSpec(path=str(SHARED / "glue/RTE/train.tsv")))
    texts = data.column("text_a") + data.column("text_b")
    assert sum(t.count('"') % 2 for t in texts) > 0
    assert data.num_rows == 2490


@requires_shared()
def test_mrpc_header_bom_is_stripped():
    data = load_task_data(DataSpec(path=str(SHARED / "glue/MRPC/train.tsv")))
    assert data.column_map == {"text_a": "#1 String", "text_b": "#2 String", "label": "Quality"}


def test_string_labels_map_to_ids_and_names_travel(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("premise,hypothesis,label\na,b,yes\nc,d,no\ne,f,yes\n")
    data = load_task_data(DataSpec(path=str(path)))
    assert data.label_names == ["no", "yes"]
    assert list(data.dataset["label"]) == [1, 0, 1]
    fixed = load_task_data(DataSpec(path=str(path), label_names=["yes", "no"]))
    assert list(fixed.dataset["label"]) == [0, 1, 0]


def test_integer_labels_sort_numerically(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\n" + "".join(f"t{i}\t{i}\n" for i in (10, 2, 1)))
    data = load_task_data(DataSpec(path=str(path)))
    assert data.kind == "single"
    assert data.label_names == ["1", "2", "10"]


def test_jsonl_parquet_and_unlabeled(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"question": ["q1", "q1", "q2", "q2"], "passage": ["a", "b", "c", "d"],
                          "label": [1, 0, 0, 1], "qid": ["1", "1", "2", "2"]})
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.jsonl", "d.parquet"):
        data = load_task_data(DataSpec(path=str(tmp_path / name), group_column="qid"))
        assert data.kind == "ranking" and data.num_rows == 4
        assert list(data.dataset["label"]) == [1, 0, 0, 1]
    unlabeled = load_task_data(DataSpec(path=str(tmp_path / "d.jsonl"), unlabeled=True))
    assert not unlabeled.has_labels


def test_fingerprint_depends_on_text_not_labels(tmp_path):
    a, b, c = tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "c.tsv"
    a.write_text("query\tpassage\tlabel\nx\ty\t1\n")
    b.write_text("query\tpassage\tlabel\nx\ty\t0\n")
    c.write_text("query\tpassage\tlabel\nx\tz\t1\n")
    fa, fb, fc = (load_task_data(DataSpec(path=str(p))).fingerprint() for p in (a, b, c))
    assert fa["content_sha256"] == fb["content_sha256"] != fc["content_sha256"]


def test_length_grouped_batches_cover_all_and_are_reproducible():
    lengths = [(i * 7) % 50 + 1 for i in range(1000)]
    first = length_grouped_batches(lengths, 16, seed=3)
    assert sorted(i for b in first for i in b) == list(range(1000))
    assert first == length_grouped_batches(lengths, 16, seed=3)
    assert first != length_grouped_batches(lengths, 16, seed=4)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / len(first)
    assert spread < 10  # similar lengths share a batch, so padding stays small


def test_sorted_batches_are_longest_first():
    batches = sorted_batches([3, 9, 1, 7], 2)
    assert batches == [[1, 3], [0, 2]]


def test_config_unknown_key_is_user_error():
    with pytest.raises(UserError, match="unknown config key 'txt_a'"):
        config_from_dict(DataSpec, {"txt_a": "q"}, "data.json")


# --- malformed inputs through the CLI: one line, exit 2 -----------------------------------------

def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_cli_empty_file(tmp_path):
    path = _write(tmp_path, "empty.tsv", "")
    assert_user_error(run_cli("data", "--data", path, "--no-tokens"), "file is empty", str(path))


def test_cli_header_only(tmp_path):
    path = _write(tmp_path, "h.tsv", "query\tpassage\tlabel\n")
    assert_user_error(run_cli("data", "--data", path, "--no-tokens"), "no data rows")


def test_cli_missing_file(tmp_path):
    assert_user_error(run_cli("data", "--data", tmp_path / "nope.tsv", "--no-tokens"), "file not found")


def test_cli_missing_column(tmp_path):
    path = _write(tmp_path, "d.tsv", "query\tpassage\tlabel\na\tb\t1\n")
    assert_user_error(run_cli("data", "--data", path, "--text-a", "question", "--no-tokens"),
                      "column 'question' not found", "--text-a")


def test_cli_bad_label_value(tmp_path):
    path = _write(tmp_path, "d.tsv", "query\tpassage\tlabel\na\tb\t1\nc\td\tmaybe\n")
    assert_user_error(run_cli("data", "--data", path, "--label-names", "0,1", "--no-tokens"),
                      "row 2 has label 'maybe'")


def test_cli_not_utf8(tmp_path):
    path = _write(tmp_path, "d.tsv", b"query\tpassage\tlabel\ncaf\xe9\tb\t1\n")
    assert_user_error(run_cli("data", "--data", path, "--no-tokens"), "line 2 is not valid UTF-8")


def test_cli_not_utf8_jsonl(tmp_path):
    path = _write(tmp_path, "d.jsonl", b'{"text": "ok", "label": 1}\n{"text": "caf\xe9", "label": 0}\n')
    assert_user_error(run_cli("data", "--data", path, "--no-tokens"), "line 2 is not valid UTF-8")


def test_cli_ragged_rows(tmp_path):
    path = _write(tmp_path, "d.tsv", "query\tpassage\tlabel\na\tb\t1\nc\td\n")
    assert_user_error(run_cli("data", "--data", path, "--no-tokens"), "line 3 has 2 fields, expected 3")


def test_cli_unknown_model_dir(tmp_path):
    path = _write(tmp_path, "d.tsv", "query\tpassage\tlabel\na\tb\t1\n")
    not_model = tmp_path / "not_a_model"
    not_model.mkdir()
    assert_user_error(run_cli("data", "--data", path, "--model", not_model), "not a model directory")
    assert_user_error(run_cli("data", "--data", path, "--model", tmp_path / "missing" / "dir"),
                      "model directory not found")


def test_cli_unknown_file_type(tmp_path):
    path = _write(tmp_path, "d.xlsx", "x")
    assert_user_error(run_cli("data", "--data", path, "--no-tokens"), "unknown file type")


def test_cli_ranking_without_groups(tmp_path):
    path = _write(tmp_path, "d.tsv", "query\tpassage\tlabel\na\tb\t1\nc\td\t0\n")
    assert_user_error(run_cli("data", "--data", path, "--task", "ranking", "--no-tokens"),
                      "one candidate per group")


def test_cli_data_config_unknown_key(tmp_path):
    cfg = _write(tmp_path, "data.json", '{"path": "x.tsv", "txt_a": "q"}')
    assert_user_error(run_cli("data", "--data-config", cfg, "--no-tokens"), "unknown config key 'txt_a'")


def test_cli_debug_shows_traceback(tmp_path):
    path = _write(tmp_path, "empty.tsv", "")
    with pytest.raises(UserError):
        from bertdistill.cli import main

        main(["data", "--data", str(path), "--no-tokens", "--debug"])


def test_cli_summary_with_tokenizer(tiny_bert, toy_ranking):
    result = run_cli("data", "--data", toy_ranking, "--group-column", "qid", "--model", tiny_bert)
    assert result.code == 0, result.err
    assert "ranking" in result.out and "groups" in result.out and "p95" in result.out


def test_cli_version():
    from bertdistill import __version__

    result = run_cli("--version")
    assert result.code == 0 and __version__ in result.out


def test_hub_dataset_with_class_labels(monkeypatch):
    """Hub sets go through datasets.load_dataset; ClassLabel ids map to names, -1 (GLUE test) drops."""
    import datasets

    features = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "not_entailment"]),
                                  "idx": datasets.Value("int32")})
    fake = datasets.Dataset.from_dict({"sentence1": ["a", "b", "c"], "sentence2": ["x", "y", "z"],
                                       "label": [1, 0, -1], "idx": [0, 1, 2]}, features=features)
    calls = []

    def load_dataset(name, subset=None, split=None):
        calls.append((name, subset, split))
        return fake

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    data = load_task_data(DataSpec(dataset="glue", subset="rte", split="validation"))
    assert calls == [("glue", "rte", "validation")]
    assert data.label_names == ["entailment", "not_entailment"]
    assert list(data.dataset["label"]) == [1, 0] and data.dropped == 1
    assert data.spec.describe() == "glue/rte[validation]"


def test_hub_failure_is_one_line(monkeypatch):
    import datasets

    def load_dataset(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert_user_error(run_cli("data", "--dataset", "glue", "--subset", "rte", "--no-tokens"),
                      "could not load hub data set", "glue/rte")


# --- formats read by their spec (issue 30) ----------------------------------------------------------

def test_csv_quoted_line_breaks_stay_in_their_field(tmp_path):
    """RFC 4180: a quoted field may hold line breaks. This 20-row file hides two lines that look like rows
    with a third label inside quoted passages; read line by line it gave 22 rows and 3 classes."""
    rows = [f'what is the sea {i},the sea is blue,{i % 2}' for i in range(20)]
    rows[4] = 'what is the sun,"the sun is hot\nwhat is the moon,the moon,2",0'
    rows[11] = 'what is ice,"ice is ""cold"", and\r\nwhat is snow,snow,2",1'
    path = _write(tmp_path, "d.csv", "query,passage,label\n" + "\n".join(rows) + "\n")
    data = load_task_data(DataSpec(path=str(path)))
    assert data.num_rows == 20 and data.label_names == ["0", "1"]
    assert data.column("text_b")[4] == "the sun is hot\nwhat is the moon,the moon,2"
    assert data.column("text_b")[11] == 'ice is "cold", and\r\nwhat is snow,snow,2'
    result = run_cli("data", "--data", path, "--no-tokens")
    assert result.code == 0 and "20" in result.out, result.out


def test_json_values_keep_their_types_and_unused_keys_do_not_matter(tmp_path):
    import json

    records = [{"query": "what is the sea", "passage": "the sea is blue", "label": 1, "meta": {"a": [1, 2]}},
               {"query": "what is the sun", "passage": "the sun is hot", "label": 0, "meta": "free text"}]
    lines = _write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    array = _write(tmp_path, "d.json", json.dumps(records, indent=2))
    for path in (lines, array):
        data = load_task_data(DataSpec(path=str(path)))
        assert data.num_rows == 2 and data.label_names == ["0", "1"] and list(data.dataset["label"]) == [1, 0]
        assert data.column("text_a") == ["what is the sea", "what is the sun"]


def test_parquet_dictionary_and_large_string_columns_are_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"query": pa.array(["a b", "c d"]).dictionary_encode(),
                      "passage": pa.array(["x", "y"], pa.large_string()), "label": pa.array([True, False])})
    pq.write_table(table, tmp_path / "d.parquet")
    data = load_task_data(DataSpec(path=str(tmp_path / "d.parquet")))
    assert data.column("text_a") == ["a b", "c d"] and data.column("text_b") == ["x", "y"]
    assert data.label_names == ["false", "true"]
