"""``bertdistill distill``: the whole method from one recipe file (YAML or JSON).

``load_recipe(path)`` reads and validates the file (``spec.Recipe``); ``make_plan`` turns it into ordered
steps with their typed configs and equivalent single commands (``plan``); ``run_plan`` runs them through the
library functions, skipping the steps already done with the same settings (``run``), and writes
``report.md`` (``report``). ``distill(DistillConfig)`` does all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bertdistill.recipe.plan import Plan, Step, make_plan
from bertdistill.recipe.spec import Recipe


@dataclass
class DistillRunConfig:
    """What ``bertdistill distill`` was asked: the recipe file, settings laid over it, plan only or run."""

    recipe: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Recipe settings laid over the file's (e.g. ``{"output": "runs/other"}``)."""
    plan_only: bool = False
    quiet: bool = False
    until: str | None = None
    """Run the steps up to and including this one (a step name as ``--plan`` prints it), then stop."""


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """The recipe in ``path`` (YAML or JSON) with ``overrides`` laid over it, validated like ``--config``."""
    from bertdistill.config import config_from_dict, merge_dicts, read_config_file
    from bertdistill.errors import UserError

    data = read_config_file(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping of settings", str(path), "write the recipe as key: value lines")
    return config_from_dict(Recipe, merge_dicts(data, overrides or {}), str(path))


def plan_lines(plan: Plan, last: int | None = None) -> list[str]:
    """``--plan``: each step, whether it runs, is done already or comes after ``--until``'s step (later),
    and its equivalent single command."""
    from bertdistill.recipe.run import State

    state = State(plan.root)
    lines = []
    for k, step in enumerate(plan.steps, 1):
        status = "done" if state.is_done(step) else "later" if last is not None and k - 1 > last else "run"
        lines.append(f"{k:2d}. [{status}] {step.name} → {step.output}")
        lines.append(f"    {step.command_line(plan.root)}")
    return lines


def distill(config: DistillRunConfig, log: Callable[[str], None] = print):
    """Plan the recipe (refusing a wrong one before any step runs); print the plan, or run it."""
    from bertdistill.recipe.run import prepare, run_plan, State, write_step_configs

    recipe = load_recipe(config.recipe, config.overrides)
    plan = make_plan(recipe, config.recipe)
    last = last_step(plan, config.until)
    if config.plan_only:
        state = State(plan.root)
        for step in plan.steps:
            prepare(step, state)
        write_step_configs(plan)
        for line in plan_lines(plan, last):
            log(line)
        return plan
    invocation = config.recipe + (f" --output {config.overrides['output']}" if "output" in config.overrides else "")
    return run_plan(plan, invocation, show_progress=not config.quiet, log=log, last=last)


def last_step(plan: Plan, until: str | None) -> int | None:
    """Index of the step ``--until`` names (None: run to the end); an unknown name is a UserError."""
    from bertdistill.errors import UserError

    if until is None:
        return None
    names = [step.name for step in plan.steps]
    if until not in names:
        raise UserError(f"no step named {until!r} in this recipe", "--until",
                        "name one of: " + ", ".join(repr(n) for n in names))
    return names.index(until)


__all__ = ["DistillRunConfig", "Plan", "Recipe", "Step", "distill", "load_recipe", "make_plan", "plan_lines"]
