"""``bertdistill predict``: score a data file with a Hugging Face or exported ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.inference import backend_names

NAME = "predict"
HELP = """Score a data file with a Hugging Face model directory or an exported ONNX directory
(same results), in streaming batches. Writes JSONL or TSV with the predicted label and one
probability per label; ranking data also gets <name>.ranked.<ext> with each query's candidates in
ranked order. Prints metrics when the data has gold labels.

Example:
  bertdistill predict --model exports/student --data ../shared/datasets/wikiqa/WikiQA-test.tsv \\
    --text-a Question --text-b Sentence --group-column QuestionID --output preds.jsonl
"""


def command(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Predictions file: .jsonl or .tsv (required).")] = None,
    config_file: c.ConfigFile = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Hugging Face model directory or exported ONNX directory.")] = None,
    backend: Annotated[c.choice("Backend", backend_names()), typer.Option(
        "--backend", help=c.backends_help())] = "auto",
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, unlabeled: c.Unlabeled = False, limit: c.Limit = None,
    max_length: c.MaxLength = 128,
    batch_size: c.BatchSize = 32,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows tokenized and scored per chunk.")] = 10_000,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads (default: all).")] = None,
    device: c.Device = "auto",
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave the text columns out of the output.")] = False,
    overwrite: c.Overwrite = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.predict import PredictConfig, predict_file
    from bertdistill.ui import console, print_table, progress

    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, label_column,
                       group_column, task, label_names, unlabeled, limit)
    config = PredictConfig(model=model, data=spec, output=str(output) if output else "", backend=backend, max_length=max_length,
                           batch_size=c.check_positive(batch_size, "--batch-size"),
                           chunk_rows=c.check_positive(chunk_rows, "--chunk-rows"), threads=threads, device=device,
                           include_text=not no_text, overwrite=overwrite, trust_remote_code=trust_remote_code)
    config = c.with_config_file(config, config_file, {**c.data_fields("data"), "no_text": ("include_text",)})
    c.require(config.output, "--output", "add --output FILE (.jsonl or .tsv)")
    c.guard_outputs([Path(config.output), Path(config.output + ".config.json")], *c.spec_inputs(config.data),
                    data_config, config.model)
    with progress(transient=True) as bar:
        task_id = bar.add_task("scoring", total=None)
        summary = predict_file(config, on_rows=lambda n: bar.advance(task_id, n))
    console.print(f"{summary.rows} rows scored with {summary.backend} on {summary.device} ({summary.examples_per_second} ex/s) "
                  f"→ {summary.output}" + (f" and {summary.ranked_output}" if summary.ranked_output else ""))
    if summary.dropped:
        console.print(f"{summary.dropped} rows with a dropped gold label ({', '.join(spec.drop_labels)}) were "
                      "predicted too; their gold is left empty and they are not in the metrics")
    if summary.metrics:
        print_table([summary.metrics], list(summary.metrics), title=f"metrics ({summary.kind})")
