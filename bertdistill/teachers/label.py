"""``label``: run one or more teachers over a data set once and stream their outputs to a label store.

The store is built in ``<output>.partial/`` shard by shard (``shards/shard-NNNNN``, each saved under a
temporary name and renamed, so a shard directory that exists is complete). ``progress.json`` holds
the resume key (config, data fingerprint, teacher weight hashes): the same command run again after a
crash skips the finished shards; a different command refuses the partial directory unless
``overwrite``. When every shard is there, ``meta.json`` and the completion marker are written and the
directory is renamed to ``<output>``. The format is described in ``bertdistill.teachers.store``.

Memory stays flat in the data size: the input rows wait in an Arrow file next to the output and are
read one shard at a time, texts are tokenized per shard, batches are length-sorted within a shard and
put back in row order, and only one shard of outputs is held at a time.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bertdistill.data.ondisk import OnDiskTaskData, load_task_data_on_disk
from bertdistill.data.sources import DataSpec
from bertdistill.data.tokenize import MODEL_INPUTS, check_max_length, encode_texts, sorted_batches
from bertdistill.errors import UserError
from bertdistill.io import check_output_dir, is_complete, publish_dir, read_json, to_jsonable, write_json
from bertdistill.teachers.layers import parse_hidden_layers
from bertdistill.teachers.store import META_FILE, SHARDS_DIR, STORE_FORMAT, STORE_VERSION, shard_dataset

PROGRESS_FILE = "progress.json"
PARTIAL_SUFFIX = ".partial"
LABEL_BACKENDS = ("auto", "torch", "bf16", "onnx", "onnx-int8")
# Options that change neither the stored numbers' meaning nor the row layout may differ on resume.
RESUME_IGNORED = ("overwrite", "threads", "quiet", "trust_remote_code")


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
    overwrite: bool = False
    quiet: bool = False
    trust_remote_code: bool = False
    """Allow model code from the hub (off unless --trust-remote-code)."""


@dataclass
class Teacher:
    """A teacher as the label run sees it: identity, shape and (once loaded) its scorer."""

    name: str
    path: str
    backend: str
    config: object
    label_names: list[str]
    num_layers: int
    hidden_size: int
    layers: list[int]
    weights_sha256: str | None
    scorer: object = None

    def info(self) -> dict:
        tok = self.scorer.tokenizer if self.scorer is not None else None
        return {"name": self.name, "path": self.path, "backend": self.backend,
                "weights_sha256": self.weights_sha256,
                "tokenizer": None if tok is None else {"class": type(tok).__name__, "vocab_size": len(tok),
                                                       "name_or_path": getattr(tok, "name_or_path", None)},
                "model_type": getattr(self.config, "model_type", None), "num_layers": self.num_layers,
                "hidden_size": self.hidden_size, "stored_layers": list(self.layers)}


# ---------------------------------------------------------------------------------------------
# Teachers


def parse_teacher_specs(specs: list[str]) -> list[tuple[str, str]]:
    """``PATH`` or ``NAME=PATH`` → (name, path); default names are the directory names, made unique."""
    if not specs:
        raise UserError("no teacher given", None, "pass --teacher PATH (repeat it for several teachers)")
    parsed: list[tuple[str | None, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name and "/" not in name and not Path(spec).exists():
            parsed.append((name.strip(), path.strip()))
        else:
            parsed.append((None, spec))
    explicit = [n for n, _ in parsed if n]
    dup = next((n for n in explicit if explicit.count(n) > 1), None)
    if dup:
        raise UserError(f"teacher name {dup!r} is used twice", None, "give each --teacher NAME=PATH a unique name")
    out, used = [], set(explicit)
    for i, (name, path) in enumerate(parsed):
        if name is None:
            base = Path(path.rstrip("/")).name or f"t{i}"
            name = base if base not in used else f"{base}-{i}"
            if name in used:
                name = f"t{i}"
        used.add(name)
        out.append((name, path))
    return out


def describe_teachers(config: LabelConfig) -> list[Teacher]:
    """Read each teacher's config (not weights yet): labels, depth, width, stored layers, weight hash."""
    from bertdistill.inference import is_onnx_dir
    from bertdistill.models import config_label_names, is_classifier, load_config, resolve_model, weights_sha256

    if config.backend not in LABEL_BACKENDS:
        raise UserError(f"unknown backend {config.backend!r}", None, f"use one of: {', '.join(LABEL_BACKENDS)}")
    teachers = []
    for name, path in parse_teacher_specs(config.teachers):
        backend = config.backend
        if backend == "auto":
            backend = "onnx" if is_onnx_dir(path) else "torch"
        if backend.startswith("onnx"):
            if not is_onnx_dir(path):
                raise UserError(f"teacher {name!r} is not an exported ONNX directory (no model.onnx)", path,
                                "export it with bertdistill export, or use --backend torch")
            if (config.hidden_layers or "none").lower() != "none":
                raise UserError("[CLS] hidden states cannot be read from an ONNX teacher", path,
                                "use --backend torch or bf16 with --hidden-layers, or --hidden-layers none")
            model_config = load_config(path, option="--teacher")
        else:
            path = resolve_model(path, option="--teacher")
            model_config = load_config(path, config.trust_remote_code, option="--teacher")
            if not is_classifier(model_config):
                raise UserError(f"teacher {name!r} has no trained classification head (a base encoder)", path,
                                "fine-tune it first with bertdistill finetune, then label with the result")
        num_layers = int(getattr(model_config, "num_hidden_layers", 0) or 0)
        hidden_size = int(getattr(model_config, "hidden_size", 0) or 0)
        layers = parse_hidden_layers(config.hidden_layers, num_layers, config.student_layers, f"teacher {name!r}")
        teachers.append(Teacher(name, str(path), backend, model_config, config_label_names(model_config),
                                num_layers, hidden_size, layers,
                                weights_sha256(path) if Path(path).is_dir() else None))
    first = teachers[0]
    for t in teachers[1:]:
        if t.label_names != first.label_names:
            raise UserError(f"teachers disagree on labels: {first.name} has {first.label_names}, "
                            f"{t.name} has {t.label_names}", t.path,
                            "label with teachers trained on the same task and label order")
    return teachers


def load_teacher(teacher: Teacher, threads: int | None, trust_remote_code: bool = False) -> None:
    from bertdistill.inference import load_scorer

    teacher.scorer = load_scorer(teacher.path, teacher.backend, threads, trust_remote_code=trust_remote_code)


def teacher_outputs(teacher: Teacher, text_a: list[str], text_b: list[str] | None, max_length: int,
                    batch_size: int, on_batch: Callable[[int], None] | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (n, C) float32 and [CLS] states (n, layers, H) float16 of one teacher, in input order."""
    scorer = teacher.scorer
    tokens, lengths = encode_compact(scorer.tokenizer, text_a, text_b, max_length)
    n = len(lengths)
    logits = np.zeros((n, len(teacher.label_names)), dtype=np.float32)
    hidden = np.zeros((n, len(teacher.layers), teacher.hidden_size), dtype=np.float16) if teacher.layers else None
    pad = scorer.tokenizer.pad_token_id or 0
    for idx in sorted_batches(lengths, batch_size):
        batch = pad_rows(tokens, lengths, idx, pad)
        if teacher.layers:
            lg, hd = _torch_forward_with_cls(scorer.torch_model, batch, teacher.layers, teacher.backend == "bf16")
            hidden[idx] = hd
        else:
            lg = scorer.logits(batch)
        logits[idx] = lg
        if on_batch:
            on_batch(len(idx))
    return logits, hidden


def encode_compact(tokenizer, text_a: list[str], text_b: list[str] | None, max_length: int,
                   chunk: int = 1_000) -> tuple[dict[str, list[np.ndarray]], np.ndarray]:
    """Token arrays per row (int32) and lengths, tokenized in chunks.

    A tokenizer's full output for a whole shard (Python ints, offsets, token strings) would cost
    hundreds of MB; chunking bounds it and compact arrays keep the shard's tokens small.
    """
    # Models such as DistilBERT take no token_type_ids: keep only what the tokenizer says the model reads.
    accepted = set(getattr(tokenizer, "model_input_names", None) or MODEL_INPUTS)
    tokens: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(text_a), chunk):
        enc = encode_texts(tokenizer, text_a[start:start + chunk],
                           None if text_b is None else text_b[start:start + chunk], max_length)
        for key, rows in enc.items():
            if key in accepted:
                tokens.setdefault(key, []).extend(np.asarray(r, dtype=np.int32) for r in rows)
        del enc
    lengths = np.fromiter((len(r) for r in tokens["input_ids"]), dtype=np.int64, count=len(text_a))
    return tokens, lengths


def pad_rows(tokens: dict[str, list[np.ndarray]], lengths: np.ndarray, idx: list[int],
             pad_token_id: int) -> dict[str, np.ndarray]:
    """Rows ``idx`` padded to their longest, as int64 arrays (attention mask 0 on padding)."""
    longest = int(lengths[idx].max())
    out = {}
    for key, rows in tokens.items():
        arr = np.full((len(idx), longest), pad_token_id if key == "input_ids" else 0, dtype=np.int64)
        for j, i in enumerate(idx):
            arr[j, :lengths[i]] = rows[i]
        out[key] = arr
    return out


@torch.inference_mode()
def _torch_forward_with_cls(model, batch: dict[str, torch.Tensor], layers: list[int], bf16: bool):
    inputs = {k: torch.from_numpy(v) for k, v in batch.items() if k in MODEL_INPUTS}
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        out = model(**inputs, output_hidden_states=True)
    cls = torch.stack([out.hidden_states[layer][:, 0, :] for layer in layers], dim=1)
    return out.logits.float().numpy(), cls.float().numpy().astype(np.float16)


# ---------------------------------------------------------------------------------------------
# The run


def partial_dir(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + PARTIAL_SUFFIX)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def resume_key(config: LabelConfig, fingerprint: dict, teachers: list[Teacher]) -> dict:
    """What must match for a rerun to continue a partial store."""
    cfg = to_jsonable(config)
    for key in RESUME_IGNORED:
        cfg.pop(key, None)
    cfg.pop("output", None)
    return {"config": cfg, "data": {k: fingerprint[k] for k in ("content_sha256", "rows")},
            "teachers": [[t.name, t.weights_sha256, t.layers] for t in teachers]}


def _key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _distributed():
    """(rank, world size, barrier): several processes under ``accelerate launch``, else one."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return 0, 1, lambda: None
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes, state.wait_for_everyone


def _prepare_partial(work: Path, key: dict, overwrite: bool) -> None:
    digest = _key_digest(key)
    if work.exists():
        progress_file = work / PROGRESS_FILE
        same = False
        if progress_file.is_file():
            with contextlib.suppress(UserError, KeyError, TypeError):
                same = read_json(progress_file)["key_sha256"] == digest
        if not same:
            if not overwrite:
                raise UserError("an unfinished label store made by a different command is here", str(work),
                                "rerun the original command to finish it, or pass --overwrite to discard it")
            shutil.rmtree(work)
    (work / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    for leftover in (work / SHARDS_DIR).glob(".shard-*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a shard a killed run was still writing
    if not (work / PROGRESS_FILE).is_file():
        write_json(work / PROGRESS_FILE, {"key_sha256": digest, "key": key})


def _shard_ok(path: Path, rows: int) -> bool:
    import datasets

    if not path.is_dir():
        return False
    try:
        return len(datasets.Dataset.load_from_disk(str(path))) == rows
    except Exception:  # damaged shard: label it again
        return False


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
    check_output_dir(output, overwrite=True)
    if config.threads:
        torch.set_num_threads(config.threads)

    teachers = describe_teachers(config)
    for t in teachers:  # before the partial store exists: a leftover would block the corrected command
        check_max_length(None, t.config, config.max_length)
    # The input rows wait on disk next to the output (not in /tmp, often a RAM disk), read a shard at a time.
    _remove_stale_rows_dirs(output)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.input-{os.getpid()}-") as rows_dir:
        data = _load_data(config.data, teachers[0].label_names, rows_dir)
        _label_loaded(config, output, teachers, data)
    return output


def _label_loaded(config: LabelConfig, output: Path, teachers: list[Teacher], data: OnDiskTaskData) -> None:
    from bertdistill.ui import err_console, progress

    label_names = _store_label_names(teachers[0].label_names, data)
    fingerprint = data.fingerprint()
    key = resume_key(config, fingerprint, teachers)
    rank, world, barrier = _distributed()
    work = partial_dir(output)
    fresh = world == 1 and not work.exists()
    if rank == 0:
        _prepare_partial(work, key, config.overwrite)
    barrier()
    if rank != 0 and read_json(work / PROGRESS_FILE).get("key_sha256") != _key_digest(key):
        raise UserError("processes disagree on the label run (different data or options)", str(work),
                        "launch every process with the same command")

    n = data.num_rows
    plan = [(i, start, min(start + config.shard_rows, n)) for i, start in enumerate(range(0, n, config.shard_rows))]
    mine = [p for p in plan if p[0] % world == rank]
    todo = [p for p in mine if not _shard_ok(work / SHARDS_DIR / shard_name(p[0]), p[2] - p[1])]
    say = (lambda *a: None) if config.quiet or rank != 0 else err_console.print
    if len(todo) < len(mine):
        say(f"resuming {work}: {len(mine) - len(todo)} of {len(mine)} shards already done")

    if todo:
        try:
            for t in teachers:
                load_teacher(t, config.threads, config.trust_remote_code)
                check_max_length(t.scorer.tokenizer, t.config, config.max_length)
        except BaseException:
            if fresh:  # nothing labeled yet: leave no partial store that would block a corrected command
                shutil.rmtree(work, ignore_errors=True)
            raise
        try:
            _label_shards(todo, teachers, data, work, config, show=not config.quiet and rank == 0,
                          progress_factory=progress)
        except KeyboardInterrupt:
            if rank == 0:
                err_console.print(f"stopped; the finished shards are kept in {work}: run the same command "
                                  "again to continue from them", soft_wrap=True)
            raise
    barrier()
    if rank == 0:
        _finish(work, output, plan, teachers, data, label_names, fingerprint, config, say)
    barrier()


def _remove_stale_rows_dirs(output: Path) -> None:
    """Delete input-row folders left by killed runs (their process is gone) for this output."""
    for path in output.parent.glob(f".{glob.escape(output.name)}.input-*-*"):
        pid = path.name.rsplit(".input-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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


def _label_shards(todo, teachers: list[Teacher], data: OnDiskTaskData, work: Path, config: LabelConfig,
                  show: bool, progress_factory) -> None:
    rows_total = sum(end - start for _, start, end in todo)
    n_teachers = len(teachers)
    started = time.perf_counter()
    bar = progress_factory("pairs_per_s") if show else contextlib.nullcontext()
    with bar as prog:
        task = prog.add_task(f"label ({n_teachers} teacher{'s' * (n_teachers > 1)})",
                             total=rows_total * n_teachers, pairs_per_s="-") if show else None
        done = 0

        def on_batch(k: int) -> None:
            nonlocal done
            done += k
            if show:
                rate = done / n_teachers / max(time.perf_counter() - started, 1e-9)
                prog.update(task, advance=k, pairs_per_s=f"{rate:.1f}")

        for index, start, end in todo:
            rows = data.rows(start, end, ["text_a", "text_b"] if data.has_text_b else ["text_a"])
            text_a = rows["text_a"]
            text_b = rows.get("text_b")
            outputs = [teacher_outputs(t, text_a, text_b, config.max_length, config.batch_size, on_batch)
                       for t in teachers]
            shard = shard_dataset(np.arange(start, end), [o[0] for o in outputs], [o[1] for o in outputs])
            final = work / SHARDS_DIR / shard_name(index)
            tmp = work / SHARDS_DIR / f".{shard_name(index)}.tmp-{os.getpid()}"
            shard.save_to_disk(str(tmp))
            if final.exists():  # a damaged copy found on resume
                shutil.rmtree(final)
            os.replace(tmp, final)
            del shard, outputs


def _finish(work: Path, output: Path, plan, teachers: list[Teacher], data: OnDiskTaskData, label_names: list[str],
            fingerprint: dict, config: LabelConfig, say) -> None:
    import datasets

    from bertdistill.metrics import compute_metrics

    parts = []
    for index, start, end in plan:
        path = work / SHARDS_DIR / shard_name(index)
        if not _shard_ok(path, end - start):
            raise UserError(f"shard {shard_name(index)} is missing after labeling", str(work),
                            "run the same command again to label it")
        parts.append(datasets.Dataset.load_from_disk(str(path)).with_format("numpy"))

    infos = []
    for t_index, t in enumerate(teachers):
        info = t.info() if t.scorer is not None else _info_without_scorer(t)
        if data.has_labels:
            logits = np.concatenate([np.asarray(p[f"logits_{t_index}"], dtype=np.float32) for p in parts])
            groups = data.group_codes
            labels = data.labels()
            info["metrics"] = compute_metrics(data.kind, label_names, labels, logits, groups)
        else:
            info["metrics"] = None
        infos.append(info)
    meta = {"format": STORE_FORMAT, "version": STORE_VERSION, "num_rows": data.num_rows,
            "label_names": label_names, "max_length": config.max_length, "task": data.kind, "data": fingerprint,
            "teachers": infos,
            "shards": [{"name": shard_name(i), "start": s, "rows": e - s} for i, s, e in plan],
            "config": to_jsonable(config)}
    write_json(work / META_FILE, meta)
    publish_dir(work, output)
    # Removed only now: a run killed before the rename can still be resumed by the same command.
    (output / PROGRESS_FILE).unlink(missing_ok=True)

    if not config.quiet:
        _print_metrics(infos, data)
        say(f"wrote {output}: {data.num_rows} rows × {len(teachers)} teacher(s)"
            + "".join(f", {t.name} layers {t.layers}" for t in teachers if t.layers))


def _info_without_scorer(teacher: Teacher) -> dict:
    """Every shard was already done (resume after the last shard): load the tokenizer for provenance."""
    from bertdistill.models import load_tokenizer

    info = teacher.info()
    with contextlib.suppress(UserError):
        tok = load_tokenizer(teacher.path, option="--teacher")
        info["tokenizer"] = {"class": type(tok).__name__, "vocab_size": len(tok),
                             "name_or_path": getattr(tok, "name_or_path", None)}
    return info


def _print_metrics(infos: list[dict], data: OnDiskTaskData) -> None:
    from bertdistill.ui import print_table

    if not data.has_labels:
        return
    keys = [k for k in ("accuracy", "f1", "f1_macro", "map", "mrr") if k in (infos[0]["metrics"] or {})]
    rows = [{"name": i["name"], **{k: i["metrics"][k] for k in keys}} for i in infos]
    print_table(rows, ["name"] + keys, title=f"teachers on {data.spec.describe()} ({data.num_rows} rows)")
