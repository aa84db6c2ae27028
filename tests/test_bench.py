"""bertdistill bench: timing harness, model specs, labels check, JSON schema, Markdown, plot, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_cli
from conftest import SHARED, make_tiny_bert, requires_minilm, requires_shared, write_toy_pairs

from bertdistill.bench import (BenchConfig, ModelResult, parse_model_spec, require_matplotlib, result_from_dict,
                               run_bench, time_interleaved, to_markdown, write_outputs)
from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError

# ---------------------------------------------------------------------------------------------
# Timing harness with fake callables


def test_harness_runs_warmup_and_repeats_interleaved():
    log: list[tuple[str, int]] = []

    def fake(name):
        return lambda i: log.append((name, i))

    timings = time_interleaved([("a", fake("a")), ("b", fake("b")), ("c", fake("c"))], warmup=2, repeats=5,
                               batch_size=4)
    for name in "abc":
        assert sum(1 for n, _ in log if n == name) == 2 + 5
        assert timings[name].calls == 5
        assert timings[name].examples == 5 * 4
    timed = log[3 * 2:]
    # each round calls every model once with that round's input; the first model rotates
    for r in range(5):
        round_calls = timed[3 * r:3 * r + 3]
        assert sorted(n for n, _ in round_calls) == ["a", "b", "c"]
        assert all(i == r for _, i in round_calls)
    assert [timed[3 * r][0] for r in range(3)] == ["a", "b", "c"]


def test_harness_statistics_from_a_fake_clock():
    ticks = iter(np.arange(0, 1000, 1.0))  # every clock() call advances one second

    def clock():
        return float(next(ticks))

    timings = time_interleaved([("m", lambda i: None)], warmup=1, repeats=4, batch_size=8, clock=clock)
    t = timings["m"]
    assert t.seconds == [1.0, 1.0, 1.0, 1.0]
    assert t.percentile_ms(50) == pytest.approx(1000.0)
    assert t.throughput == pytest.approx(32 / 4.0)


def test_harness_counts_variable_batch_sizes_and_refuses_zero_repeats():
    timings = time_interleaved([("m", lambda i: None)], warmup=0, repeats=3, examples_per_call=[[1, 2, 3]])
    assert timings["m"].examples == 6
    with pytest.raises(ValueError):
        time_interleaved([("m", lambda i: None)], warmup=0, repeats=0)


# ---------------------------------------------------------------------------------------------
# Model specs


@pytest.mark.parametrize("text, expected", [
    ("runs/t1", ("t1", "runs/t1", "auto")),
    ("teacher=runs/t1", ("teacher", "runs/t1", "auto")),
    ("student-int8=exports/s:onnx-int8", ("student-int8", "exports/s", "onnx-int8")),
    ("runs/s:bf16", ("s-bf16", "runs/s", "bf16")),
    ("runs/lr=3e-5", ("lr=3e-5", "runs/lr=3e-5", "auto")),
])
def test_parse_model_spec(text, expected):
    spec = parse_model_spec(text)
    assert (spec.name, spec.path, spec.backend) == expected


def test_parse_model_spec_rejects_unknown_backend():
    with pytest.raises(UserError, match="unknown backend"):
        parse_model_spec("runs/s:fp8")


# ---------------------------------------------------------------------------------------------
# A real run on tiny models: torch, bf16, ONNX fp32 and int8


def _ranking_with_unanswered_query(path: Path) -> Path:
    """Toy ranking data where query q0 has no correct candidate."""
    write_toy_pairs(path, n=48, ranking=True)
    lines = path.read_text().splitlines()
    out = [lines[0]] + [line[:-1] + "0" if line.startswith("q0\t") else line for line in lines[1:]]
    path.write_text("\n".join(out) + "\n")
    return path


def _export_onnx(model_dir: Path, out: Path) -> Path:
    """ONNX dir via the export library (bertdistill.export) with an int8 copy."""
    from bertdistill.export import ExportConfig, export_model

    export_model(ExportConfig(model=str(model_dir), output=str(out), int8=True, parity_examples=16,
                              batch_size=8, max_length=64))
    return out


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    teacher = make_tiny_bert(root / "teacher", layers=4, seed=0)
    student = make_tiny_bert(root / "student", layers=2, seed=1)
    onnx_dir = _export_onnx(student, root / "student-onnx")
    data = _ranking_with_unanswered_query(root / "rank.tsv")
    return {"root": root, "teacher": teacher, "student": student, "onnx": onnx_dir, "data": data}


@pytest.fixture(scope="module")
def bench_result(bench_env):
    e = bench_env
    config = BenchConfig(
        models=[f"teacher={e['teacher']}", f"student={e['student']}", f"student-bf16={e['student']}:bf16",
                f"student-onnx={e['onnx']}", f"student-int8={e['onnx']}:onnx-int8"],
        data=DataSpec(path=str(e["data"]), group_column="qid"), batch_sizes=[8, 1], threads=1, warmup=1,
        repeats=3, max_length=64)
    return run_bench(config, show_progress=False)


def test_run_bench_measures_every_model(bench_result):
    r = bench_result
    assert [m.name for m in r.models] == ["teacher", "student", "student-bf16", "student-onnx", "student-int8"]
    assert [m.backend for m in r.models] == ["torch", "torch", "bf16", "onnx", "onnx-int8"]
    assert r.settings["batch_sizes"] == [1, 8] and r.settings["threads"] == 1
    assert r.baseline == "teacher" and r.main_metric == "map"
    for m in r.models:
        assert set(m.throughput_ex_s) == {"1", "8"} and all(v > 0 for v in m.throughput_ex_s.values())
        assert 0 < m.latency_ms["p50"] <= m.latency_ms["p95"]
        assert m.latency_ms["batch_size"] == 1
        assert m.size_bytes > 0 and m.params > 0
        assert 0 <= m.metrics["map"] <= 1
    teacher = r.model("teacher")
    assert teacher.is_baseline and teacher.speedup_vs_baseline == pytest.approx(1.0)
    assert teacher.retention_vs_baseline == pytest.approx(1.0)
    # the ONNX export computes what the PyTorch student computes
    assert r.model("student-onnx").metrics["map"] == pytest.approx(r.model("student").metrics["map"], abs=1e-6)
    assert r.model("student-onnx").params == r.model("student").params
    assert r.model("student-int8").size_bytes < r.model("student-onnx").size_bytes
    # WikiQA convention, stated in the output
    assert r.data["queries"] == 12 and r.data["queries_without_positive"] == 1
    assert r.model("student").metrics["queries_without_positive"] == 1
    assert any("left out" in note for note in r.notes)


def test_metrics_match_a_direct_computation(bench_env, bench_result):
    from bertdistill.data.sources import load_task_data
    from bertdistill.inference import load_scorer, predict_logits
    from bertdistill.metrics import compute_metrics

    data = load_task_data(DataSpec(path=str(bench_env["data"]), group_column="qid"))
    scorer = load_scorer(str(bench_env["student"]), "torch")
    logits = predict_logits(scorer, data, 64, 16)
    expected = compute_metrics("ranking", data.label_names, data.column("label"), logits, data.column("group"))
    assert bench_result.model("student").metrics == pytest.approx(expected)


EXPECTED_MODEL_TYPES = {
    "name": str, "path": str, "backend": str, "label_names": list, "params": int, "size_bytes": int,
    "metrics": dict, "latency_ms": dict, "throughput_ex_s": dict, "padded_len_mean": dict,
    "speedup_vs_baseline": float, "latency_speedup_vs_baseline": float, "retention_vs_baseline": float,
    "is_baseline": bool, "flops_per_example": float, "source_weights_sha256": str,
}
EXPECTED_TOP_TYPES = {
    "schema": str, "schema_version": int, "created": str, "machine": dict, "settings": dict, "data": dict,
    "main_metric": str, "metric_names": list, "baseline": str, "models": list, "notes": list, "config": dict,
    "fastest": list,
}


def test_json_schema_is_stable(bench_result, tmp_path):
    """The keys and types documented in docs/bench_schema.md (schema version 1)."""
    path = tmp_path / "bench.json"
    write_outputs(bench_result, json_path=path)
    doc = json.loads(path.read_text())
    assert {k: type(v) for k, v in doc.items()} == EXPECTED_TOP_TYPES
    assert doc["schema"] == "bertdistill.bench" and doc["schema_version"] == 1
    assert set(doc["machine"]) == {"cpu", "device", "device_name", "logical_cpus", "threads", "platform", "python",
                                   "torch", "onnxruntime", "transformers", "numpy", "bertdistill"}
    assert set(doc["settings"]) == {"batch_sizes", "warmup", "repeats", "seq_len", "max_length",
                                    "metric_batch_size", "seed", "threads", "device", "interleaved", "synchronized"}
    assert set(doc["data"]) == {"source", "kind", "rows", "label_names", "fingerprint", "queries",
                                "queries_scored", "queries_without_positive"}
    assert len(doc["data"]["fingerprint"]) == 64
    for m in doc["models"]:
        assert {k: type(v) for k, v in m.items()} == EXPECTED_MODEL_TYPES, m["name"]
        assert set(m["latency_ms"]) == {"batch_size", "p50", "p95", "mean"}
        assert all(isinstance(v, float) for v in m["throughput_ex_s"].values())
        assert {"accuracy", "f1", "map", "mrr"} <= set(m["metrics"])
    # the schema doc lists every key the JSON has
    schema_doc = (Path(__file__).resolve().parents[1] / "docs" / "bench_schema.md").read_text()
    for key in list(EXPECTED_TOP_TYPES) + list(EXPECTED_MODEL_TYPES):
        assert f"`{key}`" in schema_doc, key
    # the JSON reads back into a result that renders the same table
    assert to_markdown(result_from_dict(doc)) == to_markdown(bench_result)


def test_rows_of_one_model_are_grouped_by_source_weights(bench_result):
    """Torch, bf16 and both ONNX exports of the student are one model; its fastest row is compared with the
    teacher's fastest row (the teacher ran on one backend only, which a note points out)."""
    r = bench_result
    assert [f.rows for f in r.fastest] == [["teacher"], ["student", "student-bf16", "student-onnx", "student-int8"]]
    student = r.fastest[1]
    rows = [r.model(name) for name in student.rows]
    top = max(rows, key=lambda m: m.throughput_ex_s["8"])
    assert student.model == top.name and student.backend == top.backend
    assert student.speedup_vs_baseline_fastest == pytest.approx(
        top.throughput_ex_s["8"] / r.model("teacher").throughput_ex_s["8"])
    maps = [m.metrics["map"] for m in rows]
    assert student.metric_spread == pytest.approx(max(maps) - min(maps))
    assert any("timed on one backend only" in note for note in r.notes)
    assert student.speedup_paired_median > 0


def _row(name, sha, backend, ex_s, metric, baseline=False):
    return ModelResult(name=name, path=name, backend=backend, label_names=["0", "1"], params=1, size_bytes=1,
                       metrics={"map": metric}, latency_ms={}, throughput_ex_s={"32": ex_s}, padded_len_mean={},
                       speedup_vs_baseline=None, latency_speedup_vs_baseline=None, retention_vs_baseline=None,
                       is_baseline=baseline, source_weights_sha256=sha)


def test_fastest_backends_by_hand():
    """Teacher 100 ex/s fp32, 300 bf16; student 250 fp32, 900 int8: the student is 3.0× the teacher's
    fastest (not 9×), at 0.76 / 0.80 = 95% of its MAP; int8 costs the student 0.02 MAP."""
    from bertdistill.bench.run import fastest_backends

    rows = [_row("t", "a", "torch", 100.0, 0.80, baseline=True), _row("t-bf16", "a", "bf16", 300.0, 0.80),
            _row("s", "b", "torch", 250.0, 0.78), _row("s-int8", "b", "onnx-int8", 900.0, 0.76),
            _row("other", None, "torch", 150.0, 0.5)]
    # round 2 was a slow moment for the student only: the mean ratio moves, the paired median does not
    seconds = {"t-bf16": [1.0, 1.0, 1.0], "s-int8": [0.25, 0.25, 2.0]}
    teacher, student, other = fastest_backends(rows, "map", 32, seconds)
    assert student.speedup_paired_median == pytest.approx(4.0)
    assert teacher.speedup_paired_median == pytest.approx(1.0) and other.speedup_paired_median is None
    assert (teacher.model, teacher.speedup_vs_baseline_fastest, teacher.retention_vs_baseline_fastest) == ("t-bf16", 1.0, 1.0)
    assert student.model == "s-int8" and student.rows == ["s", "s-int8"]
    assert student.speedup_vs_baseline_fastest == pytest.approx(3.0)
    assert student.retention_vs_baseline_fastest == pytest.approx(0.95)
    assert student.metric_spread == pytest.approx(0.02)
    assert other.rows == ["other"] and other.speedup_vs_baseline_fastest == pytest.approx(0.5)


def test_markdown_table(bench_result):
    text = to_markdown(bench_result)
    lines = text.splitlines()
    assert lines[0].startswith("| model | backend | params | GFLOPs/ex | size MB | acc | F1 | MAP | MRR |")
    assert lines[1].startswith("|---|---|---:|")
    first_table = lines[:lines.index("")]
    rows = [line for line in first_table if line.startswith("| student") or line.startswith("| teacher")]
    assert len(rows) == 5 and rows[0].startswith("| teacher (baseline) |")
    assert "Each model at its fastest backend:" in lines
    assert all(row.count("|") == lines[0].count("|") for row in rows)
    assert "queries left out" in text


def test_plot_is_a_valid_png(bench_result, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    path = tmp_path / "speed_quality.png"
    write_outputs(bench_result, plot_path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_missing_matplotlib_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    with pytest.raises(UserError, match="matplotlib"):
        require_matplotlib()


def test_fixed_seq_len_pads_every_timed_batch(bench_env):
    e = bench_env
    config = BenchConfig(models=[str(e["student"])], data=DataSpec(path=str(e["data"]), group_column="qid"),
                         batch_sizes=[1, 4], threads=1, warmup=0, repeats=2, seq_len=40, max_length=64)
    r = run_bench(config, show_progress=False)
    assert r.models[0].padded_len_mean == {"1": 40.0, "4": 40.0}
    assert r.models[0].name == "student" and r.settings["seq_len"] == 40


def test_labels_in_another_order_are_mapped(bench_env, tmp_path):
    """A model whose labels are ("1", "0") scores the same as its logits read in the data's order."""
    swapped = make_tiny_bert(tmp_path / "swapped", layers=1, label_names=("1", "0"), seed=3)
    e = bench_env
    config = BenchConfig(models=[str(swapped)], data=DataSpec(path=str(e["data"]), group_column="qid"),
                         batch_sizes=[1], threads=1, warmup=0, repeats=1, max_length=64)
    got = run_bench(config, show_progress=False).models[0].metrics

    from bertdistill.data.sources import load_task_data
    from bertdistill.inference import load_scorer, predict_logits
    from bertdistill.metrics import compute_metrics

    data = load_task_data(DataSpec(path=str(e["data"]), group_column="qid"))
    logits = predict_logits(load_scorer(str(swapped)), data, 64, 16)[:, ::-1]  # columns ("0", "1")
    assert got == pytest.approx(compute_metrics("ranking", ["0", "1"], data.column("label"), logits,
                                                data.column("group")))


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_bench_writes_json_markdown_and_plot(bench_env, tmp_path):
    pytest.importorskip("matplotlib")
    e = bench_env
    out = tmp_path / "out"
    res = run_cli("bench", "--model", f"teacher={e['teacher']}", "--model", f"student={e['onnx']}:onnx-int8",
                  "--data", e["data"], "--group-column", "qid", "--batch-sizes", "1,4", "--repeats", "2",
                  "--warmup", "0", "--threads", "1", "--max-length", "64",
                  "--json", out / "b.json", "--markdown", out / "b.md", "--plot", out / "b.png")
    assert res.code == 0, res.err
    assert "teacher (baseline)" in res.out and "student" in res.out and "left out" in res.out
    doc = json.loads((out / "b.json").read_text())
    assert [m["name"] for m in doc["models"]] == ["teacher", "student"]
    assert doc["models"][1]["backend"] == "onnx-int8"
    assert "| student |" in (out / "b.md").read_text()
    assert (out / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_refuses_model_with_other_labels(bench_env, tmp_path):
    nli = make_tiny_bert(tmp_path / "nli", layers=1, label_names=("contradiction", "entailment", "neutral"))
    res = run_cli("bench", "--model", f"teacher={bench_env['teacher']}", "--model", f"nli={nli}",
                  "--data", bench_env["data"], "--group-column", "qid")
    assert_user_error(res, "--model nli", "do not match")


@pytest.mark.parametrize("args, needle", [
    (["--batch-sizes", "1,x"], "--batch-sizes"),
    (["--repeats", "0"], "--repeats"),
    (["--baseline", "nobody"], "--baseline"),
])
def test_cli_refuses_bad_settings(bench_env, args, needle):
    res = run_cli("bench", "--model", str(bench_env["teacher"]), "--data", bench_env["data"], *args)
    assert_user_error(res, needle)


def test_cli_refuses_duplicate_names(bench_env):
    res = run_cli("bench", "--model", str(bench_env["teacher"]), "--model", str(bench_env["teacher"]),
                  "--data", bench_env["data"])
    assert_user_error(res, "two models are named")


# ---------------------------------------------------------------------------------------------
# Integration: the real MiniLM and WikiQA


@requires_minilm()
@requires_shared()
def test_bench_minilm_vs_three_layer_copy_on_wikiqa(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from bertdistill.models import default_model_path

    base = default_model_path()
    small = tmp_path / "minilm-3l"
    model = AutoModel.from_pretrained(base)
    model.encoder.layer = torch.nn.ModuleList(list(model.encoder.layer)[:3])
    model.config.num_hidden_layers = 3
    model.save_pretrained(small)
    AutoTokenizer.from_pretrained(base).save_pretrained(small)

    res = run_cli("bench", "--model", f"minilm-6l={base}", "--model", f"minilm-3l={small}",
                  "--data", SHARED / "wikiqa" / "WikiQA-test.tsv", "--group-column", "QuestionID",
                  "--limit", "64", "--batch-sizes", "1,8", "--repeats", "1", "--warmup", "1", "--threads", "2",
                  "--json", tmp_path / "b.json")
    assert res.code == 0, res.err
    assert "minilm-6l (baseline)" in res.out and "minilm-3l" in res.out
    doc = json.loads((tmp_path / "b.json").read_text())
    by_name = {m["name"]: m for m in doc["models"]}
    assert set(by_name) == {"minilm-6l", "minilm-3l"}
    assert doc["data"]["rows"] == 64 and doc["data"]["kind"] == "ranking"
    assert by_name["minilm-3l"]["params"] < by_name["minilm-6l"]["params"]


def test_bench_reports_flops_per_example_at_real_lengths(tmp_path):
    from bertdistill.bench import BenchConfig, run_bench
    from bertdistill.data.sources import DataSpec
    from bertdistill.flops import flops_per_example
    from bertdistill.inference import load_scorer
    from bertdistill.inference.batches import encode_rows

    big = make_tiny_bert(tmp_path / "big", layers=4)
    small = make_tiny_bert(tmp_path / "small", layers=2)
    data = write_toy_pairs(tmp_path / "d.tsv", n=24)
    result = run_bench(BenchConfig(models=[f"big={big}", f"small={small}"], data=DataSpec(path=str(data)),
                                   batch_sizes=[4], warmup=1, repeats=2, max_length=32), show_progress=False)
    scorer = load_scorer(str(big), "torch")
    rows = [line.split("\t") for line in data.read_text().splitlines()[1:]]
    lengths = encode_rows(scorer.tokenizer, [r[0] for r in rows], [r[1] for r in rows], 32).lengths
    expected = flops_per_example(scorer.config, lengths, num_labels=2)
    assert result.model("big").flops_per_example == pytest.approx(expected)
    # same width, half the layers: the encoder part halves, pooler and classifier stay
    assert result.model("small").flops_per_example < 0.6 * expected
