"""``bertdistill distill``: the whole method — teachers to a deployed, benchmarked student — from one recipe file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c

NAME = "distill"
HELP = """Run a whole distillation recipe (YAML or JSON): teachers (given or fine-tuned), the stage-1 corpus
and the teachers' labels, the student (cut by prune or copied from a teacher), stage 1 and stage 2 per
seed, ONNX export and the bench, ending with report.md. Settings shared by the steps (max_length,
mixed_precision, seeds, data) are stated once. A step whose output is complete and was made with the same
settings is skipped, so an interrupted run (Ctrl-C, kill -9) resumes when run again; changing a setting
reruns that step and those after it. --plan prints the steps with the single command equivalent to each.
After the bench, the model cards of the benched students and fine-tuned teachers carry their speed.

Example:
  bertdistill distill --config examples/demo/recipe.yaml --plan
  bertdistill distill --config examples/demo/recipe.yaml
  bertdistill distill --config examples/wikiqa/recipe.yaml --until 'teacher t2'
"""


def command(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="The recipe file (YAML or JSON).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print the steps and their equivalent commands; run nothing.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder (overrides the recipe's).")] = None,
    until: Annotated[Optional[str], typer.Option(
        "--until", metavar="STEP",
        help="Run the steps up to and including STEP (its name as --plan prints it, e.g. 'teacher t2'), then "
             "stop: a recipe in parts. Run again without it to finish.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    from bertdistill.errors import UserError
    from bertdistill.recipe import DistillRunConfig, distill

    if config_file is None:
        raise UserError("no recipe given", "--config", "add --config RECIPE.yaml")
    overrides = {"output": str(output)} if output else {}
    rerun = f"bertdistill distill --config {config_file}" + (f" --output {output}" if output else "")
    with c.stopped_as_one_line(again=f"run `{rerun}` again to continue"):  # also Ctrl-C between steps
        distill(DistillRunConfig(recipe=str(config_file), overrides=overrides, plan_only=plan, quiet=quiet,
                                 until=until))
