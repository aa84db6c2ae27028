"""Benchmark teachers and students side by side: task metrics, latency, throughput, size, ratios.

``run_bench(BenchConfig(...)) -> BenchResult``; ``write_outputs`` writes the JSON (schema in
docs/bench_schema.md), a Markdown table and a speed–quality PNG; ``time_interleaved`` is the timing
harness on its own.
"""

from bertdistill.bench.report import (print_result, require_matplotlib, result_from_dict, to_markdown,
                                      write_outputs, write_plot)
from bertdistill.bench.run import (SCHEMA_VERSION, BenchConfig, BenchResult, ModelResult, ModelSpec,
                                   check_config, parse_model_spec, run_bench)
from bertdistill.bench.timing import Timing, fixed_threads, time_interleaved

__all__ = ["BenchConfig", "BenchResult", "ModelResult", "ModelSpec", "SCHEMA_VERSION", "Timing", "check_config",
           "fixed_threads", "parse_model_spec", "print_result", "require_matplotlib", "result_from_dict",
           "run_bench", "time_interleaved", "to_markdown", "write_outputs", "write_plot"]
