"""An interrupted label run (kill -9), started again with the same command, equals a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import make_tiny_bert, write_toy_pairs

from bertdistill.data.sources import DataSpec
from bertdistill.errors import UserError
from bertdistill.io import is_complete
from bertdistill.teachers.label import LabelConfig, label
from bertdistill.teachers.layout import partial_dir
from bertdistill.teachers.store import LabelStore


def label_cmd(teacher, data, out, *extra):
    return [sys.executable, "-m", "bertdistill", "label", "--teacher", f"t={teacher}", "--data", str(data),
            "--hidden-layers", "all", "--shard-rows", "100", "--batch-size", "8", "--threads", "1",
            "--quiet", "--output", str(out), *extra]


def same_command(teacher, data, out):
    return LabelConfig(teachers=[f"t={teacher}"], data=DataSpec(path=str(data)), output=str(out),
                       hidden_layers="all", shard_rows=100, batch_size=8, threads=1, quiet=True)


def test_killed_run_resumes_to_clean_result(tmp_path):
    teacher = make_tiny_bert(tmp_path / "teacher", layers=2, seed=4)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=1200, seed=5)
    out = tmp_path / "store"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first_shard = partial_dir(out) / "shards" / "shard-00000"

    proc = subprocess.Popen(label_cmd(teacher, data, out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 40
    while not first_shard.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first_shard.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no shard in time"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and not is_complete(partial_dir(out)), "run finished before it could be killed"
    done = sorted(p.name for p in (partial_dir(out) / "shards").glob("shard-*"))
    assert 1 <= len(done) < 12
    stamp = (first_shard / "state.json").stat().st_mtime_ns
    assert len(list(tmp_path.glob(".store.input-*"))) == 1  # the killed run's copy of the input rows

    # A different command must not take over the partial store.
    with pytest.raises(UserError, match="different command"):
        label(LabelConfig(teachers=[f"t={teacher}"], data=DataSpec(path=str(data)), output=str(out),
                          shard_rows=100, quiet=True))

    # The same command again, in this process (saves a second interpreter start; the config is identical).
    threads = torch.get_num_threads()
    try:
        label(same_command(teacher, data, out))
        assert (out / "shards" / "shard-00000" / "state.json").stat().st_mtime_ns == stamp  # not labeled again
        assert not partial_dir(out).exists()
        assert not list(tmp_path.glob(".store.input-*")), "the killed run's input rows were not cleaned up"
        clean = label(same_command(teacher, data, tmp_path / "clean"))
    finally:
        torch.set_num_threads(threads)
    resumed, reference = LabelStore.open(out), LabelStore.open(clean)
    assert resumed.num_rows == reference.num_rows == 1200
    np.testing.assert_array_equal(resumed.logits("t"), reference.logits("t"))
    rows = range(0, 1200, 7)
    np.testing.assert_array_equal(resumed.hidden("t", rows, [1, 2]), reference.hidden("t", rows, [1, 2]))
    strip = lambda m: {k: v for k, v in m.items() if k != "config"}  # noqa: E731
    assert strip(resumed.meta) == strip(reference.meta)


def test_ctrl_c_says_how_to_continue(tmp_path):
    teacher = make_tiny_bert(tmp_path / "teacher", layers=2, seed=4)
    # Many shards, so that a loaded machine cannot finish the run between two polls.
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=8000, seed=5)
    out = tmp_path / "store"
    first_shard = partial_dir(out) / "shards" / "shard-00000"
    # A shell starting the suite in the background (`cmd &`) makes it ignore SIGINT, and children inherit
    # that: give the child Ctrl-C back, as a terminal user has it.
    proc = subprocess.Popen(label_cmd(teacher, data, out), env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 40
    while not first_shard.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, "run finished before it could be interrupted"
    assert proc.returncode == 130
    assert "run the same command again to continue" in err.decode() and "Traceback" not in err.decode()
    lines = [line for line in err.decode().splitlines() if line.strip() and "━" not in line]  # progress bars aside
    assert lines[-1].startswith("interrupted: the finished shards are kept in "), err.decode()
    assert first_shard.exists() and not list(tmp_path.glob(".store.input-*"))


def test_ctrl_c_is_raised_at_the_loops_safe_points():
    """The first Ctrl-C only marks the run to stop (raised by check(), never inside a finalizer, where
    Python would drop it); a second one interrupts at once; the previous handler comes back."""
    from bertdistill.interrupts import InterruptedAgain, ctrl_c_at_safe_points

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with ctrl_c_at_safe_points() as ctrl_c:
            check = ctrl_c.check
            check()  # nothing pressed yet
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler has run: no exception here
            with pytest.raises(KeyboardInterrupt):
                check()
            with pytest.raises(InterruptedAgain):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # ignored Ctrl-C (a background job) stays ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with ctrl_c_at_safe_points() as ctrl_c:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and not ctrl_c.active
    finally:
        signal.signal(signal.SIGINT, previous)
