"""What a stage-1 corpus is, shared by its two strategies (random pairs in ``data.corpus``, BM25 mining in
``data.mining``): the config, the report, the sidecar's name, and drawing distinct pool items."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bertdistill.data.sources import DataSpec


@dataclass
class CorpusConfig:
    sources: list[DataSpec] = field(default_factory=list)
    output: str = "corpus.jsonl"
    negatives_per_query: int = 4
    """New cross-query pairs per distinct query."""
    include_originals: bool = True
    within_group: bool = True
    """Also pair each query text with its group's candidates it lacks (groups with several texts)."""
    seed: int = 0
    overwrite: bool = False
    mine: str = "none"
    """none: random cross-query pairs (the fields above); bm25: mined pairs (the fields below)."""
    queries: list[str] = field(default_factory=list)
    """More query sources, ``FILE[:COLUMN[,COLUMN]]`` (bm25 only; see ``bertdistill.data.texts``)."""
    passages: list[str] = field(default_factory=list)
    """More pool passages, ``FILE[:COLUMN[,COLUMN]]`` (bm25 only)."""
    exclude: list[str] = field(default_factory=list)
    """Evaluation/test files, ``FILE[:COLUMN[,COLUMN]]``: none of their texts enters the corpus (bm25 only)."""
    top_k: int = 20
    """New pairs per query (bm25 only): BM25's best passages, with ``random_ratio`` of them random."""
    random_ratio: float = 0.0
    """Share of the new pairs drawn at random from other queries' passages (bm25 only), 0..1."""
    show_progress: bool = True


@dataclass
class CorpusReport:
    output: str
    sidecar: str
    sources: list[dict]
    original_pairs: int
    duplicate_originals: int
    queries: int
    passages: int
    new_within_group: int
    new_cross_query: int
    queries_short: int
    """Queries that got fewer than negatives_per_query new passages (too few other passages)."""
    originals_written: int
    total_pairs: int
    mine: str = "none"
    new_bm25: int = 0
    origins: dict[str, int] = field(default_factory=dict)
    """Rows written per origin."""
    excluded: dict[str, int] = field(default_factory=dict)
    """Distinct normalized texts of the exclude files, and the queries, passages and original pairs removed."""
    duplicates: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        if self.mine != "none":
            ex = self.excluded
            parts = ", ".join(f"{n:,} {origin}" for origin, n in self.origins.items() if n)
            excluded = (f"; excluded {ex['queries']:,} queries, {ex['passages']:,} passages and {ex['pairs']:,} "
                        f"original pairs matching {ex['texts']:,} texts of --exclude files") if ex.get("texts") else ""
            return (f"corpus ({self.mine}): {self.total_pairs:,} pairs ({parts}) for {self.queries:,} queries over "
                    f"a pool of {self.passages:,} passages in {self.seconds:.1f}s{excluded}; "
                    f"{self.queries_short:,} queries got fewer than top-k new pairs")
        kept = self.originals_written
        factor = self.total_pairs / max(self.original_pairs, 1)
        return (f"corpus: {self.original_pairs} original pairs ({self.queries} queries, {self.passages} passages) "
                f"→ {self.total_pairs} pairs ({kept} original + {self.new_cross_query} cross-query + "
                f"{self.new_within_group} within-group), {factor:.1f}× the original")


def sidecar_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".meta.json")



def draw_distinct(rng: np.random.Generator, pool_size: int, excluded: set[int], k: int, is_taken) -> list[int]:
    """Up to ``k`` distinct pool indices outside ``excluded`` and not taken, reproducible from ``rng``."""
    if k <= 0:
        return []
    chosen: list[int] = []
    seen = set(excluded)
    # Rejection sampling is fast while the free part of the pool is large; fall back to a full
    # permutation when it is small, so the loop always ends.
    attempts = 0
    while len(chosen) < k and attempts < 8 * k + 32:
        i = int(rng.integers(pool_size))
        attempts += 1
        if i in seen:
            continue
        seen.add(i)
        if not is_taken(i):
            chosen.append(i)
    if len(chosen) < k:
        for i in rng.permutation(pool_size).tolist():
            if len(chosen) == k:
                break
            if i not in seen:
                seen.add(i)
                if not is_taken(i):
                    chosen.append(i)
    return chosen
