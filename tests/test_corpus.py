"""bertdistill corpus: stated number of distinct new pairs, no repeats of originals, seed-determined."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import write_toy_pairs

from bertdistill.data.corpus import CorpusConfig, build_corpus, sidecar_path
from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def originals_of(path: Path) -> set[tuple[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    q, p = header.index("query"), header.index("passage")
    return {(f[q], f[p]) for f in (line.split("\t") for line in lines[1:])}


def test_enlarged_corpus_counts_and_uniqueness(tmp_path, toy_ranking):
    spec = DataSpec(path=str(toy_ranking), group_column="qid")
    report = build_corpus(CorpusConfig(sources=[spec], output=str(tmp_path / "c.jsonl"), negatives_per_query=5, seed=1))
    rows = read_rows(tmp_path / "c.jsonl")
    originals = originals_of(toy_ranking)
    pairs = [(r["query"], r["passage"]) for r in rows]
    new = [(r["query"], r["passage"]) for r in rows if r["origin"] != "original"]

    assert len(rows) == report.total_pairs == report.original_pairs + report.new_cross_query + report.new_within_group
    assert report.original_pairs == len(originals)
    assert len(set(pairs)) == len(pairs)  # distinct overall, so no duplicates among the new pairs
    assert not set(new) & originals  # no new pair repeats an original
    assert report.queries_short == 0 and report.new_cross_query == 5 * report.queries
    # Cross-query passages come from other groups only.
    group_passages = defaultdict(set)
    for r in rows:
        if r["origin"] == "original":
            group_passages[r["group"]].add(r["passage"])
    for r in rows:
        if r["origin"] == "cross_query":
            assert r["passage"] not in group_passages[r["group"]]
    meta = json.loads(sidecar_path(tmp_path / "c.jsonl").read_text())
    assert meta["report"]["total_pairs"] == len(rows)
    assert meta["report"]["sources"][0]["fingerprint"]["rows"] == 48
    assert "×" in report.summary() and str(report.total_pairs) in report.summary()


def test_deterministic_by_seed(tmp_path, toy_ranking):
    spec = DataSpec(path=str(toy_ranking), group_column="qid")

    def build(name, seed):
        build_corpus(CorpusConfig(sources=[spec], output=str(tmp_path / name), negatives_per_query=3, seed=seed))
        return (tmp_path / name).read_bytes()

    assert build("a.jsonl", 7) == build("b.jsonl", 7)
    assert build("c.jsonl", 8) != build("d.jsonl", 7)


def test_no_originals_and_several_sources(tmp_path):
    a = write_toy_pairs(tmp_path / "a.tsv", n=40, seed=1)
    b = write_toy_pairs(tmp_path / "b.tsv", n=40, seed=2)
    specs = [DataSpec(path=str(a)), DataSpec(path=str(b))]
    report = build_corpus(CorpusConfig(sources=specs, output=str(tmp_path / "c.jsonl"), negatives_per_query=2,
                                       include_originals=False, seed=0))
    rows = read_rows(tmp_path / "c.jsonl")
    originals = originals_of(a) | originals_of(b)
    assert all(r["origin"] == "cross_query" for r in rows)
    assert len(rows) == report.new_cross_query == 2 * report.queries
    assert len({(r["query"], r["passage"]) for r in rows}) == len(rows)
    assert not {(r["query"], r["passage"]) for r in rows} & originals
    assert report.originals_written == 0 and len(report.sources) == 2


def test_within_group_pairs_and_shortfall(tmp_path):
    # Group g1 has two query texts (paraphrases): each gets the other's candidates.
    path = tmp_path / "g.tsv"
    path.write_text("qid\tquery\tpassage\n"
                    "g1\twhere is paris\tparis is in france\n"
                    "g1\tparis location\tthe city of paris\n"
                    "g2\twhat is ice\tice is cold water\n"
                    "g2\twhat is ice\tice melts\n")
    report = build_corpus(CorpusConfig(sources=[DataSpec(path=str(path), group_column="qid")],
                                       output=str(tmp_path / "c.jsonl"), negatives_per_query=5, seed=0))
    rows = read_rows(tmp_path / "c.jsonl")
    within = {(r["query"], r["passage"]) for r in rows if r["origin"] == "within_group"}
    assert within == {("where is paris", "the city of paris"), ("paris location", "paris is in france")}
    # Only 2 passages lie outside each group, so every query falls short of 5.
    assert report.new_cross_query == 3 * 2 and report.queries_short == 3
    assert len({(r["query"], r["passage"]) for r in rows}) == len(rows) == 4 + 2 + 6


def test_refusals(tmp_path, toy_pairs):
    out = tmp_path / "c.jsonl"
    spec = DataSpec(path=str(toy_pairs))
    build_corpus(CorpusConfig(sources=[spec], output=str(out)))
    with pytest.raises(UserError, match="already exists"):
        build_corpus(CorpusConfig(sources=[spec], output=str(out)))
    build_corpus(CorpusConfig(sources=[spec], output=str(out), overwrite=True, negatives_per_query=1))
    with pytest.raises(UserError, match="empty"):
        build_corpus(CorpusConfig(sources=[spec], output=str(tmp_path / "e.jsonl"), negatives_per_query=0,
                                  include_originals=False))
    with pytest.raises(UserError, match="no data"):
        build_corpus(CorpusConfig(sources=[], output=str(tmp_path / "n.jsonl")))
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_cli_corpus_then_label(tmp_path, toy_ranking, tiny_bert):
    from typer.testing import CliRunner

    from bertdistill.cli import app
    from bertdistill.teachers.store import LabelStore

    out = tmp_path / "corpus.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["corpus", "--data", str(toy_ranking), "--group-column", "qid",
                                 "--negatives-per-query", "2", "--seed", "3", "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    total = json.loads(sidecar_path(out).read_text())["report"]["total_pairs"]
    assert "47 original pairs" in text and f"→ {total} pairs" in text and total == 47 + 12 * 2  # toy data repeats a pair
    result = runner.invoke(app, ["label", "--teacher", str(tiny_bert), "--data", str(out), "--quiet",
                                 "--output", str(tmp_path / "labels")])
    assert result.exit_code == 0, result.output
    assert LabelStore.open(tmp_path / "labels").num_rows == total
