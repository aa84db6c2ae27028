"""How hard a labeled stage-1 corpus is for its teachers, per origin (``bertdistill corpus --stats``).

For each row, with ``p_t`` teacher t's softmax and ``pos`` the positive class:

* entropy: H(mean_t p_t) in bits, the entropy of the averaged distribution (for two classes, of the
  averaged P(positive)); near 0 where the teachers are certain, 1 bit at 50/50;
* teacher std: the standard deviation over teachers of p_t[pos] (0 with one teacher);
* argmax disagreement: 1 where the teachers' argmax classes differ;
* P(positive): mean_t p_t[pos]; "uncertain" counts rows with 0.1 < P(positive) < 0.9.

Each is averaged over the rows of one origin (the corpus's ``origin`` column; "all" when it has none),
and over all rows. The corpus must be the data the store was labeled from (content hash checked).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bertdistill.errors import UserError


@dataclass
class CorpusStatsConfig:
    corpus: str
    """The corpus file (.jsonl from ``bertdistill corpus``, or any data file ``label`` read)."""
    labels: str
    """Its label store (``bertdistill label``)."""
    positive_label: str | None = None
    """Label name whose probability is P(positive); default ``1`` when present, else the last label."""
    json_out: str | None = None


@dataclass
class OriginStats:
    origin: str
    pairs: int
    mean_entropy: float
    teacher_std: float
    argmax_disagreement: float
    mean_p_positive: float
    uncertain: float
    mean_bm25_rank: float | None = None


@dataclass
class CorpusStats:
    corpus: str
    labels: str
    teachers: list[str]
    positive_label: str
    origins: list[OriginStats] = field(default_factory=list)

    # Table headings for the OriginStats fields.
    HEADINGS = {"origin": "origin", "pairs": "pairs", "mean_entropy": "entropy", "teacher_std": "t-std",
                "argmax_disagreement": "differ", "mean_p_positive": "P(pos)", "uncertain": "unsure",
                "mean_bm25_rank": "rank"}

    def print(self) -> None:
        from dataclasses import asdict

        from rich.table import Table

        from bertdistill.ui import console

        table = Table(title=f"{self.corpus}: {len(self.teachers)} teachers ({', '.join(self.teachers)}), "
                            f"P(pos) = P({self.positive_label})",
                      caption="entropy of the averaged teacher distribution (bits); t-std: std of P(pos) across "
                              "teachers; differ: share of pairs whose teachers' argmax differ; unsure: share with "
                              "0.1 < P(pos) < 0.9; rank: mean BM25 rank")
        for key, heading in self.HEADINGS.items():
            table.add_column(heading, justify="left" if key == "origin" else "right", no_wrap=key == "origin")
        for o in self.origins:
            table.add_row(*[_fmt(v) for v in asdict(o).values()])
        console.print(table)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def corpus_stats(config: CorpusStatsConfig) -> CorpusStats:
    """Per-origin teacher entropy and disagreement of a labeled corpus; also written to ``json_out``."""
    from bertdistill.data.sources import DataSpec, load_task_data
    from bertdistill.io import to_jsonable, write_json
    from bertdistill.teachers.store import LabelStore

    store = LabelStore.open(config.labels)
    data = load_task_data(DataSpec(path=config.corpus, unlabeled=True))
    store.check_data(data, "corpus")
    names = store.label_names
    pos = _positive_index(names, config.positive_label, config.labels)
    origins, ranks = _origin_columns(config.corpus, store.num_rows)
    probs = np.stack([_softmax(store.logits(t)) for t in range(len(store.teacher_names))])  # (T, N, C)
    per_row = _row_measures(probs, pos)

    groups = list(dict.fromkeys(origins.tolist()))
    selections = [(g, origins == g) for g in groups]
    if len(groups) > 1:
        selections.append(("all", np.ones(len(origins), dtype=bool)))
    result = CorpusStats(config.corpus, config.labels, store.teacher_names, names[pos])
    for name, mask in selections:
        values = {k: float(v[mask].mean()) for k, v in per_row.items()}
        rank = float(ranks[mask].mean()) if ranks is not None else None
        result.origins.append(OriginStats(name, int(mask.sum()), mean_bm25_rank=rank, **values))
    if config.json_out:
        write_json(config.json_out, {"config": to_jsonable(config), "stats": to_jsonable(result)})
    return result


def _positive_index(names: list[str], given: str | None, where: str) -> int:
    if given is not None:
        if given not in names:
            raise UserError(f"label {given!r} is not one of the store's labels {names}", where,
                            f"use --positive-label with one of: {', '.join(names)}")
        return names.index(given)
    return names.index("1") if "1" in names else len(names) - 1


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _row_measures(probs: np.ndarray, pos: int) -> dict[str, np.ndarray]:
    """Per-row measures from the (teachers, rows, classes) probabilities."""
    mean = probs.mean(axis=0)
    entropy = -(np.where(mean > 0, mean * np.log2(np.clip(mean, 1e-300, None)), 0.0)).sum(axis=1)
    argmax = probs.argmax(axis=2)
    p_pos = mean[:, pos]
    return {"mean_entropy": entropy, "teacher_std": probs[:, :, pos].std(axis=0),
            "argmax_disagreement": (argmax != argmax[:1]).any(axis=0).astype(np.float64),
            "mean_p_positive": p_pos, "uncertain": ((p_pos > 0.1) & (p_pos < 0.9)).astype(np.float64)}


def _origin_columns(corpus: str, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The corpus's origin column ("all" without one) and its rank column (None without one)."""
    import json
    from pathlib import Path

    origins: list[str] = []
    ranks: list[float] = []
    has_rank = True
    if Path(corpus).suffix.lower() == ".jsonl":
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                origins.append(str(row.get("origin", "all")))
                rank = row.get("rank")
                has_rank = has_rank and isinstance(rank, (int, float))
                ranks.append(rank if has_rank else 0.0)
    else:
        origins, has_rank = ["all"] * rows, False
    if len(origins) != rows:
        raise UserError(f"the corpus has {len(origins)} rows, the label store {rows}", corpus,
                        "pass the corpus the store was labeled from")
    return np.asarray(origins, dtype=object), (np.asarray(ranks, dtype=np.float64) if has_rank else None)
