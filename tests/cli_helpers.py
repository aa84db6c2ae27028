"""Run the bertdistill CLI in-process and capture what a user would see."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    from bertdistill.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_user_error(result: CliResult, *needles: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback, and the line mentions every needle."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    line = lines[0]
    assert line.startswith("error: ")
    assert "fix:" in line, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line
