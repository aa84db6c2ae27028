"""``bertdistill corpus``: enlarge a small QA corpus with new query–passage pairs for teachers to label."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c

NAME = "corpus"
HELP = """Build an unlabeled pair corpus for stage-1 distillation from one or more files: every query is
also paired with passages drawn from other queries (other groups, with --group-column), and queries
sharing a group get each other's candidates. No new pair repeats an original or another new pair;
the draw is reproducible from --seed. Writes a JSON-lines file (query, passage, group, origin) and a
<output>.meta.json sidecar; then let the teachers label it with bertdistill label.

Example:
  bertdistill corpus --data ../shared/datasets/wikiqa/WikiQA-train.txt --columns query,passage,label
      --negatives-per-query 8 --seed 0 --output corpus/wikiqa-x9.jsonl
  bertdistill label --teacher models/teacher --data corpus/wikiqa-x9.jsonl --unlabeled --output labels/x9
"""


def command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Corpus file to write (.jsonl).")],
    data: Annotated[Optional[list[Path]], typer.Option(
        "--data", help="Local data file; repeat for several (they share the column options).",
        rich_help_panel=c.DATA_PANEL)] = None,
    dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, limit: c.Limit = None,
    negatives_per_query: Annotated[int, typer.Option(
        "--negatives-per-query", "-k", help="New pairs per query with passages of other queries.")] = 4,
    include_originals: Annotated[bool, typer.Option(
        "--include-originals/--no-include-originals", help="Keep the original pairs in the corpus.")] = True,
    within_group: Annotated[bool, typer.Option(
        "--within-group/--no-within-group", help="Pair query texts of one group with all its candidates.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the draw.")] = 0,
    overwrite: c.Overwrite = False,
) -> None:
    from bertdistill.data.corpus import CorpusConfig, build_corpus
    from bertdistill.ui import console

    paths: list[Optional[Path]] = list(data or [])
    if dataset or not paths:
        paths.append(None)  # the hub data set (or the data config's own source)
    specs = [c.data_spec(p, dataset if p is None else None, subset, split, data_config, columns, text_a, text_b,
                         label_column, group_column, task, label_names, True, limit) for p in paths]
    report = build_corpus(CorpusConfig(sources=specs, output=str(output), negatives_per_query=negatives_per_query,
                                       include_originals=include_originals, within_group=within_group, seed=seed,
                                       overwrite=overwrite))
    console.print(report.summary())
    console.print(f"wrote {report.output} and {report.sidecar}")
