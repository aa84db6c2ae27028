"""``bertdistill data``: summary of a data set (rows, labels, token lengths, groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c

NAME = "data"
HELP = """Check a data set before training on it: rows, label distribution, token-length
percentiles for a tokenizer, and query groups for ranking data.

Example:
  bertdistill data --data ../shared/datasets/wikiqa/WikiQA-train.txt --columns query,passage,label --task ranking
"""


def command(
    config_file: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML or JSON file with the data fields (path, columns, text_a, ...), like --data-config; "
                         "options given on the command line override it.")] = None,
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, unlabeled: c.Unlabeled = False, limit: c.Limit = None,
    model: c.ModelOpt = None, max_length: c.MaxLength = 512,
    no_tokens: Annotated[bool, typer.Option("--no-tokens", help="Skip token-length percentiles.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the summary as JSON here.")] = None,
    overwrite: c.Overwrite = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.data.sources import load_task_data
    from bertdistill.data.summary import summarize
    from bertdistill.io import check_output_file, mark_written, write_json
    from bertdistill.models import load_tokenizer, resolve_model
    from bertdistill.ui import print_summary

    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, label_column,
                       group_column, task, label_names, unlabeled, limit)
    spec = c.with_config_file(spec, config_file, {k: (v,) for k, v in c.DATA_FIELDS.items()})
    if json_out:
        c.guard_outputs(json_out, *c.spec_inputs(spec), data_config, model)
        check_output_file(json_out, overwrite)
    task_data = load_task_data(spec)
    tokenizer = None if no_tokens else load_tokenizer(resolve_model(model), trust_remote_code)
    summary = summarize(task_data, tokenizer, max_length)
    print_summary(summary)
    if json_out:
        write_json(json_out, summary)
        mark_written(json_out, "data")
