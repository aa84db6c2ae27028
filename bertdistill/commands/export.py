"""``bertdistill export``: ONNX export with a parity check against PyTorch, optionally int8."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.errors import UserError

NAME = "export"
HELP = """Export a trained classifier to a self-contained ONNX directory (model.onnx, tokenizer,
config.json, export_report.json) that plain onnxruntime can serve. The export is checked against
PyTorch on real rows (--data) or generated inputs; if the fp32 logits differ by more than the tolerance
nothing is written. --int8 tries int8 recipes in turn (dynamic, static calibrated on --data rows, then the
head and top layers kept in fp32) until one agrees with PyTorch on at least 99% of argmaxes (for a score
model: of pair orders) on real data. When none does, model.onnx (which passed) is still written, one
line says why int8 is missing, and the exit status is 3.

Example:
  bertdistill export --model runs/student --output exports/student --int8 \\
    --data ../shared/datasets/wikiqa/WikiQA-test.tsv --text-a Question --text-b Sentence
"""


def command(
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Directory to create (model.onnx, tokenizer, report); required.")] = None,
    config_file: c.ConfigFile = None,
    model: c.ModelOpt = None,
    int8: Annotated[bool, typer.Option("--int8", help="Also write model_quantized.onnx (int8; the first recipe that passes parity).")] = False,
    int8_scales: Annotated[c.choice("Int8Scales", ("channel", "tensor")), typer.Option(
        "--int8-scales",
        help="channel: one int8 scale per output channel (closer to fp32); tensor: one per weight.")] = "channel",
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="Real examples for the parity check (default: generated inputs).",
        rich_help_panel=c.DATA_PANEL)] = None,
    dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    group_column: c.GroupColumn = None, task: c.Task = None,
    parity_examples: Annotated[int, typer.Option("--parity-examples", help="Examples in the parity check.")] = 256,
    max_length: c.MaxLength = 128,
    batch_size: c.BatchSize = 32,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (17 or higher).")] = 17,
    exporter: Annotated[c.choice("Exporter", ("legacy", "dynamo")), typer.Option("--exporter", help="legacy (TorchScript) or dynamo (needs onnxscript).")] = "legacy",
    fp32_tolerance: Annotated[float, typer.Option(
        "--fp32-tolerance", help="Maximum absolute logit difference allowed for model.onnx.")] = 1e-4,
    int8_min_agreement: Annotated[float, typer.Option(
        "--int8-min-agreement", help="Minimum argmax agreement of model_quantized.onnx on real data.")] = 0.99,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads (default: all).")] = None,
    device: Annotated[str, typer.Option(
        "--device", help="Where the parity check runs the ONNX model: auto, cpu, cuda or cuda:N (CUDA needs "
        "onnxruntime-gpu: pip install 'bertdistill[gpu]').")] = "auto",
    allow_untrained_head: Annotated[bool, typer.Option(
        "--allow-untrained-head", help="Export a base encoder with a random head (speed tests only).")] = False,
    overwrite: c.Overwrite = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.export.exporter import ExportConfig, export_model, summary_rows
    from bertdistill.ui import console, print_table

    spec = None
    if data or dataset or data_config:
        spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b,
                           group_column=group_column, task=task,
                           unlabeled=True)
    import math

    if not math.isfinite(fp32_tolerance) or fp32_tolerance < 0:
        raise UserError(f"--fp32-tolerance {fp32_tolerance} must be a finite number, 0 or more", None,
                        "use e.g. --fp32-tolerance 1e-4")
    if not math.isfinite(int8_min_agreement) or not 0 <= int8_min_agreement <= 1:
        raise UserError(f"--int8-min-agreement {int8_min_agreement} must be between 0 and 1", None,
                        "use e.g. --int8-min-agreement 0.99")
    c.guard_outputs(output, *c.spec_inputs(spec), data_config, model)
    if int8_scales not in ("channel", "tensor"):
        raise UserError(f"unknown --int8-scales {int8_scales!r}", None, "use --int8-scales channel or tensor")
    config = ExportConfig(model=model, output=str(output) if output else "", int8=int8,
                          int8_per_channel=int8_scales == "channel",
                          opset=opset, exporter=exporter, data=spec,
                          parity_examples=c.check_positive(parity_examples, "--parity-examples"),
                          max_length=max_length, batch_size=c.check_positive(batch_size, "--batch-size"),
                          fp32_max_abs_diff=fp32_tolerance, int8_min_agreement=int8_min_agreement,
                          threads=threads, device=device, overwrite=overwrite, allow_untrained_head=allow_untrained_head,
                          trust_remote_code=trust_remote_code)
    data_options = ("data", "dataset", "subset", "split", "data_config", "columns", "text_a", "text_b",
                    "group_column", "task")
    config = c.with_config_file(config, config_file, {
        **{name: ("data",) for name in data_options}, "int8_scales": ("int8_per_channel",),
        "fp32_tolerance": ("fp32_max_abs_diff",)})
    c.require(config.output, "--output", "add --output DIR (the ONNX directory to create)")
    output = config.output
    report = export_model(config)
    rows = summary_rows(report)
    agreement = ["order_agreement"] if any("order_agreement" in r for r in rows) else []
    print_table(rows, ["model", "size_mb", "n", "max_abs_diff", "argmax_agreement", *agreement, "passed"],
                title=f"parity on {report.parity_source} inputs ({report.exporter} exporter, opset {report.opset})")
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(f"exported to {output}")
    if report.failed:
        from bertdistill.errors import RunFailed

        raise RunFailed("; ".join(f"{name} not written: {why}" for name, why in report.failed.items()),
                        str(output), "the other models were written and checked; lower --int8-min-agreement to "
                                     "accept int8, or serve another backend")
