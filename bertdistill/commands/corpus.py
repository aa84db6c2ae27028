"""``bertdistill corpus``: build an unlabeled query–passage corpus for stage 1, or report how hard a
labeled one is for the teachers (``--stats``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c

NAME = "corpus"
HELP = """Build an unlabeled pair corpus for stage-1 distillation from one or more files, then let the
teachers label it with bertdistill label. Writes a JSON-lines file (query, passage, group, origin) and
a <output>.meta.json sidecar with the config and the counts; the result is reproducible from --seed.

Random (default): every query is also paired with --negatives-per-query passages drawn from other
queries (other groups, with --group-column); queries sharing a group get each other's candidates.

--mine bm25: every query (from --data and --queries) gets --top-k new pairs with the best BM25
passages of the pool (the --data passages and --passages), skipping its own group's passages;
--random-ratio R of them are drawn at random instead (origin cross_query). Rows also carry score
and rank (the passage's BM25 score and rank for the query). --exclude FILE keeps every query and
passage of an evaluation file out (compared lowercased, whitespace collapsed, end punctuation
stripped, and ignoring spaces and punctuation inside, so tokenized and raw copies match; the count
removed is reported). Equal texts and repeated (query, passage) pairs count once.

Sources of --queries, --passages and --exclude are FILE, FILE:COLUMN[,COLUMN] or FILE:N[,N] (repeat
the option for several files): FILE:NAME is a column of a file with a header (.tsv/.txt tab, .csv)
or a field of .jsonl/.json/.parquet records; FILE:N the N-th field (from 1) of a headerless
.txt/.tsv/.csv (WikiQA-train.txt:2 = its sentences). FILE alone: a .txt is one text per line;
otherwise queries take the question/query/sentence1 column, passages the passage/sentence/sentence2
column, --exclude both (an excluded headerless .txt: every field that is not a number).

--stats CORPUS --labels STORE: per origin, the pairs, mean entropy of the teachers' averaged
P(positive), teacher disagreement (std of P(positive) across teachers, share of differing argmax)
and mean P(positive); --json FILE writes them too.

Examples:
  W=../shared/datasets/wikiqa
  bertdistill corpus --data $W/WikiQA-train.txt --columns query,passage,label --task ranking
      --mine bm25 --top-k 8 --passages ../shared/datasets/glue/QNLI/dev.tsv
      --exclude $W/WikiQA-dev.tsv --exclude $W/WikiQA-test.tsv --output corpus/wikiqa-bm25.jsonl
  bertdistill label --teacher models/teacher --data corpus/wikiqa-bm25.jsonl --unlabeled --output labels/bm25
  bertdistill corpus --stats corpus/wikiqa-bm25.jsonl --labels labels/bm25 --json corpus/bm25-stats.json
"""

MINE_PANEL = "Mining (--mine bm25)"
TextSources = Optional[list[str]]


def command(
    config_file: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML or JSON file with the corpus settings (the config entry of a corpus's "
                         ".meta.json is one); options given on the command line override it.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Corpus file to write (.jsonl).")] = None,
    data: Annotated[Optional[list[Path]], typer.Option(
        "--data", help="Local data file; repeat for several (they share the column options).",
        rich_help_panel=c.DATA_PANEL)] = None,
    dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, limit: c.Limit = None,
    negatives_per_query: Annotated[Optional[int], typer.Option(
        "--negatives-per-query", "-k", help="Random mode: new pairs per query with passages of other queries "
                                            "(default 4).")] = None,
    include_originals: Annotated[bool, typer.Option(
        "--include-originals/--no-include-originals", help="Keep the original pairs in the corpus.")] = True,
    within_group: Annotated[bool, typer.Option(
        "--within-group/--no-within-group", help="Pair query texts of one group with all its candidates.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the draw.")] = 0,
    mine: Annotated[c.choice("Mine", ("none", "bm25")), typer.Option("--mine", help="none (random pairs) or bm25.", rich_help_panel=MINE_PANEL)] = "none",
    queries: Annotated[TextSources, typer.Option(
        "--queries", help="More queries: FILE or FILE:COLUMN[,COLUMN]; repeat for several.",
        rich_help_panel=MINE_PANEL)] = None,
    passages: Annotated[TextSources, typer.Option(
        "--passages", help="More pool passages: FILE, FILE:COLUMN[,COLUMN] or FILE:N (N-th field of a headerless "
                           "file; a .txt without :N is one passage per line); repeat for several.", rich_help_panel=MINE_PANEL)] = None,
    exclude: Annotated[TextSources, typer.Option(
        "--exclude", help="Evaluation/test file whose queries and passages must stay out: FILE or "
                          "FILE:COLUMN[,COLUMN]; repeat for several.", rich_help_panel=MINE_PANEL)] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="New pairs per query.", rich_help_panel=MINE_PANEL)] = 20,
    random_ratio: Annotated[float, typer.Option(
        "--random-ratio", help="Share of the new pairs drawn at random instead of by BM25 (0..1).",
        rich_help_panel=MINE_PANEL)] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    stats: Annotated[Optional[Path], typer.Option(
        "--stats", help="Report how hard this labeled corpus is for the teachers (needs --labels).",
        rich_help_panel="Statistics")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", help="Label store of the --stats corpus (bertdistill label).", rich_help_panel="Statistics")] = None,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Also write the --stats table as JSON here.", rich_help_panel="Statistics")] = None,
    positive_label: Annotated[Optional[str], typer.Option(
        "--positive-label", help="Label whose probability --stats reports (default: 1 if a label is so named, else "
                                "the last label).",
        rich_help_panel="Statistics")] = None,
    overwrite: c.Overwrite = False,
) -> None:
    from bertdistill.errors import UserError
    from bertdistill.ui import console

    if stats is not None:
        from bertdistill.data.hardness import CorpusStatsConfig, corpus_stats

        if output is not None or data:
            raise UserError("--stats reads a corpus; it does not build one", None,
                            "leave out --output and --data, or leave out --stats")
        if labels is None:
            raise UserError("--stats needs the corpus's label store", None, "add --labels STORE (from bertdistill label)")
        corpus_stats(CorpusStatsConfig(corpus=str(stats), labels=str(labels), positive_label=positive_label,
                                       json_out=str(json_out) if json_out else None)).print()
        return

    from bertdistill.data.corpus import CorpusConfig, build_corpus
    from bertdistill.io import input_paths

    mining = mine != "none"
    if mining and negatives_per_query is not None:
        raise UserError("--negatives-per-query is for random corpora", None,
                        "with --mine bm25 use --top-k (and --random-ratio for random pairs)")
    paths: list[Optional[Path]] = list(data or [])
    if dataset or (not paths and (data_config or not mining)):
        paths.append(None)  # the hub data set (or the data config's own source)
    specs = [c.data_spec(p, dataset if p is None else None, subset, split, data_config, columns, text_a, text_b,
                         label_column, group_column, task, label_names, True, limit) for p in paths]
    config = CorpusConfig(
        sources=specs, output=str(output) if output else "", negatives_per_query=4 if negatives_per_query is None else negatives_per_query,
        include_originals=include_originals, within_group=within_group, seed=seed, overwrite=overwrite,
        mine=mine, queries=list(queries or []), passages=list(passages or []), exclude=list(exclude or []),
        top_k=top_k, random_ratio=random_ratio, show_progress=not quiet)
    data_options = ("data", "dataset", "subset", "split", "data_config", "columns", "text_a", "text_b",
                    "label_column", "group_column", "task", "label_names", "limit")
    config = c.with_config_file(config, config_file, {**{name: ("sources",) for name in data_options},
                                                       "quiet": ("show_progress",)})
    c.require(config.output, "--output", "add --output FILE.jsonl")
    c.guard_outputs([Path(config.output), Path(config.output + ".meta.json")],
                    *[p for s in config.sources for p in c.spec_inputs(s)], data_config,
                    [p for p in input_paths(list(config.queries) + list(config.passages) + list(config.exclude))
                     if p.is_file()])
    report = build_corpus(config)
    console.print(report.summary())
    console.print(f"wrote {report.output} and {report.sidecar}")
