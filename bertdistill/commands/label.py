"""``bertdistill label``: teachers' logits (and [CLS] states for PKD) streamed to a label store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.inference import backend_names

NAME = "label"
HELP = """Run one or more teachers over a data set once and store their logits (float32) and, with
--hidden-layers, their [CLS] states (float16) for PKD, in a memory-mapped label store that every
student reuses. Written shard by shard: an interrupted run continues when the same command is run
again. On labeled data each teacher's metrics are printed and stored.

--teacher takes PATH or NAME=PATH (repeat it). --hidden-layers: none, all, a list such as 1,3,5, or
skip / last with --student-layers M (the teacher layers PKD-skip / PKD-last match to an M-layer student).

Example:
  bertdistill label --teacher big=models/teacher-a --teacher models/teacher-b
      --data ../shared/datasets/wikiqa/WikiQA-train.txt --columns query,passage,label --task ranking
      --hidden-layers skip --student-layers 3 --output labels/wikiqa-train
"""


def command(
    teacher: Annotated[Optional[list[str]], typer.Option(
        "--teacher", help="Teacher directory, PATH or NAME=PATH; repeat for several (required).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Label store directory to create (required).")] = None,
    config_file: c.ConfigFile = None,
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, unlabeled: c.Unlabeled = False, limit: c.Limit = None,
    max_length: c.MaxLength = 128, batch_size: c.BatchSize = 32,
    hidden_layers: Annotated[str, typer.Option(
        "--hidden-layers", help="[CLS] layers to store: none, skip, last, all, or a list like 1,3,5.")] = "none",
    student_layers: Annotated[Optional[int], typer.Option(
        "--student-layers", help="Student depth M for --hidden-layers skip/last.")] = None,
    backend: Annotated[c.choice("Backend", backend_names()), typer.Option(
        "--backend", help=c.backends_help())] = "torch",
    shard_rows: Annotated[int, typer.Option("--shard-rows", help="Rows per shard (the unit of resuming).")] = 10_000,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for inference.")] = None,
    device: c.Device = "auto",
    overwrite: c.Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or tables.")] = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.teachers.label import LabelConfig, label

    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, label_column,
                       group_column, task, label_names, unlabeled, limit)
    config = LabelConfig(teachers=list(teacher or []), data=spec, output=str(output) if output else "", max_length=max_length,
                      batch_size=batch_size, hidden_layers=hidden_layers, student_layers=student_layers,
                      backend=backend, shard_rows=shard_rows, threads=threads, device=device, overwrite=overwrite,
                      quiet=quiet, trust_remote_code=trust_remote_code)
    config = c.with_config_file(config, config_file, {**c.data_fields("data"), "teacher": ("teachers",)})
    c.require(config.teachers, "--teacher", "add --teacher DIR (repeat it for several teachers)")
    c.require(config.output, "--output", "add --output DIR (the label store to create)")
    c.guard_outputs([Path(config.output), Path(config.output + ".partial")], *c.spec_inputs(config.data), data_config,
                    list(config.teachers))
    with c.stopped_as_one_line():
        label(config)
