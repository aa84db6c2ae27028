"""The recipe collectors' shared tables (examples/recipe_tables.py): the paper-ordering verdicts and the
headline targets, checked on hand-made bench results."""

import importlib.util
import json
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "recipe_tables", Path(__file__).resolve().parents[1] / "examples" / "recipe_tables.py")
recipe_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe_tables)


def _model(name, backend, metric, ex_s, metric_name="map"):
    return {"name": name, "backend": backend, "params": 10e6, "flops_per_example": 1e9,
            "metrics": {metric_name: metric}, "throughput_ex_s": {"1": ex_s / 2, "32": ex_s},
            "latency_ms": {"p50": 1000 / ex_s}}


def test_seed_values_groups_models_by_variant():
    models = [{"name": "kd-s1", "metrics": {"map": 0.5}}, {"name": "kd-s2", "metrics": {"map": 0.7}},
              {"name": "teacher-t1", "metrics": {"map": 0.9}}]
    assert dict(recipe_tables.seed_values(models, ("map",))) == {"kd": {"map": [0.5, 0.7]}}


def test_paper_table_verdicts_use_the_larger_standard_deviation():
    values = {"ft": {"map": [0.60, 0.62]},      # mean 0.61, sd 0.01414
              "kd": {"map": [0.64, 0.64]},      # +3 points, beyond the spread
              "pkd": {"map": [0.63, 0.67]},     # +1 point, sd 0.0283 > gap: inside
              "tmkd": {"map": [0.60, 0.60]}}    # lower: does not hold
    rows = [("ft", "FT"), ("kd", "KD"), ("pkd", "PKD"), ("tmkd", "TMKD")]
    lines = recipe_tables.paper_table(values, rows, ("map",), "map", best_teacher=0.8)
    assert "| FT | 2 | 0.6100 ± 0.0141 | 76.2% | – |" in lines
    assert "- FT → KD: +3.00 points (holds, beyond the spread)." in lines
    assert "- KD → PKD: +1.00 points (holds, inside the spread)." in lines
    assert "- PKD → TMKD: -5.00 points (does not hold)." in lines


def test_paper_table_skips_missing_rows_in_the_ordering():
    lines = recipe_tables.paper_table({"ft": {"map": [0.5]}, "tmkd": {"map": [0.7]}},
                                      [("ft", "FT"), ("kd", "KD"), ("tmkd", "TMKD")], ("map",), "map", 1.0)
    assert "| KD | 0 | – | – | – |" in lines
    assert "- FT → TMKD: +20.00 points (holds, beyond the spread)." in lines


def test_deployed_table_checks_the_targets_against_the_fastest_backends():
    bench = {"machine": {"cpu": "cpu"}, "created": "2026-11-22T10:00:00",
             "settings": {"threads": 2, "max_length": 64, "repeats": 10},
             "models": [_model("teacher", "torch", 0.80, 100), _model("teacher-bf16", "bf16", 0.80, 250),
                        _model("student", "torch", 0.79, 400), _model("student-bf16", "bf16", 0.785, 700),
                        _model("student-int8", "onnx-int8", 0.77, 600)]}
    lines = recipe_tables.deployed_table(bench, "map", best_teacher=0.80, student_seeds=[0.792, 0.794],
                                         metric_label="MAP")
    text = "\n".join(lines)
    assert "0.7930 / 0.8000 = 99.1% (target ≥ 99%): met" in text
    assert "teacher's PyTorch fp32 at batch 32: 7.00× (target ≥ 5×): met" in text
    assert "teacher's fastest backend at batch 32: 2.80× (target ≥ 2.5×): met" in text
    assert "at most 2.00 points (target ≤ 1): **missed**" in text
    assert "| student-int8 | ONNX Runtime int8 | 10.0M | 1.000 | 0.7700 | 600 | 6.00× | 2.40× | 1.7 |" in lines



def test_train_minutes_sums_stages_per_seed_then_averages(tmp_path):
    for name, seed, seconds in [("tmkd-stage1", 1, 300), ("tmkd", 1, 60), ("tmkd-stage1", 2, 420), ("tmkd", 2, 120)]:
        run = tmp_path / "students" / f"{name}-s{seed}"
        run.mkdir(parents=True)
        (run / "training_record.json").write_text(json.dumps({"summary": {"train_seconds": seconds}}))
    assert recipe_tables.train_minutes(tmp_path, "tmkd-stage1", "tmkd") == (6 + 9) / 2
    assert recipe_tables.train_minutes(tmp_path, "tmkd", "missing") is None
    lines = recipe_tables.paper_table({"tmkd": {"map": [0.7]}}, [("tmkd", "TMKD")], ("map",), "map", 1.0,
                                      minutes={"tmkd": 7.5})
    assert "| TMKD | 1 | 0.7000 ± 0.0000 | 70.0% | 7.5 |" in lines


def test_real_setting_collector_checks_each_deployed_student_against_its_target():
    """examples/mpnet/collect.py: (a)/(b) students need 99% at 5× the teacher's fastest backend and ≤ 1 point
    lost to bf16/int8; (c) students 97% at 15×."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    spec = importlib.util.spec_from_file_location(
        "mpnet_collect", Path(__file__).resolve().parents[1] / "examples" / "mpnet" / "collect.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    bench = {"machine": {"cpu": "cpu"}, "created": "2026-12-02T10:00:00",
             "settings": {"threads": 2, "max_length": 128, "repeats": 10},
             "models": [_model("t1", "torch", 0.80, 20, "accuracy"), _model("t1-bf16", "bf16", 0.80, 50, "accuracy"),
                        _model("a-tmkd", "torch", 0.80, 150, "accuracy"),
                        _model("a-tmkd-bf16", "bf16", 0.795, 400, "accuracy"),
                        _model("c-tmkd3", "torch", 0.79, 300, "accuracy"),
                        _model("c-tmkd3-int8", "onnx-int8", 0.77, 760, "accuracy")]}
    seeds = {"a-tmkd": {"accuracy": [0.795, 0.80]}, "c-tmkd3": {"accuracy": [0.78, 0.78]}}
    text = "\n".join(collect.deployed(bench, "accuracy", 0.80, seeds))
    # the loss is measured against the backends each student was benched on (no bf16 row where it is emulated)
    assert ("- a-tmkd: 99.7% of the best teacher (2 seeds; target ≥ 99%) at 8.00× the teacher's fastest "
            "backend (PyTorch bf16 autocast; target ≥ 5×); at most 0.50 points lost to bf16 (target ≤ 1): met."
            in text)
    assert "- c-tmkd3: 97.5% of the best teacher (2 seeds; target ≥ 97%) at 15.20×" in text
    assert text.endswith("at most 2.00 points lost to int8: met.")
    from recipe_tables import inference

    assert inference(bench["models"][:2]) == "PyTorch bf16 autocast and PyTorch fp32 inference"
    assert inference(bench["models"][:1]) == "PyTorch fp32 inference"
