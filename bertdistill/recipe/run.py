"""Running a plan: each step through its library function, skipped when its output is complete and was made
with the same settings (the step's fingerprint: its config and the fingerprints of the steps it reads).

``<output>/distill_state.json`` records, per step, the fingerprint it was started with, when, and whether it
finished (written atomically before and after each step). A step is done when its output is complete (the
``.complete`` marker; a corpus's sidecar; the bench's JSON) AND the state's fingerprint is the step's AND it
finished (or its output was completed after it started: killed between the two writes). An interrupted
training step resumes from its checkpoints (``resume=True``); ``label`` continues its partial store; the
other steps write atomically and simply run again. The completion mark is written last: a folder's
``.complete`` inside its temporary sibling before the rename, the bench's JSON after its markdown, plot and
the speed rows of the model cards, so nothing half-written looks finished after a kill -9. A file output
left without its ``.<name>.bertdistill`` note by a kill (a corpus published, its note not yet written) is
claimed again when the state shows this recipe's step wrote it, so the rerun may replace it.

Ctrl-C in a step ends the run with one line naming the step and how to continue (run the recipe again),
exit 130; a training step first saves a checkpoint at its next safe point.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bertdistill.config import save_config
from bertdistill.errors import UserError
from bertdistill.io import COMPLETE_MARKER, atomic_write_text, read_json
from bertdistill.recipe.plan import Plan, Step

STATE_FILE = "distill_state.json"


class StepInterrupted(KeyboardInterrupt):
    """Ctrl-C in a step: the CLI prints ``interrupted: <the step, what was kept, how to continue>``, exit 130."""


@dataclass
class StepOutcome:
    name: str
    status: str
    """ran, skipped"""
    seconds: float
    output: str
    command: str


@dataclass
class RecipeResult:
    plan: Plan
    outcomes: list[StepOutcome] = field(default_factory=list)
    report: Path | None = None


def completed_at(step: Step) -> float | None:
    """When the step's output was completed (its marker's time), or None when it is not complete."""
    out = step.output
    if step.kind == "corpus":
        from bertdistill.data.corpus_spec import sidecar_path

        marker = sidecar_path(out)
        return marker.stat().st_mtime if out.is_file() and marker.is_file() else None
    if step.kind == "bench":
        return out.stat().st_mtime if out.is_file() else None
    marker = out / COMPLETE_MARKER
    return marker.stat().st_mtime if marker.is_file() else None


class State:
    def __init__(self, root: Path):
        self.path = root / STATE_FILE
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            with contextlib.suppress(ValueError, OSError):
                self.steps = dict(read_json(self.path).get("steps", {}))

    def save(self) -> None:
        import json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"steps": self.steps}, indent=2) + "\n")

    def is_done(self, step: Step) -> bool:
        entry = self.steps.get(step.name) or {}
        when = completed_at(step)
        if when is None or entry.get("fingerprint") != step.fingerprint:
            return False
        return bool(entry.get("done")) or when >= entry.get("started", float("inf"))


def claim_files(step: Step, state: State) -> None:
    """A file output of this step (corpus and its sidecar, the bench's files) that a killed run published but
    had not yet noted as bertdistill's: note it now, as the state shows this recipe's step wrote that path
    (else ``--overwrite`` would refuse it as a stranger's file and the rerun would stop there)."""
    from bertdistill.io import is_bertdistill_file, mark_written

    if not step.is_file_output() or step.name not in state.steps:
        return
    if step.kind == "corpus":
        from bertdistill.data.corpus_spec import sidecar_path

        paths = [step.output, sidecar_path(step.output)]
    else:
        args = dict(zip(step.extra_args[0::2], step.extra_args[1::2]))
        paths = [Path(args[k]) for k in ("--json", "--markdown", "--plot") if args.get(k)]
    for path in paths:
        if path.is_file() and not path.is_symlink() and not is_bertdistill_file(path):
            mark_written(path, step.command)


def prepare(step: Step, state: State) -> None:
    """Set how the step treats what its output holds: resume its own interrupted run, replace anything else."""
    entry = state.steps.get(step.name) or {}
    same = entry.get("fingerprint") == step.fingerprint
    out, config = step.output, step.config
    exists = out.exists() or out.is_symlink()
    claim_files(step, state)
    if step.kind in ("finetune", "pretrain"):
        config.resume = same and (out / "checkpoints").is_dir()
        config.overwrite = exists and not config.resume
    elif step.kind == "label":
        from bertdistill.teachers.layout import partial_dir

        # overwrite: replace an old store; a partial store of these settings is continued, another is discarded
        config.overwrite = exists or partial_dir(out).exists()
    elif step.kind == "corpus":
        config.overwrite = exists
    elif step.kind in ("prune", "export"):
        config.overwrite = exists


def runner(step: Step, show_progress: bool) -> Callable[[], Any]:
    c = step.config
    if step.kind == "finetune":
        from bertdistill.training.finetune import finetune

        return lambda: finetune(c, show_progress=show_progress)
    if step.kind == "pretrain":
        from bertdistill.training.pretrain import pretrain_student

        return lambda: pretrain_student(c, show_progress=show_progress)
    if step.kind == "label":
        from bertdistill.teachers.label import label

        return lambda: label(c)
    if step.kind == "corpus":
        from bertdistill.data.corpus import build_corpus

        return lambda: build_corpus(c)
    if step.kind == "prune":
        from bertdistill.prune import prune

        return lambda: prune(c)
    if step.kind == "export":
        from bertdistill.export.exporter import export_model

        return lambda: export_model(c)
    from bertdistill.bench import check_config, run_bench, write_outputs

    def bench():
        check_config(c)
        args = dict(zip(step.extra_args[0::2], step.extra_args[1::2]))
        result = run_bench(c, show_progress=show_progress)
        write_outputs(result, None, args.get("--markdown"), args.get("--plot"))
        write_speed_cards(step, result)
        write_outputs(result, args.get("--json"))  # last: the JSON marks the step complete
        return result

    return bench


def write_speed_cards(step: Step, result) -> list[Path]:
    """The bench's speed rows into the model cards of the folders the recipe made (``step.cards``)."""
    from bertdistill.model_card import write_speed

    per_folder: dict[str, list[dict[str, Any]]] = {}
    for m in result.models:
        folder = step.cards.get(m.name)
        if folder is not None:
            per_folder.setdefault(folder, []).append(
                {"backend": m.backend, "row": m.name, "examples_per_second": dict(m.throughput_ex_s),
                 "metric": m.metrics.get(result.main_metric)})
    written = []
    for folder, rows in per_folder.items():
        path = write_speed(folder, rows, result.machine, result.created, metric=f"test {result.main_metric}",
                           source="the recipe's bench step")
        if path is not None:
            written.append(path)
    return written


def run_step(step: Step, run: Callable[[], Any], recipe_file: str) -> Any:
    """Run one step; Ctrl-C inside it (also as the training loop's "interrupted ... checkpoint saved" error)
    becomes ``StepInterrupted``: the step, what was kept, and the one way to continue — the recipe again."""
    again = f"run `bertdistill distill --config {recipe_file}` again to continue"
    try:
        return run()
    except StepInterrupted:
        raise
    except KeyboardInterrupt as exc:
        from bertdistill.interrupts import Stopped

        kept = f" ({exc.kept})" if isinstance(exc, Stopped) else ""
        raise StepInterrupted(f"step {step.name!r} stopped{kept}; {again}") from None
    except UserError as exc:
        if not isinstance(exc.__context__, KeyboardInterrupt):
            raise
        kept = exc.what.removeprefix("interrupted ")
        raise StepInterrupted(f"step {step.name!r} stopped ({kept}); {again}") from None


def write_step_configs(plan: Plan) -> None:
    """Each step's config where its command line's --config points."""
    for step in plan.steps:
        path = step.config_file(plan.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_config(step.config, path)


def run_plan(plan: Plan, recipe_file: str, show_progress: bool = True,
             log: Callable[[str], None] = print, last: int | None = None) -> RecipeResult:
    """Run every step not done yet, in order; then write the report. ``recipe_file``: what follows
    ``bertdistill distill --config`` to run this plan (the recipe, and ``--output`` when given). ``last``:
    stop after the step of that index (a part of the recipe; no report, which needs every step)."""
    from bertdistill.model_card import made_by
    from bertdistill.recipe.report import final_lines, write_report

    run_started = time.perf_counter()
    plan.root.mkdir(parents=True, exist_ok=True)
    state = State(plan.root)
    result = RecipeResult(plan)
    for step in plan.steps:
        prepare(step, state)
    write_step_configs(plan)

    def run_one(step: Step, k: int, line: str) -> None:
        log(f"== [{k}/{len(plan.steps)}] {step.name}  [{time.strftime('%H:%M:%S')}]  ({line})")
        state.steps[step.name] = {"fingerprint": step.fingerprint, "started": time.time(), "done": False,
                                  "command": line}
        state.save()
        started = time.perf_counter()
        with made_by(f"`bertdistill distill --config {recipe_file}`, step *{step.name}* "
                     f"(equivalent alone: `{line}`)."):
            run_step(step, runner(step, show_progress), recipe_file)
        seconds = time.perf_counter() - started
        state.steps[step.name].update(done=True, seconds=round(seconds, 2))
        state.save()
        result.outcomes.append(StepOutcome(step.name, "ran", seconds, str(step.output), line))

    for k, step in enumerate(plan.steps, 1):
        line = step.command_line(plan.root)
        if state.is_done(step):
            log(f"== [{k}/{len(plan.steps)}] {step.name}: done already ({step.output})")
            result.outcomes.append(StepOutcome(step.name, "skipped", state.steps[step.name].get("seconds", 0.0),
                                               str(step.output), line))
        else:
            run_one(step, k, line)
        if k - 1 == last and k < len(plan.steps):
            log(f"stopped after step {step.name!r} (--until); the {len(plan.steps) - k} steps after it "
                f"run when `bertdistill distill --config {recipe_file}` runs without --until")
            return result
    result.report = write_report(plan, result.outcomes)
    for line in final_lines(plan, time.perf_counter() - run_started):
        log(line)
    log(f"report: {result.report}")
    return result
