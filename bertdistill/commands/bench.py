"""``bertdistill bench``: accuracy and speed of teachers and students side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.inference import backend_names

NAME = "bench"
HELP = """Measure teachers and students in one run on the same data and machine: task metrics
(accuracy, F1; MAP/MRR per query for ranking data), latency p50/p95 at batch 1, throughput at a larger
batch, parameters, size on disk, and speedup and metric retention against a baseline (the first model).
Models are timed interleaved with the thread count fixed. Each --model is [NAME=]PATH[:BACKEND] with
BACKEND one of """ + ", ".join(backend_names()[1:]) + """ (auto: onnx for an exported ONNX directory).

Example:
  bertdistill bench --model teacher=runs/teacher --model student=runs/student \\
    --model student-int8=exports/student:onnx-int8 \\
    --data ../shared/datasets/wikiqa/WikiQA-test.tsv --group-column QuestionID \\
    --threads 2 --json bench.json --markdown bench.md --plot bench.png
"""

SPEED = "Speed"
OUTPUT = "Output"


def command(
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="[NAME=]PATH[:BACKEND]; repeat once per model (required). The first is the baseline "
                        "unless --baseline.")] = None,
    config_file: c.ConfigFile = None,
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, limit: c.Limit = None,
    batch_sizes: Annotated[str, typer.Option(
        "--batch-sizes", help="Comma-separated batch sizes to time; latency at the smallest, speedup at the largest.",
        rich_help_panel=SPEED)] = "1,32",
    threads: Annotated[Optional[int], typer.Option(
        "--threads", help="Threads for every model (torch and ONNX Runtime); default: torch's current count.",
        rich_help_panel=SPEED)] = None,
    device: Annotated[str, typer.Option(
        "--device", help="auto, cpu, cuda or cuda:N for every model (ONNX on CUDA needs onnxruntime-gpu).",
        rich_help_panel=SPEED)] = "auto",
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls per model and batch size.",
                                        rich_help_panel=SPEED)] = 2,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed calls per model and batch size.",
                                         rich_help_panel=SPEED)] = 20,
    seq_len: Annotated[Optional[int], typer.Option(
        "--seq-len", help="Time every example at exactly N tokens instead of the data's real lengths.",
        rich_help_panel=SPEED)] = None,
    max_length: c.MaxLength = 128,
    metric_batch_size: Annotated[int, typer.Option("--metric-batch-size",
                                                   help="Batch size of the (untimed) metrics pass.")] = 64,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="NAME of the model ratios are relative to.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the timing sample and of fresh classifier heads.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full result as JSON here.",
                                                     rich_help_panel=OUTPUT)] = None,
    markdown_out: Annotated[Optional[Path], typer.Option("--markdown", help="Write a Markdown table here.",
                                                         rich_help_panel=OUTPUT)] = None,
    plot_out: Annotated[Optional[Path], typer.Option(
        "--plot", help="Write a speed–quality chart (PNG; needs matplotlib).", rich_help_panel=OUTPUT)] = None,
    overwrite: c.Overwrite = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.bench import BenchConfig, check_config, print_result, require_matplotlib, run_bench, write_outputs
    from bertdistill.errors import UserError
    from bertdistill.io import check_output_file

    try:
        sizes = [int(b) for b in c.split_list(batch_sizes) or []]
    except ValueError:
        raise UserError(f"--batch-sizes {batch_sizes!r} is not a list of integers", None,
                        "use e.g. --batch-sizes 1,32") from None
    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, label_column,
                       group_column, task, label_names, False, limit)
    config = BenchConfig(models=list(model or []), data=spec, batch_sizes=sizes, threads=threads, device=device,
                         warmup=warmup,
                         repeats=repeats, seq_len=seq_len, max_length=max_length,
                         metric_batch_size=metric_batch_size, baseline=baseline, seed=seed,
                         trust_remote_code=trust_remote_code)
    # --json, --markdown and --plot are no part of the saved config: they stay options.
    config = c.with_config_file(config, config_file, {**c.data_fields("data"), "model": ("models",)})
    c.require(config.models, "--model", "add --model [NAME=]PATH[:BACKEND], once per model")
    # Fail on bad settings and unwritable outputs before minutes of measuring.
    check_config(config)
    if plot_out:
        require_matplotlib()
    outputs = [Path(out) for out in (json_out, markdown_out, plot_out) if out]
    if len({o.resolve() for o in outputs}) < len(outputs):
        raise UserError("two outputs (--json, --markdown, --plot) name the same file", None,
                        "give each output its own path")
    c.guard_outputs(outputs, *c.spec_inputs(config.data), data_config, list(config.models))
    for out in outputs:
        check_output_file(out, overwrite)
    result = run_bench(config)
    print_result(result)
    write_outputs(result, json_out, markdown_out, plot_out)
