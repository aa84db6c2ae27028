"""The code's shape, enforced: no import cycles in the package (function-level imports included), small files
in ``training/``, and the registries that drive the CLI."""

from __future__ import annotations

from pathlib import Path

from import_graph import cycles, import_graph

PACKAGE = Path(__file__).resolve().parents[1] / "bertdistill"


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph(PACKAGE)) == []


def test_the_contract_catches_a_cycle_even_through_function_level_imports(tmp_path):
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from toy.b import helper\n")
    (pkg / "b.py").write_text("def helper():\n    from toy import a  # hidden in a function\n    return a\n")
    (pkg / "c.py").write_text("import toy.a\n")
    assert cycles(import_graph(pkg)) == [["toy.a", "toy.b"]]


def test_training_is_one_concern_per_small_file():
    sizes = {f.name: len(f.read_text().splitlines()) for f in (PACKAGE / "training").rglob("*.py")}
    assert sizes["loop.py"] <= 250, sizes["loop.py"]
    assert max(sizes.values()) <= 300, {k: v for k, v in sizes.items() if v > 300}
