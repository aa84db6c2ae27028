"""BM25-mined stage-1 corpora: each query paired with the passages a search engine would rank high.

``build_corpus`` calls :func:`mine_corpus` when ``CorpusConfig.mine == "bm25"``.

Inputs: the ``--data`` sources give queries with their own passages (and groups, as for random
corpora); ``queries`` add more queries, ``passages`` more pool passages (``FILE[:COLUMN]``, see
``bertdistill.data.texts``). Texts are compared on their normalized form (lowercased, whitespace
collapsed, punctuation stripped at the ends) with spaces and punctuation inside removed too
(``text_key``; WikiQA's tokenized .txt and raw .tsv copies of a sentence then match): a query or
passage matching a text of an ``exclude`` file never enters the corpus (nor does an original pair
holding one), matching texts are one query / one pool passage (the first text seen is written), and a
(query, passage) pair is written at most once.

Per query, in query order: its original pairs (``include_originals``), its group's other candidates
(``within_group``), then ``top_k`` new pairs: the best-scoring BM25 passages of the pool (``bm25``),
except that a share ``random_ratio`` of them (spread evenly over the queries, exact in total) are drawn
at random (``cross_query``, as in random corpora). New pairs never use the query's own group's
passages, the query's own text, or a passage with BM25 score 0. Every row carries ``score`` (the
passage's BM25 score for the query) and ``rank`` (1 + the number of pool passages scoring strictly
higher; own passages are skipped, so the ranks of ``bm25`` rows can have gaps).

The index is ``bm25s`` (English stop words, no stemming). Rows stream to a temporary file that is
renamed when complete; memory holds the pool, the index and one query's scores.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace

import numpy as np

from bertdistill.data.corpus_spec import CorpusConfig, CorpusReport, draw_distinct, sidecar_path
from bertdistill.data.sources import load_task_data
from bertdistill.data.texts import iter_texts, parse_text_source, text_key
from bertdistill.errors import UserError
from bertdistill.io import atomic_file, check_output_dir, mark_written, to_jsonable, write_json

ORIGINS = ("original", "within_group", "bm25", "cross_query")


@dataclass
class _Pool:
    """Distinct texts by normal form, in first-seen order."""

    index: dict[str, int] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def add(self, text: str, key: str) -> tuple[int, bool]:
        i = self.index.get(key)
        if i is not None:
            return i, False
        i = self.index[key] = len(self.texts)
        self.texts.append(text)
        self.keys.append(key)
        return i, True


@dataclass
class _Inputs:
    passages: _Pool
    queries: _Pool
    query_group: list[str]
    """The group written for each query (its data group, or its own text)."""
    query_gkey: list
    """Each query's group key inside the miner (a --queries query is a group of its own)."""
    query_own: list[dict[int, None]]
    group_passages: dict
    group_queries: dict
    sources: list[dict]
    counts: dict[str, int]
    excluded: dict[str, int]


def check_mining_config(config: CorpusConfig) -> None:
    """Refuse bad mining options before anything is read."""
    if config.mine != "bm25":
        raise UserError(f"unknown mining method {config.mine!r}", None, "use --mine bm25 (or leave --mine out)")
    if config.top_k < 1:
        raise UserError(f"--top-k {config.top_k} must be at least 1", None, "use --top-k 1 or more")
    if not 0.0 <= config.random_ratio <= 1.0:
        raise UserError(f"--random-ratio {config.random_ratio} is outside 0..1", None,
                        "use a share between 0 (BM25 only) and 1 (random only)")
    if not config.sources and not config.queries:
        raise UserError("no queries given", None, "pass --data FILE and/or --queries FILE")


def mine_corpus(config: CorpusConfig) -> CorpusReport:
    """Build a BM25-mined corpus (see the module docstring); returns the counts, also in the sidecar."""
    start = time.perf_counter()
    check_mining_config(config)
    output = check_output_dir(config.output, config.overwrite)
    sidecar = check_output_dir(sidecar_path(output), config.overwrite)
    # Parse every FILE[:COLUMN] before reading anything, so a typo fails fast.
    excludes = [parse_text_source(s, "--exclude") for s in config.exclude]
    extra_queries = [parse_text_source(s, "--queries") for s in config.queries]
    extra_passages = [parse_text_source(s, "--passages") for s in config.passages]

    inputs = _read_inputs(config, excludes, extra_queries, extra_passages)
    pool, queries = inputs.passages, inputs.queries
    if not pool.texts:
        raise UserError(f"the passage pool is empty (after excluding {inputs.excluded['passages']} passages)", None,
                        "add passages with --passages FILE, or exclude less")
    if not queries.texts:
        raise UserError(f"no queries left (after excluding {inputs.excluded['queries']} queries)", None,
                        "add queries with --queries FILE, or exclude less")

    retriever, query_tokens = _index(pool.texts, queries.texts)
    counts = {origin: 0 for origin in ORIGINS}
    short = 0
    rng = np.random.default_rng(config.seed)
    n_queries = len(queries.texts)
    digest = hashlib.sha256()
    bar = _Bar(config.show_progress, n_queries)
    try:
        with atomic_file(output, binary=True) as fh:
            for qi in range(n_queries):
                rows, missing = _query_rows(qi, config, inputs, retriever, query_tokens[qi], rng,
                                            _random_share(qi, config.top_k, config.random_ratio))
                short += missing > 0
                for pid, origin, score, rank in rows:
                    counts[origin] += 1
                    line = json.dumps({"query": queries.texts[qi], "passage": pool.texts[pid],
                                       "group": inputs.query_group[qi], "origin": origin,
                                       "score": round(float(score), 4), "rank": int(rank)},
                                      ensure_ascii=False).encode("utf-8") + b"\n"
                    fh.write(line)
                    digest.update(line)
                bar.update(qi + 1, sum(counts.values()))
            total = sum(counts.values())
            if total == 0:
                raise UserError("the corpus would be empty (no query has a passage with a BM25 score above 0)", None,
                                "add passages that share words with the queries, or raise --random-ratio")
    finally:
        bar.stop()

    report = CorpusReport(
        output=str(output), sidecar=str(sidecar), sources=inputs.sources,
        original_pairs=inputs.counts["original_pairs"], duplicate_originals=inputs.counts["duplicate_pairs"],
        queries=n_queries, passages=len(pool.texts), new_within_group=counts["within_group"],
        new_cross_query=counts["cross_query"], queries_short=short, originals_written=counts["original"],
        total_pairs=total, mine="bm25", new_bm25=counts["bm25"], origins=counts, excluded=inputs.excluded,
        duplicates={k: inputs.counts[k] for k in ("duplicate_queries", "duplicate_passages", "duplicate_pairs")},
        seconds=round(time.perf_counter() - start, 2))
    write_json(sidecar, {"format": "bertdistill-corpus", "version": 1, "config": to_jsonable(config),
                         "report": to_jsonable(report), "output_sha256": digest.hexdigest()})
    mark_written(output, 'corpus')
    mark_written(sidecar, 'corpus')
    return report


# -- reading the sources ------------------------------------------------------------------------

def _read_inputs(config: CorpusConfig, excludes, extra_queries, extra_passages) -> _Inputs:
    banned: set[str] = set()
    sources: list[dict] = []
    for src in excludes:
        n = 0
        for text in iter_texts(src, "exclude"):
            key = text_key(text)
            if key:
                banned.add(key)
                n += 1
        sources.append({"source": src.describe(), "role": "exclude", "texts": n})
    excluded_q: set[str] = set()
    excluded_p: set[str] = set()
    excluded_pairs = 0
    pool, queries = _Pool(), _Pool()
    query_group: list[str] = []
    query_gkey: list = []
    query_own: list[dict[int, None]] = []
    group_passages: dict = {}
    group_queries: dict = {}
    counts = dict.fromkeys(("original_pairs", "duplicate_pairs", "duplicate_queries", "duplicate_passages"), 0)

    def add_query(text: str, key: str, group: str, gkey) -> int:
        qi, new = queries.add(text, key)
        if new:
            query_group.append(group)
            query_gkey.append(gkey)
            query_own.append({})
            group_queries.setdefault(gkey, []).append(qi)
        return qi

    multi = len(config.sources) > 1
    for k, spec in enumerate(config.sources):
        data = load_task_data(replace(spec, unlabeled=True))
        if not data.has_text_b:
            raise UserError("corpus data needs query and passage columns", spec.describe(),
                            "name the passage column with --text-b (or give queries alone with --queries)")
        sources.append({"source": spec.describe(), "role": "data", "spec": to_jsonable(spec),
                        "fingerprint": data.fingerprint(), "kind": data.kind})
        groups = data.column("group") if data.has_groups else None
        for i, (q, p) in enumerate(zip(data.column("text_a"), data.column("text_b"))):
            qkey, pkey = text_key(q), text_key(p)
            # A query stays even when its passages are excluded (and the reverse); the pair does not.
            qi = pid = None
            if qkey in banned:
                excluded_q.add(qkey)
            elif qkey:
                if groups is not None:
                    g = f"{k}:{groups[i]}" if multi else str(groups[i])
                else:
                    known = queries.index.get(qkey)
                    g = query_group[known] if known is not None else q
                qi = add_query(q, qkey, g, g)
            if pkey in banned:
                excluded_p.add(pkey)
            elif pkey:
                pid = pool.add(p, pkey)[0]
            if qi is None or pid is None:
                excluded_pairs += qkey in banned or pkey in banned
                continue
            own = query_own[qi]
            if pid in own:
                counts["duplicate_pairs"] += 1
                continue
            own[pid] = None
            counts["original_pairs"] += 1
            group_passages.setdefault(query_gkey[qi], {})[pid] = None

    for src in extra_passages:
        n = 0
        for text in iter_texts(src, "passage"):
            key = text_key(text)
            if not key:
                continue
            n += 1
            if key in banned:
                excluded_p.add(key)
            elif not pool.add(text, key)[1]:
                counts["duplicate_passages"] += 1
        sources.append({"source": src.describe(), "role": "passages", "texts": n})
    for src in extra_queries:
        n = 0
        for text in iter_texts(src, "query"):
            key = text_key(text)
            if not key:
                continue
            n += 1
            if key in banned:
                excluded_q.add(key)
            elif key in queries.index:
                counts["duplicate_queries"] += 1
            else:
                add_query(text, key, text, ("query", len(queries.texts)))
        sources.append({"source": src.describe(), "role": "queries", "texts": n})
    excluded = {"texts": len(banned), "queries": len(excluded_q), "passages": len(excluded_p),
                "pairs": excluded_pairs}
    return _Inputs(pool, queries, query_group, query_gkey, query_own, group_passages, group_queries, sources, counts,
                   excluded)


# -- retrieval ----------------------------------------------------------------------------------

def _index(passages: list[str], queries: list[str]):
    """A bm25s index of the pool and the queries' token ids in its vocabulary (the empty token dropped)."""
    import bm25s

    tokenizer = bm25s.tokenization.Tokenizer(stopwords="en")
    ids = tokenizer.tokenize(passages, return_as="ids", show_progress=False)
    vocab = tokenizer.get_vocab_dict()
    retriever = bm25s.BM25()
    retriever.index((ids, vocab), show_progress=False)
    del ids
    empty = retriever.vocab_dict.get("")
    query_ids = tokenizer.tokenize(queries, update_vocab=False, return_as="ids", show_progress=False)
    return retriever, [[t for t in q if t != empty] for q in query_ids]


def _random_share(qi: int, k: int, ratio: float) -> int:
    """Random pairs for query ``qi``: the share ``ratio`` of ``k`` per query, spread so the total is exact."""
    return round((qi + 1) * k * ratio) - round(qi * k * ratio)


def _query_rows(qi: int, config: CorpusConfig, inputs: _Inputs, retriever, tokens: list[int],
                rng: np.random.Generator, n_random: int) -> tuple[list[tuple[int, str, float, int]], int]:
    """This query's rows ``(passage id, origin, score, rank)`` and how many new pairs it fell short by."""
    n_pool = len(inputs.passages.texts)
    scores = (retriever.get_scores_from_ids(tokens) if tokens else np.zeros(n_pool, dtype=np.float32))
    group = inputs.query_gkey[qi]
    own = inputs.query_own[qi]
    group_pids = inputs.group_passages.get(group, {})
    # Passages new pairs may not use: the group's candidates and the query's own text.
    blocked = set(group_pids)
    self_pid = inputs.passages.index.get(inputs.queries.keys[qi])
    if self_pid is not None:
        blocked.add(self_pid)

    def rank_of(pid: int) -> int:
        return int(np.count_nonzero(scores > scores[pid])) + 1

    rows: list[tuple[int, str, float, int]] = []
    if config.include_originals:
        rows += [(pid, "original", scores[pid], rank_of(pid)) for pid in own]
    if config.within_group and len(inputs.group_queries.get(group, ())) > 1:
        rows += [(pid, "within_group", scores[pid], rank_of(pid)) for pid in group_pids if pid not in own]
    n_bm25 = config.top_k - n_random
    picked: list[tuple[int, str, float, int]] = []
    if n_bm25 > 0:
        picked = _top(scores, blocked, n_bm25)
    taken = blocked | {pid for pid, *_ in picked}
    chosen = draw_distinct(rng, n_pool, taken, min(n_random, n_pool - len(taken)), lambda i: False)
    randoms = [(pid, "cross_query", scores[pid], rank_of(pid)) for pid in chosen]
    missing = config.top_k - len(picked) - len(randoms)
    return rows + picked + randoms, missing


def _top(scores: np.ndarray, blocked: set[int], n: int) -> list[tuple[int, str, float, int]]:
    """The ``n`` best-scoring passages outside ``blocked`` with a score above 0, best first.

    Equal scores keep pool order (among the candidates); ranks count the pool passages scoring strictly higher.
    """
    size = len(scores)
    m = min(size, n + len(blocked) + 1)
    while True:
        cand = np.argpartition(-scores, m - 1)[:m] if m < size else np.arange(size)
        order = cand[np.lexsort((cand, -scores[cand]))]
        ordered = scores[order]
        picked = []
        for j, pid in enumerate(order.tolist()):
            s = ordered[j]
            if s <= 0:
                break
            if pid in blocked:
                continue
            rank = int(np.searchsorted(-ordered, -s, side="left")) + 1
            picked.append((pid, "bm25", s, rank))
            if len(picked) == n:
                return picked
        # Ran out inside the candidates: done if they reach a zero score or cover the pool.
        if m >= size or (len(ordered) and ordered[-1] <= 0):
            return picked
        m = min(size, 2 * m)


class _Bar:
    """The rich progress bar (queries done, pairs written, pairs/s, elapsed, ETA), updated ~10×/s."""

    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            from bertdistill.ui import progress

            self.bar = progress("pairs", "pairs_s")
            self.bar.start()
            self.task = self.bar.add_task("mining", total=total, pairs=0, pairs_s="-")
            self.start = self.last = time.perf_counter()

    def update(self, done: int, pairs: int) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and done < self.bar.tasks[0].total:
            return
        self.last = now
        rate = pairs / max(now - self.start, 1e-9)
        self.bar.update(self.task, completed=done, pairs=pairs, pairs_s=f"{rate:,.0f}")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
