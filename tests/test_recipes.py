"""The task recipes in examples/ (recipe files for ``bertdistill distill``) build, step by step, the same configs
as the commands of the study scripts they replace: every recipe step is matched with the study's command that
writes the corresponding output (a stand-in ``bertdistill`` on PATH records the script's command lines; each is
parsed by the real CLI up to its library call) and the two configs must be equal, paths translated between the
two output layouts. Only the plans are compared here; the measured runs are in each example's README/RESULTS."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"

#: Command → (module whose attribute the command calls, that attribute): patched to capture the config.
LIBRARY = {"finetune": ("bertdistill.training.finetune", "finetune"),
           "pretrain-student": ("bertdistill.training.pretrain", "pretrain_student"),
           "label": ("bertdistill.teachers.label", "label"), "corpus": ("bertdistill.data.corpus", "build_corpus"),
           "prune": ("bertdistill.prune", "prune"), "export": ("bertdistill.export.exporter", "export_model"),
           "bench": ("bertdistill.bench", "run_bench")}

SEEDS = (1, 2, 3)
#: The study's label store of the training set also keeps the [CLS] states its PKD variants need; the recipes'
#: students use the logits only, which these settings do not change.
STUDY_ONLY_LABEL_KEYS = ("hidden_layers", "student_layers")


def _common(best: str) -> dict[str, str]:
    layout = {"teachers/t1": "teachers/t1", "teachers/t2": "teachers/t2", "corpus.jsonl": "corpora/mined.jsonl",
              "labels/corpus": "labels/mined", "labels/train": "labels/train", "student-pruned": "students/pruned",
              "onnx/t1": "onnx/t1", "onnx/student-seed1": f"onnx/{best}-s1"}
    for s in SEEDS:
        layout[f"seed{s}/student"] = f"students/{best}-s{s}"
    return layout


#: example → (study script, its environment, recipe output → study output for every compared step).
EXAMPLES = {
    "mrpc": ("examples/mrpc/study.sh", {"PART": "paper", "GLUE": "../shared/datasets/glue"},
             {**_common("tmkd"), **{f"seed{s}/student-stage1": f"students/tmkd-stage1-s{s}" for s in SEEDS}}),
    "wikiqa": ("examples/wikiqa/study.sh", {"PART": "paper", "WIKIQA": "../shared/datasets/wikiqa"},
               {**_common("best"), **{f"seed{s}/student-stage1": f"students/c-mined-e3-stage1-s{s}" for s in SEEDS}}),
}


def shell_commands(script: str, env_extra: dict[str, str], out: Path, tmp_path: Path) -> list[list[str]]:
    """The bertdistill command lines ``script`` runs (a stand-in bertdistill on PATH records them)."""
    bin_dir, record = tmp_path / "bin", tmp_path / "commands.jsonl"
    bin_dir.mkdir()
    fake = bin_dir / "bertdistill"
    fake.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                    f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    env = {**os.environ, **env_extra, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out),
           "SEEDS": " ".join(map(str, SEEDS))}
    subprocess.run(["bash", script], cwd=REPO, env=env, capture_output=True)
    return [json.loads(line) for line in record.read_text().splitlines()]


class Captured(Exception):
    """Stops a command where it calls its library function, holding the config it built."""


def captured_config(argv: list[str], monkeypatch):
    def capture(config, *args, **kwargs):
        raise Captured(config)

    module, name = LIBRARY[argv[0]]
    monkeypatch.setattr(importlib.import_module(module), name, capture)
    if argv[0] == "bench":
        import bertdistill.bench

        monkeypatch.setattr(bertdistill.bench, "check_config", lambda config: None)
    try:
        result = run_cli(*argv)
    except Captured as exc:
        return exc.args[0]
    raise AssertionError((argv, result.err))


def comparable(config, translate=lambda value: value) -> dict:
    from bertdistill.config import config_to_dict
    from bertdistill.recipe.plan import VOLATILE

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return translate(value) if isinstance(value, str) else value

    return walk({k: v for k, v in config_to_dict(config).items() if k not in VOLATILE})


def _translator(recipe_root: Path, shell_root: Path, layout: dict[str, str]):
    pairs = sorted(((str(recipe_root / r), str(shell_root / s)) for r, s in layout.items()),
                   key=lambda p: -len(p[0]))

    def translate(text: str) -> str:
        for old, new in pairs:
            if text == old or text.startswith(old + "/"):
                return new + text[len(old):]
            if "=" in text and text.split("=", 1)[1] == old:  # a teacher given as NAME=PATH
                return text.split("=", 1)[0] + "=" + new
        return text

    return translate


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_task_recipe_builds_the_configs_of_its_study_commands(example, tmp_path, monkeypatch):
    from bertdistill.recipe import load_recipe, make_plan

    if not SHARED.is_dir():
        pytest.skip(f"the shared datasets are not at {SHARED}")
    script, env, layout = EXAMPLES[example]
    monkeypatch.chdir(REPO)
    recipe_root, shell_root = tmp_path / "recipe", tmp_path / "study"
    plan = make_plan(load_recipe(f"examples/{example}/recipe.yaml", {"output": str(recipe_root)}), "recipe")
    by_output = {}
    for argv in shell_commands(script, env, shell_root, tmp_path):
        if "--output" in argv:
            by_output[argv[argv.index("--output") + 1]] = argv
    translate = _translator(recipe_root, shell_root, layout)
    compared = 0
    for step in plan.steps:
        rel = str(step.output.relative_to(recipe_root))
        if rel not in layout:
            continue  # the recipe's bench (every seed's student) and the exports of seeds 2 and 3: no study twin
        argv = by_output.get(str(shell_root / layout[rel]))
        assert argv is not None, f"{example}: study.sh writes nothing at {layout[rel]} (recipe step {step.name!r})"
        assert argv[0] == step.command, (example, step.name, argv[0])
        shell, recipe = comparable(captured_config(argv, monkeypatch)), comparable(step.config, translate)
        if step.name == "label train":
            for key in STUDY_ONLY_LABEL_KEYS:
                shell.pop(key), recipe.pop(key)
        diff = {k: (shell.get(k), recipe.get(k)) for k in set(shell) | set(recipe) if shell.get(k) != recipe.get(k)}
        assert not diff, (example, step.name, {k: [(j, a.get(j), b.get(j)) for j in a if a.get(j) != b.get(j)] if isinstance(a, dict) and isinstance(b, dict) else (a, b) for k, (a, b) in diff.items()})
        compared += 1
    assert compared == len(layout), (example, compared)


def test_the_demo_recipe_plans_the_whole_method(tmp_path, monkeypatch):
    """`make demo` runs examples/demo/recipe.yaml: it plans every stage of the method, the student without dropout."""
    from bertdistill.recipe import load_recipe, make_plan

    monkeypatch.chdir(REPO)
    plan = make_plan(load_recipe("examples/demo/recipe.yaml", {"output": str(tmp_path / "demo")}), "recipe")
    assert [s.name for s in plan.steps] == ["teacher t1", "teacher t2", "corpus", "label corpus", "label train",
                                            "prune", "stage 1", "stage 2", "export t1", "export student", "bench"]
    steps = {s.name: s for s in plan.steps}
    assert steps["stage 1"].config.student.dropout == 0 and steps["stage 2"].config.student.dropout == 0
    assert plan.recipe.targets.retention == 0.95 and plan.recipe.targets.speedup == 3.0


@pytest.mark.parametrize("native", [True, False], ids=["bf16-in-hardware", "bf16-emulated"])
def test_auto_precision_keeps_emulated_bf16_out_of_the_demo(tmp_path, monkeypatch, native):
    """With mixed_precision: auto, a CPU that emulates bf16 (several times slower than fp32) gets fp32 labels and
    no bf16 bench rows; where bf16 is native the recipe runs as written."""
    import bertdistill.recipe.plan as plan_module
    from bertdistill.recipe import load_recipe, make_plan

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(plan_module, "native_bf16", lambda device: native)
    monkeypatch.setattr(plan_module, "training_device", lambda: __import__("torch").device("cpu"))
    recipe = load_recipe("examples/demo/recipe.yaml", {"output": str(tmp_path / "demo")})
    assert recipe.mixed_precision == "auto"
    steps = {s.name: s for s in make_plan(recipe, "recipe").steps}
    expected = "bf16" if native else "torch"
    assert steps["label corpus"].config.backend == steps["label train"].config.backend == expected
    rows = [m.split("=", 1)[0] for m in steps["bench"].config.models]
    assert any(r.endswith("-bf16") for r in rows) == native and any(r.endswith("-int8") for r in rows)
    assert recipe.label["backend"] == "bf16" and "bf16" in recipe.bench.backends  # the loaded recipe is untouched


@pytest.mark.parametrize("infer_backend", ["torch", "bf16"])
def test_study_scripts_use_bf16_only_where_the_cpu_has_it(infer_backend, tmp_path):
    """examples/lib.sh's INFER_BACKEND (bf16 where native, else torch) picks the backend of the study's labels and
    test-set scoring, and whether its speed benches time bf16 at all (emulated, bf16 is never the fastest)."""
    commands = shell_commands("examples/mrpc/study.sh", {"GLUE": "../shared/datasets/glue",
                                                         "INFER_BACKEND": infer_backend}, tmp_path / "out", tmp_path)
    labels = [argv[argv.index("--backend") + 1] for argv in commands if argv[0] == "label"]
    benches = [[argv[i + 1] for i, a in enumerate(argv) if a == "--model"] for argv in commands if argv[0] == "bench"]
    assert labels and set(labels) == {infer_backend}
    quality = [models for models in benches if not any(m.endswith(":onnx-int8") for m in models)]
    speed = [models for models in benches if any(m.endswith(":onnx-int8") for m in models)]
    assert quality and all(m.endswith(f":{infer_backend}") for models in quality for m in models)
    assert speed and all(any(m.startswith("teacher=") for m in models) for models in speed)
    bf16_rows = [m for models in speed for m in models if m.endswith(":bf16")]
    assert bool(bf16_rows) == (infer_backend == "bf16")
