"""``label``: run one or more teachers over a data set once and stream their outputs to a label store.

This module orchestrates: teachers are described and loaded by ``teachers.teacher``, their outputs
come from the shared inference path (``bertdistill.inference``), and ``teachers.writer`` owns the
store on disk (layout in ``teachers.layout``). The store is built shard by shard in
``<output>.partial/``; the same command run again after a crash skips the finished shards (the
resume key holds the config, data fingerprint and teacher weight hashes), a different command
refuses the partial directory unless ``overwrite``. Under ``accelerate launch`` each process labels
every world-size-th shard and the first one publishes the store.

Memory stays flat in the data size: the input rows wait in an Arrow file next to the output
(``.<output>.input-<pid>-*``) and are read one shard at a time, texts are tokenized per shard,
batches are length-sorted within a shard and put back in row order, and only one shard of outputs is
held at a time.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bertdistill.data.ondisk import OnDiskTaskData, load_task_data_on_disk
from bertdistill.data.sources import DataSpec
from bertdistill.data.tokenize import check_max_length
from bertdistill.errors import UserError
from bertdistill.interrupts import ctrl_c_at_safe_points
from bertdistill.io import check_output_dir, is_complete, output_lock, pid_alive, to_jsonable
from bertdistill.teachers.layout import ShardSpan, logits_column, shard_plan
from bertdistill.teachers.teacher import Teacher, describe_teachers
from bertdistill.teachers.writer import StoreWriter

# Options that change neither the stored numbers' meaning nor the row layout may differ on resume.
RESUME_IGNORED = ("overwrite", "threads", "quiet", "trust_remote_code", "device")


@dataclass
class LabelConfig:
    """Everything ``bertdistill label`` needs; saved as ``config`` in the store's meta.json."""

    teachers: list[str] = field(default_factory=list)
    """Teacher model directories, each ``PATH`` or ``NAME=PATH``."""
    data: DataSpec = field(default_factory=DataSpec)
    output: str = "labels"
    max_length: int = 128
    batch_size: int = 32
    hidden_layers: str = "none"
    """none | skip | last | all | a list such as 1,3,5 — [CLS] layers stored per teacher (float16)."""
    student_layers: int | None = None
    """Student depth M, needed by ``skip`` and ``last`` (see bertdistill.teachers.layers)."""
    backend: str = "torch"
    """torch | bf16 (autocast) | onnx | onnx-int8 (an exported teacher; no hidden states) | auto."""
    shard_rows: int = 10_000
    threads: int | None = None
    device: str = "auto"
    """auto | cpu | cuda | cuda:N (bertdistill.devices); under accelerate launch, auto is each process's GPU."""
    overwrite: bool = False
    quiet: bool = False
    trust_remote_code: bool = False
    """Allow model code from the hub (off unless --trust-remote-code)."""


def resume_key(config: LabelConfig, fingerprint: dict, teachers: list[Teacher]) -> dict:
    """What must match for a rerun to continue a partial store."""
    cfg = to_jsonable(config)
    for key in RESUME_IGNORED:
        cfg.pop(key, None)
    cfg.pop("output", None)
    return {"config": cfg, "data": {k: fingerprint[k] for k in ("content_sha256", "rows")},
            "teachers": [[t.name, t.weights_sha256, t.layers] for t in teachers]}


def label(config: LabelConfig) -> Path:
    """Label ``config.data`` with every teacher into the store at ``config.output``; returns its path."""
    output = Path(config.output)
    if config.shard_rows < 1:
        raise UserError(f"--shard-rows {config.shard_rows} must be at least 1", None, "use e.g. 10000")
    if config.batch_size < 1:
        raise UserError(f"--batch-size {config.batch_size} must be at least 1", None, "use --batch-size 32")
    if output.exists() and not config.overwrite:
        what = "label store already exists" if is_complete(output) else "output path already exists"
        raise UserError(what, str(output), "pass --overwrite to replace it, or choose another --output")
    check_output_dir(output, config.overwrite)
    from bertdistill.devices import parse_device

    parse_device(config.device)  # a misspelled device fails before any work
    # One writer per store (a second one gets the holder's pid); under accelerate launch the processes of
    # one run share the store, so only the first (global rank 0) holds the lock.
    first_process = os.environ.get("RANK", "0") in ("", "0")
    with output_lock(output) if first_process else contextlib.nullcontext():
        _label_locked(config, output)
    return output


def _label_locked(config: LabelConfig, output: Path) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)

    teachers = describe_teachers(config.teachers, config.backend, config.hidden_layers, config.student_layers,
                                 config.trust_remote_code)
    for t in teachers:  # before the partial store exists: a leftover would block the corrected command
        check_max_length(None, t.config, config.max_length)
    # The input rows wait on disk next to the output (not in /tmp, often a RAM disk), read a shard at a time.
    _remove_stale_rows_dirs(output)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.input-{os.getpid()}-") as rows_dir:
        data = _load_data(config.data, teachers[0].label_names, rows_dir)
        _label_loaded(config, output, teachers, data)


def _label_loaded(config: LabelConfig, output: Path, teachers: list[Teacher], data: OnDiskTaskData) -> None:
    from bertdistill.ui import err_console, progress

    label_names = _store_label_names(teachers[0].label_names, data)
    fingerprint = data.fingerprint()
    key = resume_key(config, fingerprint, teachers)
    rank, world, barrier = _distributed(config.device)
    writer = StoreWriter(output, [t.name for t in teachers])
    fresh = world == 1 and not writer.work.exists()
    if rank == 0:
        writer.start(key, config.overwrite)
    barrier()
    if rank != 0 and not writer.matches(key):
        raise UserError("processes disagree on the label run (different data or options)", str(writer.work),
                        "launch every process with the same command")

    plan = shard_plan(data.num_rows, config.shard_rows)
    mine = [span for span in plan if span.index % world == rank]
    todo = [span for span in mine if not writer.has_shard(span)]
    say = (lambda *a: None) if config.quiet or rank != 0 else err_console.print
    if len(todo) < len(mine):
        say(f"resuming {writer.work}: {len(mine) - len(todo)} of {len(mine)} shards already done")

    if todo:
        try:
            for t in teachers:
                t.load(config.threads, config.device)
                check_max_length(t.scorer.tokenizer, t.config, config.max_length)
        except BaseException:
            if fresh:  # nothing labeled yet: leave no partial store that would block a corrected command
                writer.discard()
            raise
        try:
            _label_shards(todo, teachers, data, writer, config, show=not config.quiet and rank == 0,
                          progress_factory=progress)
        except KeyboardInterrupt:
            if rank == 0:
                from bertdistill.interrupts import Stopped

                raise Stopped(f"the finished shards are kept in {writer.work}",
                              "run the same command again to continue from them") from None
            raise
    barrier()
    if rank == 0:
        _finish(writer, plan, teachers, data, label_names, fingerprint, config, say)
    barrier()


def _distributed(device: str = "auto"):
    """(rank, world size, barrier): several processes under ``accelerate launch`` (on one machine or
    several: the rank is global), else one."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return 0, 1, lambda: None
    from accelerate import PartialState

    from bertdistill.devices import resolve_device

    # Processes labeling on the CPU talk through gloo even where GPUs exist; on GPUs through NCCL.
    state = PartialState(cpu=resolve_device(device).type == "cpu")
    return state.process_index, state.num_processes, state.wait_for_everyone


def _remove_stale_rows_dirs(output: Path) -> None:
    """Delete input-row folders left by killed runs (their process is gone) for this output."""
    for path in output.parent.glob(f".{glob.escape(output.name)}.input-*-*"):
        pid = path.name.rsplit(".input-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _load_data(spec: DataSpec, teacher_labels: list[str], rows_dir: str) -> OnDiskTaskData:
    from bertdistill.models import generic_label_names

    # Generic teacher labels (LABEL_0, ...) say nothing about the order, so the data keeps its own.
    fixed = None if generic_label_names(teacher_labels) else teacher_labels
    return load_task_data_on_disk(spec, rows_dir, label_names=fixed)


def _store_label_names(teacher_labels: list[str], data: OnDiskTaskData) -> list[str]:
    from bertdistill.models import generic_label_names

    if data.has_labels and len(data.label_names) != len(teacher_labels):
        raise UserError(f"teachers have {len(teacher_labels)} labels {teacher_labels}, the data has "
                        f"{len(data.label_names)} {data.label_names}", data.spec.describe(),
                        "label data of the task the teachers were trained on")
    if generic_label_names(teacher_labels) and data.label_names:
        return list(data.label_names)
    return list(teacher_labels)


def _label_shards(todo: list[ShardSpan], teachers: list[Teacher], data: OnDiskTaskData, writer: StoreWriter,
                  config: LabelConfig, show: bool, progress_factory) -> None:
    rows_total = sum(span.rows for span in todo)
    n_teachers = len(teachers)
    started = time.perf_counter()
    bar = progress_factory("pairs_per_s") if show else contextlib.nullcontext()
    with ctrl_c_at_safe_points() as ctrl_c, bar as prog:
        check_ctrl_c = ctrl_c.check
        task = prog.add_task(f"label ({n_teachers} teacher{'s' * (n_teachers > 1)})",
                             total=rows_total * n_teachers, pairs_per_s="-") if show else None
        done = 0

        def on_batch(k: int) -> None:
            nonlocal done
            check_ctrl_c()
            done += k
            if show:
                rate = done / n_teachers / max(time.perf_counter() - started, 1e-9)
                prog.update(task, advance=k, pairs_per_s=f"{rate:.1f}")

        for span in todo:
            check_ctrl_c()
            rows = data.rows(span.start, span.end, ["text_a", "text_b"] if data.has_text_b else ["text_a"])
            outputs = [t.outputs(rows["text_a"], rows.get("text_b"), config.max_length, config.batch_size, on_batch)
                       for t in teachers]
            writer.write_shard(span, [o[0] for o in outputs], [o[1] for o in outputs])
            del outputs
        check_ctrl_c()  # pressed during the last shard: stop before publishing, as the user asked


def _finish(writer: StoreWriter, plan: list[ShardSpan], teachers: list[Teacher], data: OnDiskTaskData,
            label_names: list[str], fingerprint: dict, config: LabelConfig, say) -> None:
    from bertdistill.metrics import compute_metrics

    writer.check_shards(plan)
    infos = []
    for t in teachers:
        info = t.info()
        if data.has_labels:  # the shards are read back only here, one at a time (memory stays flat in rows)
            logits = writer.read_column(plan, logits_column(t.name))
            info["metrics"] = compute_metrics(data.kind, label_names, data.labels(), logits, data.group_codes)
        else:
            info["metrics"] = None
        infos.append(info)
    output = writer.publish(data.num_rows, plan, {
        "label_names": label_names, "max_length": config.max_length, "task": data.kind, "data": fingerprint,
        "teachers": infos, "config": to_jsonable(config)})

    if not config.quiet:
        _print_metrics(infos, data)
        say(f"wrote {output}: {data.num_rows} rows × {len(teachers)} teacher(s)"
            + "".join(f", {t.name} layers {t.layers}" for t in teachers if t.layers))


def _print_metrics(infos: list[dict], data: OnDiskTaskData) -> None:
    from bertdistill.ui import print_table

    if not data.has_labels:
        return
    keys = [k for k in ("accuracy", "f1", "f1_macro", "map", "mrr") if k in (infos[0]["metrics"] or {})]
    rows = [{"name": i["name"], **{k: i["metrics"][k] for k in keys}} for i in infos]
    print_table(rows, ["name"] + keys, title=f"teachers on {data.spec.describe()} ({data.num_rows} rows)")
