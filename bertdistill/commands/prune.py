"""``bertdistill prune``: a smaller student cut from a model (layers, heads, FFN neurons, hidden width)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.families import families

NAME = "prune"
HELP = """Cut a narrower, shallower student out of a model, keeping the parts that matter most on
calibration data: attention heads by gradient importance, FFN neurons by |activation × gradient|,
one set of hidden dims (embeddings, every LayerNorm and projection, pooler, classifier) by activation
magnitude, and layers first / skip / by block importance / as listed. Scores use a teacher's soft
predictions (--teacher, --labels), else gold labels, else the model's own outputs. The output is a
plain Hugging Face directory of the source's class (base encoder or classifier) with the tokenizer
and prune_report.json (kept indices, scores, params and FLOPs before/after, data fingerprint).
Families: """ + ", ".join(f.name for f in families()) + """ (ModernBERT keeps whole heads; MPNet the
same heads in every layer).

Example:
  bertdistill prune --data ../shared/datasets/wikiqa/WikiQA-train.txt --columns query,passage,label \\
      --limit 2000 --layers 3 --layer-map skip --hidden 256 --heads 8 --ffn 1024 \\
      --output students/pruned
"""


def command(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model directory to create (required).")] = None,
    config_file: c.ConfigFile = None,
    model: c.ModelOpt = None,
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, unlabeled: c.Unlabeled = False, limit: c.Limit = None,
    layers: Annotated[Optional[int], typer.Option("--layers", help="Encoder layers kept (default: all).")] = None,
    layer_map: Annotated[str, typer.Option(
        "--layer-map", help="first, skip (evenly spaced), importance (block importance) or 1-based layers 1,3,5.")] = "first",
    hidden: Annotated[Optional[int], typer.Option("--hidden", help="Hidden width (default: the source's).")] = None,
    heads: Annotated[Optional[int], typer.Option(
        "--heads", help="Attention heads per layer (default: hidden / the source's head size).")] = None,
    ffn: Annotated[Optional[int], typer.Option(
        "--ffn", help="FFN neurons per layer (default: the source's, scaled by hidden / source hidden).")] = None,
    teacher: Annotated[Optional[str], typer.Option(
        "--teacher", help="Classifier whose soft predictions score the parts (KL); needs a classifier --model.")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", help="Label store of the calibration data (teachers' logits) instead of --teacher.")] = None,
    max_length: c.MaxLength = 128,
    batch_size: c.BatchSize = 32,
    device: c.Device = "auto",
    overwrite: c.Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or table.")] = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.prune import PruneConfig, prune

    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, label_column,
                       group_column, task, label_names, unlabeled, limit)
    config = (PruneConfig(model=model, data=spec, output=str(output) if output else "", layers=layers, layer_map=layer_map,
                               hidden=hidden, heads=heads, ffn=ffn, teacher=teacher,
                               labels=str(labels) if labels else None, max_length=max_length,
                               batch_size=c.check_positive(batch_size, "--batch-size"), device=device,
                               overwrite=overwrite,
                               quiet=quiet, trust_remote_code=trust_remote_code))
    config = c.with_config_file(config, config_file, c.data_fields("data"))
    c.require(config.output, "--output", "add --output DIR (the model directory to create)")
    c.guard_outputs(config.output, *c.spec_inputs(config.data), data_config, config.model, config.teacher,
                    config.labels)
    result = prune(config)
    if config.quiet:
        return
    from bertdistill.ui import console, print_table

    r = result.report
    rows = [{"model": name, **r[key], "params": r["params"][side], "gflops": r["flops_per_example"][side] / 1e9}
            for name, key, side in (("source", "source", "before"), ("pruned", "pruned", "after"))]
    print_table(rows, ["model", "layers", "hidden", "heads", "head_size", "ffn", "params", "gflops"],
                title=f"prune ({r['objective']} on {r['calibration']['examples']} examples, "
                      f"{r['calibration']['mean_tokens']:.1f} tokens on average)")
    console.print(f"kept layers {r['kept']['layers']}; params ×{r['params']['ratio']:.3f}, "
                  f"FLOPs ×{r['flops_per_example']['ratio']:.3f}; {r['seconds']['total']:.1f} s")
    console.print(f"wrote {result.output}")
