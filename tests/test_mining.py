"""bertdistill corpus --mine bm25: retrieval, exclusion, deduplication, mixing, determinism, bad input,
and corpus --stats on a tiny label store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_cli
from conftest import SHARED, make_tiny_bert, requires_shared

from bertdistill.data.corpus import CorpusConfig, build_corpus, sidecar_path
from bertdistill.data.sources import DataSpec
from bertdistill.data.texts import TextSource, iter_texts, normalize_text, parse_text_source, text_key
from bertdistill.errors import UserError

TOPICS = ["glacier cave ice", "volcano lava eruption", "piano keys music", "salmon river spawning",
          "comet tail orbit", "desert cactus water", "bridge steel cable", "honey bee hive",
          "castle moat tower", "coffee bean roast", "tiger stripe jungle", "violin string bow"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def qa_file(tmp: Path, name: str = "qa.tsv") -> Path:
    """Ranking data: one question per topic with a gold passage and an off-topic candidate."""
    lines = ["qid\tquery\tpassage"]
    for i, topic in enumerate(TOPICS):
        a, b, c = topic.split()
        lines.append(f"q{i}\twhat about the {a} {b}?\tthe {a} has a {b} and a {c}")
        lines.append(f"q{i}\twhat about the {a} {b}?\tunrelated note number {i}")
    return write(tmp / name, "\n".join(lines) + "\n")


def pool_file(tmp: Path, name: str = "pool.txt") -> Path:
    """One passage per line: four on-topic passages per topic."""
    lines = []
    for topic in TOPICS:
        a, b, c = topic.split()
        lines += [f"a {a} near the {b}", f"{b} facts: {c} and {a}", f"the {c} of a {b}", f"{c} {a} {b} overview"]
    return write(tmp / name, "\n".join(lines) + "\n")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def mine(tmp: Path, name: str = "c.jsonl", data: Path | None = None, **kw):
    cfg = dict(sources=[DataSpec(path=str(data), group_column="qid")] if data else [], output=str(tmp / name),
               mine="bm25", top_k=3, show_progress=False)
    cfg.update(kw)
    report = build_corpus(CorpusConfig(**cfg))
    return report, read_rows(tmp / name)


# -- texts --------------------------------------------------------------------------------------

def test_normalize_text():
    assert normalize_text("  What  is\tthe SEA? ") == "what is the sea"
    assert normalize_text("«Hello, world!»") == "hello, world"
    assert normalize_text("U.S. 's") == "u.s. 's"
    assert normalize_text("?!") == ""
    # Exclusion and dedup also ignore spaces and punctuation inside: tokenized = raw.
    assert text_key("It 's the U.S. `` best '' ?") == text_key("it's the US \"best\"") == "itstheusbest"


def test_text_sources(tmp_path):
    assert parse_text_source("a.tsv:sentence1, sentence2") == TextSource("a.tsv", ["sentence1", "sentence2"])
    odd = write(tmp_path / "odd:name.txt", "x\n")
    assert parse_text_source(str(odd)) == TextSource(str(odd))
    tab = write(tmp_path / "w.txt", "how is ice made\tice is frozen water\t1\nwhere is rome\trome is in italy\t0\n")
    assert list(iter_texts(parse_text_source(f"{tab}:2"), "passage")) == ["ice is frozen water", "rome is in italy"]
    assert list(iter_texts(TextSource(str(tab)), "exclude")) == [
        "how is ice made", "ice is frozen water", "where is rome", "rome is in italy"]
    jl = write(tmp_path / "s.jsonl", '{"sentence1": "a cat", "sentence2": "a dog", "gold_label": "x"}\n')
    assert list(iter_texts(parse_text_source(f"{jl}:sentence1,sentence2"), "passage")) == ["a cat", "a dog"]
    assert list(iter_texts(TextSource(str(jl)), "query")) == ["a cat"]
    assert list(iter_texts(TextSource(str(jl)), "passage")) == ["a dog"]
    assert list(iter_texts(TextSource(str(jl)), "exclude")) == ["a cat", "a dog"]


# -- mining -------------------------------------------------------------------------------------

def test_bm25_ranks_matching_passage_first(tmp_path):
    queries = write(tmp_path / "q.txt", "where do salmon spawn in the river\nwhat is a comet tail\n")
    report, rows = mine(tmp_path, queries=[str(queries)], passages=[str(pool_file(tmp_path))], top_k=2)
    first = {r["query"]: r["passage"] for r in rows if r["rank"] == 1}
    # Both words and the shortest passage: "spawn" is not "spawning" (no stemming).
    assert first == {"where do salmon spawn in the river": "a salmon near the river",
                     "what is a comet tail": "a comet near the tail"}
    assert all(r["origin"] == "bm25" for r in rows) and report.new_bm25 == len(rows) == 4
    for q in {r["query"] for r in rows}:
        scores = [r["score"] for r in rows if r["query"] == q]
        assert scores == sorted(scores, reverse=True) and min(scores) > 0


def test_columns_sidecar_and_no_own_candidates(tmp_path):
    data = qa_file(tmp_path)
    report, rows = mine(tmp_path, data=data, passages=[str(pool_file(tmp_path))], top_k=4, random_ratio=0.25)
    assert all(set(r) == {"query", "passage", "group", "origin", "score", "rank"} for r in rows)
    assert {r["origin"] for r in rows} == {"original", "bm25", "cross_query"}
    own = {}
    for r in rows:
        if r["origin"] == "original":
            own.setdefault(r["group"], set()).add(r["passage"])
    assert all(r["passage"] not in own[r["group"]] for r in rows if r["origin"] != "original")
    pairs = [(r["query"], r["passage"]) for r in rows]
    assert len(pairs) == len(set(pairs))
    meta = json.loads(sidecar_path(tmp_path / "c.jsonl").read_text())
    assert meta["report"]["total_pairs"] == len(rows) == report.total_pairs
    assert meta["report"]["origins"] == {"original": 24, "within_group": 0, "bm25": 36, "cross_query": 12}
    assert meta["config"]["mine"] == "bm25" and len(meta["output_sha256"]) == 64
    assert "36 bm25" in report.summary()


def test_exclusion_on_normalized_text(tmp_path):
    data = qa_file(tmp_path)
    pool = pool_file(tmp_path)
    extra_q = write(tmp_path / "more.txt", "What about the COMET tail\nhow do bees make honey\n")
    # The eval file writes its texts with other case, spacing and end punctuation.
    ev = write(tmp_path / "eval.tsv", "question\tsentence\tlabel\n"
                                      "  WHAT about the glacier   cave \tThe glacier has a cave and a ice.\t1\n"
                                      "what about the comet tail?!\t« a piano near the keys »\t0\n"
                                      "where is the bridge\tsteel facts : cable and bridge\t0\n")
    report, rows = mine(tmp_path, data=data, passages=[str(pool)], queries=[str(extra_q)],
                        exclude=[str(ev)], top_k=5, random_ratio=0.4)
    banned = {text_key(t) for t in ("what about the glacier cave", "the glacier has a cave and a ice",
                                    "what about the comet tail", "a piano near the keys", "where is the bridge",
                                    "steel facts: cable and bridge")}
    for r in rows:
        assert text_key(r["query"]) not in banned and text_key(r["passage"]) not in banned
    # Queries: the data's glacier and comet questions (the extra comet question is the same text);
    # passages: a gold passage and two pool lines (one tokenized differently); pairs: both questions'.
    assert report.excluded == {"texts": 6, "queries": 2, "passages": 3, "pairs": 4}
    assert "excluded 2 queries, 3 passages and 4 original pairs" in report.summary()
    assert report.queries == 12 - 2 + 1


def test_dedup_across_sources(tmp_path):
    data = qa_file(tmp_path)
    pool = pool_file(tmp_path)
    # The same passages again, differently written, from a second pool file and from the data.
    again = write(tmp_path / "again.tsv", "sentence\n" + "".join(
        f"{line.upper()}.\n" for line in pool.read_text().splitlines()[:6]) + "the glacier has a cave and a ice\n")
    qs = write(tmp_path / "q.txt", "what about the glacier cave\nWHAT ABOUT THE VOLCANO LAVA?\nbrand new question\n")
    report, rows = mine(tmp_path, data=data, passages=[str(pool), str(again)], queries=[str(qs)], top_k=6)
    assert report.passages == 12 * 2 + 48  # data passages + pool lines, each once
    assert report.duplicates["duplicate_passages"] == 7 and report.duplicates["duplicate_queries"] == 2
    assert report.queries == 13
    keys = [(text_key(r["query"]), text_key(r["passage"])) for r in rows]
    assert len(keys) == len(set(keys))
    assert len({text_key(r["passage"]) for r in rows}) == len({r["passage"] for r in rows})


def test_deterministic_and_mix_ratio(tmp_path):
    data = qa_file(tmp_path)
    pool = str(pool_file(tmp_path))

    def build(name, seed, ratio=0.3):
        mine(tmp_path, name, data=data, passages=[pool], top_k=5, random_ratio=ratio, seed=seed)
        return (tmp_path / name).read_bytes()

    first = build("a.jsonl", 7)
    assert build("b.jsonl", 7) == first
    assert build("c.jsonl", 8) != first
    report, rows = mine(tmp_path, "m.jsonl", data=data, passages=[pool], top_k=5, random_ratio=0.3)
    new = [r for r in rows if r["origin"] != "original"]
    assert report.queries_short == 0 and len(new) == 12 * 5
    assert report.new_cross_query == round(12 * 5 * 0.3) == 18 and report.new_bm25 == 42
    per_query = {}
    for r in new:
        per_query.setdefault(r["query"], []).append(r["origin"])
    assert all(o.count("cross_query") in (1, 2) for o in per_query.values())  # spread evenly
    only_random = mine(tmp_path, "r.jsonl", data=data, passages=[pool], top_k=5, random_ratio=1.0)[0]
    assert only_random.new_bm25 == 0 and only_random.new_cross_query == 60


def test_library_refusals_leave_nothing(tmp_path):
    data = qa_file(tmp_path)
    with pytest.raises(UserError, match="--top-k 0"):
        mine(tmp_path, data=data, top_k=0)
    with pytest.raises(UserError, match="needs --mine bm25"):
        build_corpus(CorpusConfig(sources=[DataSpec(path=str(data))], output=str(tmp_path / "c.jsonl"),
                                  exclude=[str(data)]))
    assert not list(tmp_path.glob("*.jsonl*")) and not list(tmp_path.glob(".*tmp*"))


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_mine(tmp_path):
    data = qa_file(tmp_path)
    out = tmp_path / "c.jsonl"
    result = run_cli("corpus", "--data", data, "--group-column", "qid", "--mine", "bm25", "--top-k", "2",
                     "--passages", pool_file(tmp_path), "--exclude", f"{data}:passage", "--output", out)
    assert result.code == 0, result.err
    text = " ".join(result.out.split())
    assert "corpus (bm25)" in text and "excluded 0 queries, 24 passages and 24 original pairs" in text
    assert "mining" in result.err  # the progress bar
    assert len(read_rows(out)) == 12 * 2


BAD = {
    "exclude-missing": (lambda t, d: ["--exclude", t / "nope.tsv"], "nope.tsv"),
    "exclude-folder": (lambda t, d: ["--exclude", t], "folder"),
    "exclude-not-utf8": (lambda t, d: ["--exclude", write_bytes(t / "bad.txt", b"caf\xe9\n")], "UTF-8"),
    "passages-missing": (lambda t, d: ["--passages", t / "nope.txt"], "nope.txt"),
    "passages-missing-column": (lambda t, d: ["--passages", f"{d}:answer"], "'answer' not found"),
    "passages-numbers-only": (lambda t, d: ["--passages", f"{numbers_file(t)}:id"], "no usable text"),
    "passages-tab-file": (lambda t, d: ["--passages", write(t / "w.txt", "a\tb\n")], "FILE:N"),
    "queries-no-text-column": (lambda t, d: ["--queries", write(t / "l.tsv", "label\tscore\n1\t2\n")],
                               "no text column found"),
    "top-k-zero": (lambda t, d: ["--top-k", "0"], "--top-k 0"),
    "top-k-negative": (lambda t, d: ["--top-k", "-3"], "--top-k -3"),
    "ratio-above-one": (lambda t, d: ["--random-ratio", "1.5"], "--random-ratio"),
    "pool-empty-after-exclusion": (lambda t, d: ["--exclude", f"{d}:passage"], "pool is empty"),
}


def numbers_file(tmp: Path) -> Path:
    return write(tmp / "n.tsv", "id\tx\n1\t2\n3\t4\n")


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_bad_input(tmp_path, case):
    make_args, needle = BAD[case]
    data = qa_file(tmp_path)
    out = tmp_path / "out" / "c.jsonl"
    result = run_cli("corpus", "--data", data, "--group-column", "qid", "--mine", "bm25", *make_args(tmp_path, data),
                     "--output", out)
    assert_user_error(result, needle)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cli_mining_options_need_mine(tmp_path):
    data = qa_file(tmp_path)
    assert_user_error(run_cli("corpus", "--data", data, "--exclude", data, "--output", tmp_path / "c.jsonl"),
                      "--exclude needs --mine bm25")
    assert_user_error(run_cli("corpus", "--data", data, "--mine", "bm25", "-k", "3", "--output", tmp_path / "c.jsonl"),
                      "--negatives-per-query")
    assert not (tmp_path / "c.jsonl").exists()


# -- stats --------------------------------------------------------------------------------------

def test_stats_on_tiny_store(tmp_path):
    from bertdistill.data.hardness import CorpusStatsConfig, corpus_stats
    from bertdistill.teachers.store import LabelStore

    data = qa_file(tmp_path)
    corpus = tmp_path / "c.jsonl"
    assert run_cli("corpus", "--data", data, "--group-column", "qid", "--mine", "bm25", "--top-k", "2",
                   "--random-ratio", "0.5", "--passages", pool_file(tmp_path), "--quiet", "--output", corpus).code == 0
    a = make_tiny_bert(tmp_path / "a", layers=1, hidden=16, seed=1)
    b = make_tiny_bert(tmp_path / "b", layers=1, hidden=16, seed=2)
    labels = tmp_path / "labels"
    result = run_cli("label", "--teacher", f"a={a}", "--teacher", f"b={b}", "--data", corpus, "--unlabeled",
                     "--max-length", "32", "--quiet", "--output", labels)
    assert result.code == 0, result.err

    out = tmp_path / "stats.json"
    result = run_cli("corpus", "--stats", corpus, "--labels", labels, "--json", out)
    assert result.code == 0, result.err
    assert "cross_query" in result.out and "entropy" in result.out
    stats = json.loads(out.read_text())["stats"]
    by_origin = {o["origin"]: o for o in stats["origins"]}
    assert list(by_origin) == ["original", "bm25", "cross_query", "all"]

    # The same numbers by hand.
    store = LabelStore.open(labels)
    probs = [np.exp(lg) / np.exp(lg).sum(1, keepdims=True) for lg in (store.logits(0), store.logits(1))]
    p1 = np.stack([p[:, 1] for p in probs])
    mean = p1.mean(0)
    entropy = -(mean * np.log2(mean) + (1 - mean) * np.log2(1 - mean))
    differ = probs[0].argmax(1) != probs[1].argmax(1)
    rows = read_rows(corpus)
    for origin in ("original", "bm25", "cross_query", "all"):
        mask = np.array([origin in ("all", r["origin"]) for r in rows])
        got = by_origin[origin]
        assert got["pairs"] == mask.sum()
        assert got["mean_entropy"] == pytest.approx(entropy[mask].mean(), abs=1e-6)
        assert got["teacher_std"] == pytest.approx(np.abs(p1[0] - p1[1])[mask].mean() / 2, abs=1e-6)
        assert got["argmax_disagreement"] == pytest.approx(differ[mask].mean())
        assert got["mean_p_positive"] == pytest.approx(mean[mask].mean(), abs=1e-6)
        assert got["mean_bm25_rank"] == pytest.approx(np.mean([r["rank"] for r, m in zip(rows, mask) if m]))

    assert stats["positive_label"] == "1"
    with pytest.raises(UserError, match="other data"):
        corpus_stats(CorpusStatsConfig(corpus=str(data), labels=str(labels)))
    assert_user_error(run_cli("corpus", "--stats", corpus), "--labels")


# -- shared data --------------------------------------------------------------------------------

@pytest.mark.integration
@requires_shared()
def test_wikiqa_mining_excludes_dev_and_test(tmp_path):
    w = SHARED / "wikiqa"
    report, rows = mine(tmp_path, sources=[DataSpec(path=str(w / "WikiQA-train.txt"), columns=["query", "passage", "label"],
                                                    task="ranking", limit=3000)],
                        passages=[str(SHARED / "glue" / "QNLI" / "dev.tsv")],
                        exclude=[str(w / "WikiQA-dev.tsv"), str(w / "WikiQA-test.tsv")], top_k=4, random_ratio=0.25)
    # The raw .tsv files are excluded; their tokenized .txt copies must find nothing left.
    banned = {text_key(t) for f in ("WikiQA-dev.txt", "WikiQA-test.txt")
              for t in iter_texts(TextSource(str(w / f)), "exclude")}
    assert report.excluded["texts"] > 9000 and report.excluded["passages"] > 100
    assert not any(text_key(r["query"]) in banned or text_key(r["passage"]) in banned for r in rows)
    assert report.new_bm25 > 0 and report.total_pairs == len(rows)
