"""Enlarge a small QA corpus for stage-1 distillation: new (query, passage) pairs for teachers to label.

Every distinct query is paired with ``negatives_per_query`` passages drawn at random from *other*
queries' candidates. Where the data has groups (a query id), "other" means other groups: a group's
own candidates are already its pairs. When a group holds several query texts (paraphrases under one
id), each text is also paired with the group's candidates it was not paired with ("within-group"
pairs). New pairs never repeat an original pair or each other; the draw is reproducible from the seed.

Output: a JSON-lines file of unlabeled pairs ``{"query", "passage", "group", "origin"}`` (origin:
original, within_group or cross_query), written atomically, and a sidecar ``<output>.meta.json`` with
the sources, their fingerprints, the config and the counts. Label it with ``bertdistill label``.

With ``mine="bm25"`` the new pairs are BM25-retrieved instead (``bertdistill.data.mining``): more
query and passage sources, exclusion of evaluation texts, ``score``/``rank`` columns and origin bm25.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bertdistill.data.corpus_spec import CorpusConfig, CorpusReport, draw_distinct, sidecar_path  # noqa: F401
from bertdistill.data.mining import mine_corpus
from bertdistill.data.sources import DataSpec, load_task_data
from bertdistill.errors import UserError
from bertdistill.io import atomic_file, file_sha256, check_output_dir, mark_written, to_jsonable, write_json


def build_corpus(config: CorpusConfig) -> CorpusReport:
    """Read the sources, add new pairs, write the corpus file and its sidecar; return the counts."""
    if config.mine != "none":
        return mine_corpus(config)
    mining_only = [opt for opt, used in (("--queries", config.queries), ("--passages", config.passages),
                                         ("--exclude", config.exclude)) if used]
    if mining_only:
        raise UserError(f"{mining_only[0]} needs --mine bm25", None,
                        "add --mine bm25 (with --random-ratio 1 for random pairs only)")
    if not config.sources:
        raise UserError("no data given", None, "pass --data FILE (repeat it for several files)")
    if config.negatives_per_query < 0:
        raise UserError(f"--negatives-per-query {config.negatives_per_query} is negative", None,
                        "use 0 or more")
    output = check_output_dir(config.output, config.overwrite)
    sidecar = check_output_dir(sidecar_path(output), config.overwrite)

    # Distinct pairs in first-seen order; a query text belongs to the group it was first seen in.
    pair_index: dict[tuple[str, str], None] = {}
    pair_group: list[str] = []
    query_group: dict[str, str] = {}
    group_passages: dict[str, dict[str, None]] = {}
    group_queries: dict[str, dict[str, None]] = {}
    passages: dict[str, None] = {}
    sources, duplicates = [], 0
    multi = len(config.sources) > 1
    for k, spec in enumerate(config.sources):
        spec = _unlabeled(spec)
        data = load_task_data(spec)
        if not data.has_text_b:
            raise UserError("corpus data needs query and passage columns", spec.describe(),
                            "name the passage column with --text-b")
        sources.append({"source": spec.describe(), "spec": to_jsonable(spec), "fingerprint": data.fingerprint(),
                        "kind": data.kind})
        text_a, text_b = data.column("text_a"), data.column("text_b")
        groups = data.column("group") if data.has_groups else None
        for i, (q, p) in enumerate(zip(text_a, text_b)):
            if groups is not None:
                g = f"{k}:{groups[i]}" if multi else groups[i]
            else:
                g = query_group.get(q, q)
            query_group.setdefault(q, g)
            if (q, p) in pair_index:
                duplicates += 1
                continue
            pair_index[(q, p)] = None
            pair_group.append(g)
            group_passages.setdefault(g, {})[p] = None
            group_queries.setdefault(g, {})[q] = None
            passages[p] = None

    originals = list(pair_index)
    new_pairs: list[tuple[str, str, str, str]] = []
    taken = dict(pair_index)
    if config.within_group:
        for g, queries in group_queries.items():
            if len(queries) < 2:
                continue
            for q in queries:
                for p in group_passages[g]:
                    if (q, p) not in taken:
                        taken[(q, p)] = None
                        new_pairs.append((q, p, g, "within_group"))
    within = len(new_pairs)

    pool = list(passages)
    pool_index = {p: i for i, p in enumerate(pool)}
    rng = np.random.default_rng(config.seed)
    short = 0
    k_new = config.negatives_per_query
    for q, g in query_group.items():
        if k_new == 0:
            break
        # Excluded: the query's group's own candidates and anything already paired with this query.
        excluded = {pool_index[p] for p in group_passages[g]}
        available = len(pool) - len(excluded)
        chosen = draw_distinct(rng, len(pool), excluded, min(k_new, available), lambda i: (q, pool[i]) in taken)
        if len(chosen) < k_new:
            short += 1
        for i in chosen:
            taken[(q, pool[i])] = None
            new_pairs.append((q, pool[i], g, "cross_query"))
    cross = len(new_pairs) - within

    rows = ([(q, p, pair_group[i], "original") for i, (q, p) in enumerate(originals)]
            if config.include_originals else []) + new_pairs
    if not rows:
        raise UserError("the corpus would be empty", None,
                        "use --include-originals or --negatives-per-query 1 or more")
    _write_jsonl(output, rows)
    report = CorpusReport(str(output), str(sidecar), sources, len(originals), duplicates, len(query_group),
                          len(pool), within, cross, short,
                          len(originals) if config.include_originals else 0, len(rows))
    write_json(sidecar, {"format": "bertdistill-corpus", "version": 1, "config": to_jsonable(config),
                         "report": to_jsonable(report), "output_sha256": _sha256(output)})
    mark_written(output, 'corpus')
    mark_written(sidecar, 'corpus')
    return report


def _unlabeled(spec: DataSpec) -> DataSpec:
    from dataclasses import replace

    return replace(spec, unlabeled=True)


def _write_jsonl(path: Path, rows) -> None:
    with atomic_file(path) as fh:
        for q, p, g, origin in rows:
            fh.write(json.dumps({"query": q, "passage": p, "group": g, "origin": origin}, ensure_ascii=False) + "\n")


def _sha256(path: Path) -> str:
    return file_sha256(path)
