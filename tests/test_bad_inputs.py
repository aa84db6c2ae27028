"""A corpus of malformed inputs across every subcommand: each gives one clear line (what, where, fix),
exit code 2, no traceback, and leaves nothing behind that looks like a finished result."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs
from test_finetune import make_store

MODEL_FILES = ("*.safetensors", "*.bin", "*.onnx", "meta.json", "training_record.json")


@dataclass
class Kit:
    """Inputs shared by every case (built once): tiny teachers, data, label stores, an ONNX export."""

    root: Path
    teacher: Path
    teacher3: Path
    base: Path
    train: Path
    other: Path
    store: Path
    store_no_layers: Path
    onnx: Path


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Kit:
    from bertdistill.export.exporter import ExportConfig, export_model

    root = tmp_path_factory.mktemp("bad_inputs")
    teacher = make_tiny_bert(root / "teacher", layers=2, hidden=32, seed=1)
    teacher3 = make_tiny_bert(root / "teacher3", layers=2, hidden=32, seed=2, label_names=("a", "b", "c"))
    base = make_tiny_bert(root / "base", layers=2, hidden=32, seed=3, classifier=False)
    train = write_toy_pairs(root / "train.tsv", n=32, seed=1)
    other = write_toy_pairs(root / "other.tsv", n=32, seed=2)
    store = make_store(root / "store", train, {"t": teacher})
    store_no_layers = make_store(root / "store0", train, {"t": teacher}, layers="none")
    onnx = root / "onnx"
    export_model(ExportConfig(model=str(teacher), output=str(onnx), parity_examples=8, batch_size=8))
    return Kit(root, teacher, teacher3, base, train, other, store, store_no_layers, onnx)


# -- bad inputs, built in the case's own folder ---------------------------------------------------

def text_file(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def empty_file(tmp: Path) -> Path:
    return text_file(tmp, "empty.tsv", "")


def header_only(tmp: Path) -> Path:
    return text_file(tmp, "header.tsv", "query\tpassage\tlabel\n")


def ragged(tmp: Path) -> Path:
    return text_file(tmp, "ragged.tsv", "query\tpassage\tlabel\nwhat is the sea\tthe sea is blue\t1\n"
                                        "what is the sun\tthe sun\n")


def not_utf8(tmp: Path) -> Path:
    return text_file(tmp, "latin1.tsv", b"query\tpassage\tlabel\nwhat is the sea\tthe sea is blue\t1\n"
                                        b"caf\xe9 au lait\tthe cat\t0\n")


def unknown_label(tmp: Path) -> Path:
    return text_file(tmp, "maybe.tsv", "query\tpassage\tlabel\nwhat is the sea\tthe sea is blue\t1\n"
                                       "what is the sun\tthe moon is cold\tmaybe\n")


def three_labels(tmp: Path) -> Path:
    rows = [f"what is the sea {i}\tthe sea is blue\t{i % 3}" for i in range(12)]
    return text_file(tmp, "three.tsv", "query\tpassage\tlabel\n" + "\n".join(rows) + "\n")


def one_candidate_per_query(tmp: Path) -> Path:
    """Ranking data whose queries never repeat and that names no query-id column: nothing to rank."""
    rows = [f"what is the {w}\tthe {w} is cold\t{i % 2}" for i, w in enumerate(("sea", "sun", "moon", "tree"))]
    return text_file(tmp, "unranked.tsv", "query\tpassage\tlabel\n" + "\n".join(rows) + "\n")


def not_a_model(tmp: Path) -> Path:
    folder = tmp / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model\n")
    return folder


def unwritable(tmp: Path, name: str) -> Path:
    """A path nobody can create: root ignores permission bits, so go under a regular file for root."""
    if os.geteuid() == 0:
        blocker = tmp / "file.txt"
        blocker.write_text("a file, not a folder\n")
        return blocker / name
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked / name


def unwritable_out(tmp: Path, name: str = "out") -> Path:
    """The path ``unwritable(tmp, name)`` returned."""
    return (tmp / "file.txt" / name) if os.geteuid() == 0 else (tmp / "locked" / name)


def existing(tmp: Path, name: str) -> Path:
    """An output path that already holds a user's earlier result (must be left as it was)."""
    path = tmp / name
    if "." in name:
        path.write_text("earlier result\n")
    else:
        path.mkdir()
        (path / "earlier.txt").write_text("earlier result\n")
    return path


def data_config_with_unknown_key(tmp: Path, data: Path) -> Path:
    return text_file(tmp, "data.json", json.dumps({"path": str(data), "text_column": "query"}))


def copy_store(kit: Kit, tmp: Path, source: Path | None = None) -> Path:
    return Path(shutil.copytree(source or kit.store, tmp / "store"))


def truncated_store(kit: Kit, tmp: Path) -> Path:
    store = copy_store(kit, tmp)
    arrow = next((store / "shards").rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    return store


def unfinished_store(kit: Kit, tmp: Path) -> Path:
    store = copy_store(kit, tmp)
    (store / ".complete").unlink()
    return store


def store_with_nan(kit: Kit, tmp: Path) -> Path:
    from bertdistill.teachers.store import LabelStore, write_label_store

    good = LabelStore.open(kit.store_no_layers)
    logits = good.logits("t").copy()
    logits[5, 1] = np.nan
    logits[9, 0] = np.inf
    meta = {k: good.meta[k] for k in ("label_names", "teachers", "data", "max_length")}
    return write_label_store(tmp / "store", meta, [logits], [None])


def onnx_without_tokenizer(kit: Kit, tmp: Path) -> Path:
    onnx = Path(shutil.copytree(kit.onnx, tmp / "onnx"))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (onnx / name).unlink(missing_ok=True)
    return onnx


def unfinished_onnx(kit: Kit, tmp: Path) -> Path:
    onnx = Path(shutil.copytree(kit.onnx, tmp / "onnx"))
    (onnx / ".complete").unlink()
    return onnx


def wide_student_config(tmp: Path) -> Path:
    return text_file(tmp, "student.json", json.dumps({"layers": 2, "width": 48, "heads": 2}))


def student_config_unknown_key(tmp: Path) -> Path:
    return text_file(tmp, "student.json", json.dumps({"layers": 2, "hidden_size": 48}))


# -- inputs for the safety cases (issue 19): outputs onto inputs, junk label sets, damaged stores --------

def copy_file(src: Path, tmp: Path, name: str | None = None) -> Path:
    return Path(shutil.copy(src, tmp / (name or src.name)))


def data_in_folder(kit: Kit, tmp: Path) -> Path:
    """A folder holding the user's data file (an output must never replace it)."""
    folder = tmp / "d"
    folder.mkdir()
    copy_file(kit.train, folder)
    return folder


def copy_model(kit: Kit, tmp: Path) -> Path:
    return Path(shutil.copytree(kit.teacher, tmp / "model"))


def header_as_data(tmp: Path) -> Path:
    """A file with a header, read with --columns: the header becomes row 1."""
    rows = [f"what is the sea {i}\tthe sea is blue\t{i % 2}" for i in range(12)]
    return text_file(tmp, "hdr.tsv", "query\tpassage\tlabel\n" + "\n".join(rows) + "\n")


def label_forms(tmp: Path) -> Path:
    rows = [f"what is the sea {i}\tthe sea is blue\t{('1', '1.0', '0')[i % 3]}" for i in range(12)]
    return text_file(tmp, "forms.tsv", "query\tpassage\tlabel\n" + "\n".join(rows) + "\n")


def nan_label(tmp: Path) -> Path:
    rows = [f"what is the sea {i}\tthe sea is blue\t{i % 2}" for i in range(12)] + ["what is the sun\tthe sun\tNaN"]
    return text_file(tmp, "nan.tsv", "query\tpassage\tlabel\n" + "\n".join(rows) + "\n")


def one_class(tmp: Path) -> Path:
    rows = [f"what is the sea {i}\tthe sea is blue\t1" for i in range(16)]
    return text_file(tmp, "one.tsv", "query\tpassage\tlabel\n" + "\n".join(rows) + "\n")


def store_short_shard_list(kit: Kit, tmp: Path) -> Path:
    """meta.json edited: the shard list and row count no longer match the data the store was made from."""
    store = copy_store(kit, tmp)
    meta = json.loads((store / "meta.json").read_text())
    meta["shards"][-1]["rows"] -= 4
    meta["num_rows"] -= 4
    (store / "meta.json").write_text(json.dumps(meta))
    return store


def store_extra_shard(kit: Kit, tmp: Path) -> Path:
    store = copy_store(kit, tmp)
    shutil.copytree(store / "shards" / "shard-00000", store / "shards" / "shard-00099")
    return store


def store_flipped_byte(kit: Kit, tmp: Path) -> Path:
    """Same size, other content: only the checksum can tell."""
    store = copy_store(kit, tmp)
    arrow = next((store / "shards").rglob("*.arrow"))
    data = bytearray(arrow.read_bytes())
    data[-100] ^= 0xFF
    arrow.write_bytes(bytes(data))
    return store


_HELD_LOCKS: list[int] = []


def locked(out: Path) -> Path:
    """Hold the output's writer lock, as a running bertdistill would."""
    import fcntl

    fd = os.open(out.parent / f".{out.name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b"4242\n", 0)
    _HELD_LOCKS.append(fd)
    return out


def _disk_full(target: str, name: str) -> Callable[[pytest.MonkeyPatch], None]:
    """Make ``target.name`` fail as a full disk does."""
    import errno
    import importlib

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        module = importlib.import_module(target)

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", "/tmp/out")

        monkeypatch.setattr(module, name, full)

    return patch


# -- commands --------------------------------------------------------------------------------------

TRAIN_FAST = ("--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--save-every", "1")


def label(kit, data, out, *extra, teacher=None):
    return ["label", "--teacher", f"t={teacher or kit.teacher}", "--data", data, "--max-length", "32",
            "--quiet", "--output", out, *extra]


def finetune(kit, data, out, *extra):
    return ["finetune", "--data", data, "--output", out, *TRAIN_FAST, *extra]


def distill(kit, data, store, out, *extra):
    return finetune(kit, data, out, "--labels", store, "--student-from", kit.teacher, *extra)


def pretrain(kit, data, store, out, *extra):
    return ["pretrain-student", "--data", data, "--labels", store, "--student-from", kit.teacher,
            "--output", out, *TRAIN_FAST, *extra]


def predict(kit, data, out, *extra, model=None):
    return ["predict", "--model", model or kit.teacher, "--data", data, "--max-length", "32", "--output", out,
            *extra]


def bench(kit, data, *extra, model=None):
    return ["bench", "--model", str(model or kit.teacher), "--data", data, "--repeats", "1", "--warmup", "0",
            "--max-length", "32", "--batch-sizes", "1,4", *extra]


def export(kit, out, *extra, model=None):
    return ["export", "--model", model or kit.teacher, "--output", out, "--parity-examples", "8",
            "--batch-size", "8", *extra]


@dataclass
class Case:
    """argv and output path for a bad input; ``needles`` must all appear in the error line."""

    build: Callable[[Kit, Path], tuple[list, Path | None]]
    needles: tuple[str, ...] = ()
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    file_size_limit: int | None = None
    """Run the command with RLIMIT_FSIZE at this many bytes: every write past it fails with EFBIG, in Python,
    C++ (torch.save) and Rust (safetensors) alike, as on a disk that fills up."""
    names_output: bool = False
    """The line must name the output path (a write error reported against the file system written to)."""


def _break_onnx_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exported graph computes something else than the PyTorch model: parity must fail."""
    import torch

    from bertdistill.export import exporter

    real_export = exporter._export_onnx

    def export_a_different_model(model, file, config):
        with torch.no_grad():
            model.classifier.bias += 0.5
        real_export(model, file, config)

    monkeypatch.setattr(exporter, "_export_onnx", export_a_different_model)


CASES: dict[str, Case] = {
    # label
    "label-empty-file": Case(lambda k, t: (label(k, empty_file(t), t / "out"), t / "out"), ("empty",)),
    "label-header-only": Case(lambda k, t: (label(k, header_only(t), t / "out"), t / "out"), ("no data rows",)),
    "label-missing-column": Case(lambda k, t: (label(k, k.train, t / "out", "--text-b", "answer"), t / "out"),
                                 ("'answer' not found",)),
    "label-not-utf8": Case(lambda k, t: (label(k, not_utf8(t), t / "out"), t / "out"), ("UTF-8", "line 3")),
    "label-ragged-rows": Case(lambda k, t: (label(k, ragged(t), t / "out"), t / "out"), ("line 3", "fields")),
    "label-unknown-label-value": Case(lambda k, t: (label(k, unknown_label(t), t / "out"), t / "out"),
                                      ("'maybe'",)),
    "label-labels-outside-model": Case(lambda k, t: (label(k, three_labels(t), t / "out"), t / "out"),
                                       ("'2'",)),
    "label-teacher-not-a-model": Case(lambda k, t: (label(k, k.train, t / "out", teacher=not_a_model(t)),
                                                    t / "out"), ("not a model directory",)),
    "label-max-length-above-positions": Case(
        lambda k, t: (label(k, k.train, t / "out", "--max-length", "512"), t / "out"), ("512", "positions")),
    "label-batch-size-0": Case(lambda k, t: (label(k, k.train, t / "out", "--batch-size", "0"), t / "out"),
                               ("--batch-size 0",)),
    "label-hidden-layers-not-in-teacher": Case(
        lambda k, t: (label(k, k.train, t / "out", "--hidden-layers", "3"), t / "out"), ("1..2",)),
    "label-onnx-teacher-without-tokenizer": Case(
        lambda k, t: (label(k, k.train, t / "out", "--backend", "onnx", teacher=onnx_without_tokenizer(k, t)),
                      t / "out"), ("tokenizer",)),
    "label-output-not-writable": Case(lambda k, t: (label(k, k.train, unwritable(t, "out")),
                                                    unwritable_out(t)), ("writable",)),
    "label-output-exists": Case(lambda k, t: (label(k, k.train, existing(t, "out")), t / "out"),
                                ("already exists", "--overwrite")),
    "label-data-config-unknown-key": Case(
        lambda k, t: (["label", "--teacher", k.teacher, "--data-config", data_config_with_unknown_key(t, k.train),
                       "--output", t / "out"], t / "out"), ("unknown config key 'text_column'",)),
    "label-ranking-without-groups": Case(
        lambda k, t: (label(k, one_candidate_per_query(t), t / "out", "--task", "ranking"), t / "out"),
        ("one candidate per group",)),
    "label-teachers-disagree-on-labels": Case(
        lambda k, t: (label(k, k.train, t / "out", "--teacher", f"u={k.teacher3}"), t / "out"), ("disagree",)),
    # corpus
    "corpus-empty-file": Case(lambda k, t: (["corpus", "--data", empty_file(t), "--output", t / "c.jsonl"],
                                            t / "c.jsonl"), ("empty",)),
    "corpus-missing-column": Case(
        lambda k, t: (["corpus", "--data", k.train, "--text-b", "answer", "--output", t / "c.jsonl"],
                      t / "c.jsonl"), ("'answer' not found",)),
    "corpus-output-exists": Case(lambda k, t: (["corpus", "--data", k.train, "--output", existing(t, "c.jsonl")],
                                               t / "c.jsonl"), ("already exists",)),
    "corpus-output-not-writable": Case(
        lambda k, t: (["corpus", "--data", k.train, "--output", unwritable(t, "c.jsonl")], unwritable_out(t,
                                                                                                         "c.jsonl")),
        ("writable",)),
    # pretrain-student
    "pretrain-store-from-other-data": Case(lambda k, t: (pretrain(k, k.other, k.store, t / "s"), t / "s"),
                                           ("other data",)),
    "pretrain-truncated-store": Case(lambda k, t: (pretrain(k, k.train, truncated_store(k, t), t / "s"), t / "s"),
                                     ("damaged",)),
    "pretrain-unfinished-store": Case(lambda k, t: (pretrain(k, k.train, unfinished_store(k, t), t / "s"),
                                                    t / "s"), ("unfinished",)),
    "pretrain-nan-logits": Case(lambda k, t: (pretrain(k, k.train, store_with_nan(k, t), t / "s"), t / "s"),
                                ("NaN/inf", "row 5")),
    "pretrain-store-is-a-model": Case(lambda k, t: (pretrain(k, k.train, k.teacher, t / "s"), t / "s"),
                                      ("not a label store",)),
    "pretrain-batch-size-0": Case(lambda k, t: (pretrain(k, k.train, k.store, t / "s", "--batch-size", "0"),
                                                t / "s"), ("--batch-size 0",)),
    "pretrain-output-not-writable": Case(
        lambda k, t: (pretrain(k, k.train, k.store, unwritable(t, "s")), unwritable_out(t, "s")), ("writable",)),
    # finetune
    "finetune-eval-given-twice": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--eval-data", k.train, "--eval-split", "validation"), t / "s"),
        ("eval data is given twice", "--eval-data, --eval-split")),
    "finetune-eval-split-of-a-file": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--eval-split", "validation"), t / "s"),
        ("--eval-split", "--eval-data FILE")),
    "finetune-eval-limit-0": Case(lambda k, t: (finetune(k, k.train, t / "s", "--eval-data", k.train,
                                                         "--eval-limit", "0"), t / "s"), ("--eval-limit 0",)),
    "finetune-header-only": Case(lambda k, t: (finetune(k, header_only(t), t / "s", "--model", k.teacher),
                                               t / "s"), ("no data rows",)),
    "finetune-unknown-label-value": Case(
        lambda k, t: (finetune(k, unknown_label(t), t / "s", "--model", k.base, "--label-names", "0,1"), t / "s"),
        ("'maybe'",)),
    "finetune-model-label-count-differs-from-store": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--labels", k.store, "--student-from", k.teacher3),
                      t / "s"), ("do not match",)),
    "finetune-store-from-other-data": Case(lambda k, t: (distill(k, k.other, k.store, t / "s"), t / "s"),
                                           ("other data",)),
    "finetune-truncated-store": Case(lambda k, t: (distill(k, k.train, truncated_store(k, t), t / "s"), t / "s"),
                                     ("damaged",)),
    "finetune-nan-logits": Case(lambda k, t: (distill(k, k.train, store_with_nan(k, t), t / "s"), t / "s"),
                                ("NaN/inf",)),
    "finetune-pkd-layers-not-in-store": Case(
        lambda k, t: (distill(k, k.train, k.store_no_layers, t / "s", "--pkd", "skip"), t / "s"),
        ("no stored [CLS] states",)),
    "finetune-student-wider-than-projection-allows": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--labels", k.store, "--student-from", k.teacher,
                               "--student-config", wide_student_config(t), "--pkd", "skip",
                               "--no-pkd-projection"), t / "s"), ("width 48", "--pkd-projection")),
    "finetune-student-config-unknown-key": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--student-from", k.teacher, "--student-config",
                               student_config_unknown_key(t)), t / "s"), ("unknown config key 'hidden_size'",)),
    "finetune-eval-labels-from-other-data": Case(
        lambda k, t: (distill(k, k.train, k.store, t / "s", "--eval-data", k.other, "--eval-labels", k.store),
                      t / "s"), ("other data", "eval data")),
    "finetune-max-length-above-positions": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--max-length", "512"), t / "s"),
        ("512", "positions")),
    "finetune-batch-size-0": Case(lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher,
                                                         "--batch-size", "0"), t / "s"), ("--batch-size 0",)),
    "finetune-model-not-a-model": Case(lambda k, t: (finetune(k, k.train, t / "s", "--model", not_a_model(t)),
                                                     t / "s"), ("not a model directory",)),
    "finetune-output-exists": Case(lambda k, t: (finetune(k, k.train, existing(t, "s"), "--model", k.teacher),
                                                 t / "s"), ("already exists", "--resume")),
    "finetune-output-not-writable": Case(
        lambda k, t: (finetune(k, k.train, unwritable(t, "s"), "--model", k.teacher), unwritable_out(t, "s")),
        ("writable",)),
    "finetune-ragged-eval-data": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--eval-data", ragged(t)), t / "s"),
        ("line 3", "fields")),
    # bench
    "bench-model-not-a-model": Case(lambda k, t: (bench(k, k.train, model=not_a_model(t)), None),
                                    ("not a model directory",)),
    "bench-batch-size-0": Case(lambda k, t: (bench(k, k.train, "--batch-sizes", "0,4"), None), ("batch sizes",)),
    "bench-onnx-without-tokenizer": Case(
        lambda k, t: (bench(k, k.train, "--json", t / "b.json", model=onnx_without_tokenizer(k, t)), t / "b.json"),
        ("tokenizer",)),
    "bench-labels-outside-model": Case(lambda k, t: (bench(k, three_labels(t), "--json", t / "b.json"),
                                                     t / "b.json"), ("labels",)),
    "bench-json-not-writable": Case(lambda k, t: (bench(k, k.train, "--json", unwritable(t, "b.json")),
                                                  unwritable_out(t, "b.json")), ("writable",)),
    "bench-max-length-above-positions": Case(
        lambda k, t: (bench(k, k.train, "--max-length", "512", "--json", t / "b.json"), t / "b.json"),
        ("512", "positions")),
    "bench-unknown-backend": Case(lambda k, t: (bench(k, k.train, model=f"{k.teacher}:tensorrt"), None),
                                  ("unknown backend 'tensorrt'",)),
    # export
    "export-unknown-int8-scales": Case(
        lambda k, t: (["export", "--model", k.teacher, "--int8", "--int8-scales", "row", "--output", t / "x"], t / "x"),
        ("'--int8-scales'", "'row' is not one of 'channel', 'tensor'")),
    "export-parity-failure": Case(lambda k, t: (export(k, t / "x"), t / "x"), ("parity check failed",),
                                  patch=_break_onnx_export),
    "export-output-exists": Case(lambda k, t: (export(k, existing(t, "x")), t / "x"), ("already exists",)),
    "export-base-encoder": Case(lambda k, t: (export(k, t / "x", model=k.base), t / "x"),
                                ("--allow-untrained-head",)),
    "export-not-a-model": Case(lambda k, t: (export(k, t / "x", model=not_a_model(t)), t / "x"),
                               ("not a model directory",)),
    "export-max-length-above-positions": Case(lambda k, t: (export(k, t / "x", "--max-length", "512"), t / "x"),
                                              ("512", "positions")),
    "export-output-not-writable": Case(lambda k, t: (export(k, unwritable(t, "x")), unwritable_out(t, "x")),
                                       ("writable",)),
    # predict
    "predict-onnx-without-tokenizer": Case(
        lambda k, t: (predict(k, k.train, t / "p.jsonl", model=onnx_without_tokenizer(k, t)), t / "p.jsonl"),
        ("tokenizer",)),
    "predict-unfinished-onnx": Case(
        lambda k, t: (predict(k, k.train, t / "p.jsonl", model=unfinished_onnx(k, t)), t / "p.jsonl"),
        ("unfinished",)),
    "predict-labels-outside-model": Case(lambda k, t: (predict(k, three_labels(t), t / "p.jsonl"), t / "p.jsonl"),
                                         ("'2'",)),
    "predict-ranking-without-groups": Case(
        lambda k, t: (predict(k, one_candidate_per_query(t), t / "p.jsonl", "--task", "ranking"), t / "p.jsonl"),
        ("one candidate per group",)),
    "predict-not-utf8": Case(lambda k, t: (predict(k, not_utf8(t), t / "p.jsonl"), t / "p.jsonl"), ("UTF-8",)),
    "predict-output-exists": Case(lambda k, t: (predict(k, k.train, existing(t, "p.jsonl")), t / "p.jsonl"),
                                  ("already exists",)),
    "predict-output-not-writable": Case(lambda k, t: (predict(k, k.train, unwritable(t, "p.jsonl")),
                                                      unwritable_out(t, "p.jsonl")), ("writable",)),
    "predict-batch-size-0": Case(lambda k, t: (predict(k, k.train, t / "p.jsonl", "--batch-size", "0"),
                                               t / "p.jsonl"), ("--batch-size 0",)),
    "predict-base-encoder": Case(lambda k, t: (predict(k, k.train, t / "p.jsonl", model=k.base), t / "p.jsonl"),
                                 ("base encoder",)),
}

CASES.update({
    # data: --json is a file output like any other
    "data-json-exists": Case(lambda k, t: (["data", "--data", k.train, "--no-tokens", "--json", existing(t, "s.json")],
                                           t / "s.json"), ("already exists", "--overwrite")),
    "data-json-is-the-data": Case(lambda k, t: (["data", "--data", copy_file(k.train, t), "--no-tokens", "--json",
                                                 t / "train.tsv", "--overwrite"], t / "train.tsv"), ("is the input",)),
    "data-json-overwrites-user-file": Case(
        lambda k, t: (["data", "--data", k.train, "--no-tokens", "--json", existing(t, "s.json"), "--overwrite"],
                      t / "s.json"), ("not written by bertdistill",)),
    "data-json-is-a-folder": Case(lambda k, t: (["data", "--data", k.train, "--no-tokens", "--json",
                                                 existing(t, "s")], t / "s"), ("folder",)),
    "data-header-read-as-data": Case(
        lambda k, t: (["data", "--data", header_as_data(t), "--columns", "query,passage,label", "--no-tokens"], None),
        ("row 1", "'label'", "header")),
    "data-label-forms-differ": Case(lambda k, t: (["data", "--data", label_forms(t), "--no-tokens"], None),
                                    ("'1'", "'1.0'", "row 2")),
    "data-nan-label": Case(lambda k, t: (["data", "--data", nan_label(t), "--no-tokens"], None), ("row 13", "'NaN'")),
    # bench: --json / --markdown / --plot
    "bench-json-exists": Case(lambda k, t: (bench(k, k.train, "--json", existing(t, "b.json")), t / "b.json"),
                              ("already exists",)),
    "bench-markdown-exists": Case(lambda k, t: (bench(k, k.train, "--markdown", existing(t, "b.md")), t / "b.md"),
                                  ("already exists",)),
    "bench-plot-exists": Case(lambda k, t: (bench(k, k.train, "--plot", existing(t, "b.png")), t / "b.png"),
                              ("already exists",)),
    "bench-json-is-the-data": Case(lambda k, t: (bench(k, copy_file(k.train, t), "--json", t / "train.tsv",
                                                       "--overwrite"), t / "train.tsv"), ("is the input",)),
    "bench-markdown-overwrites-user-file": Case(
        lambda k, t: (bench(k, k.train, "--markdown", existing(t, "b.md"), "--overwrite"), t / "b.md"),
        ("not written by bertdistill",)),
    "bench-plot-inside-model": Case(lambda k, t: (bench(k, k.train, "--plot", copy_model(k, t) / "b.png",
                                                        model=t / "model"), t / "model" / "b.png"),
                                    ("sit inside",)),
    "bench-same-file-twice": Case(lambda k, t: (bench(k, k.train, "--json", t / "b.out", "--markdown", t / "b.out"),
                                                t / "b.out"), ("same file",)),
    # label
    "label-output-holds-the-data": Case(lambda k, t: (label(k, data_in_folder(k, t) / "train.tsv", t / "d",
                                                            "--overwrite"), t / "d"), ("contains the input",)),
    "label-output-inside-teacher": Case(lambda k, t: (label(k, k.train, copy_model(k, t) / "labels",
                                                            teacher=t / "model"), t / "model" / "labels"),
                                        ("sit inside",)),
    "label-output-is-the-data": Case(lambda k, t: (label(k, copy_file(k.train, t), t / "train.tsv", "--overwrite"),
                                                   t / "train.tsv"), ("is the input",)),
    "label-overwrites-user-folder": Case(lambda k, t: (label(k, k.train, existing(t, "out"), "--overwrite"),
                                                       t / "out"), ("not a bertdistill artifact",)),
    "label-header-read-as-data": Case(
        lambda k, t: (label(k, header_as_data(t), t / "out", "--columns", "query,passage,label"), t / "out"),
        ("row 1", "'label'")),
    "label-nan-label": Case(lambda k, t: (label(k, nan_label(t), t / "out"), t / "out"), ("row 13", "'NaN'")),
    "label-second-writer": Case(lambda k, t: (label(k, k.train, locked(t / "out")), t / "out"), ("pid 4242",)),
    # export
    "export-output-is-the-model": Case(lambda k, t: (export(k, copy_model(k, t), "--overwrite", model=t / "model"),
                                                     t / "model"), ("is the input",)),
    "export-output-inside-model": Case(lambda k, t: (export(k, copy_model(k, t) / "onnx", model=t / "model"),
                                                     t / "model" / "onnx"), ("sit inside",)),
    "export-fp32-tolerance-nan": Case(lambda k, t: (export(k, t / "x", "--fp32-tolerance", "nan"), t / "x"),
                                      ("--fp32-tolerance nan",)),
    "export-fp32-tolerance-negative": Case(lambda k, t: (export(k, t / "x", "--fp32-tolerance", "-1"), t / "x"),
                                           ("--fp32-tolerance -1",)),
    "export-fp32-tolerance-inf": Case(lambda k, t: (export(k, t / "x", "--fp32-tolerance", "inf"), t / "x"),
                                      ("--fp32-tolerance inf",)),
    "export-int8-agreement-above-1": Case(lambda k, t: (export(k, t / "x", "--int8", "--int8-min-agreement", "2"),
                                                        t / "x"), ("between 0 and 1",)),
    "export-overwrites-user-folder": Case(lambda k, t: (export(k, existing(t, "x"), "--overwrite"), t / "x"),
                                          ("not a bertdistill artifact",)),
    "export-second-writer": Case(lambda k, t: (export(k, locked(t / "x")), t / "x"), ("pid 4242",)),
    # predict
    "predict-output-is-the-data": Case(lambda k, t: (predict(k, copy_file(k.train, t), t / "train.tsv", "--overwrite"),
                                                     t / "train.tsv"), ("is the input",)),
    "predict-output-inside-model": Case(lambda k, t: (predict(k, k.train, copy_model(k, t) / "p.jsonl",
                                                              model=t / "model"), t / "model" / "p.jsonl"),
                                        ("sit inside",)),
    "predict-overwrites-user-file": Case(lambda k, t: (predict(k, k.train, existing(t, "p.jsonl"), "--overwrite"),
                                                       t / "p.jsonl"), ("not written by bertdistill",)),
    "predict-config-sidecar-exists": Case(lambda k, t: (predict(k, k.train, t / "p.jsonl") if existing(
        t, "p.jsonl.config.json") else [], t / "p.jsonl.config.json"), ("already exists",)),
    "predict-label-forms-differ": Case(lambda k, t: (predict(k, label_forms(t), t / "p.jsonl"), t / "p.jsonl"),
                                       ("'1.0'",)),
    "predict-nan-label": Case(lambda k, t: (predict(k, nan_label(t), t / "p.jsonl"), t / "p.jsonl"), ("'NaN'",)),
    "predict-disk-full": Case(lambda k, t: (predict(k, k.train, t / "p.jsonl"), t / "p.jsonl"),
                              ("No space left on device", "free"), patch=_disk_full("bertdistill.predict", "_write_rows")),
    # corpus
    "corpus-output-is-the-data": Case(lambda k, t: (["corpus", "--data", copy_file(k.train, t), "--output",
                                                     t / "train.tsv", "--overwrite"], t / "train.tsv"),
                                      ("is the input",)),
    "corpus-overwrites-user-file": Case(lambda k, t: (["corpus", "--data", k.train, "--output", existing(t, "c.jsonl"),
                                                       "--overwrite"], t / "c.jsonl"), ("not written by bertdistill",)),
    "corpus-sidecar-exists": Case(lambda k, t: (["corpus", "--data", k.train, "--output", t / "c.jsonl"]
                                                if existing(t, "c.jsonl.meta.json") else [], t / "c.jsonl.meta.json"),
                                  ("already exists",)),
    # finetune
    "finetune-output-holds-the-data": Case(
        lambda k, t: (finetune(k, data_in_folder(k, t) / "train.tsv", t / "d", "--model", k.teacher, "--overwrite"),
                      t / "d"), ("contains the input",)),
    "finetune-output-is-the-store": Case(lambda k, t: (distill(k, k.train, copy_store(k, t), t / "store",
                                                               "--overwrite"), t / "store"), ("is the input",)),
    "finetune-overwrites-user-folder": Case(
        lambda k, t: (finetune(k, k.train, existing(t, "s"), "--model", k.teacher, "--overwrite"), t / "s"),
        ("not a bertdistill artifact",)),
    "finetune-one-class": Case(lambda k, t: (finetune(k, one_class(t), t / "s", "--model", k.teacher), t / "s"),
                               ("one class",)),
    "finetune-header-read-as-data": Case(
        lambda k, t: (finetune(k, header_as_data(t), t / "s", "--model", k.base, "--columns", "query,passage,label"),
                      t / "s"), ("row 1", "'label'", "header")),
    "finetune-label-forms-differ": Case(lambda k, t: (finetune(k, label_forms(t), t / "s", "--model", k.base),
                                                      t / "s"), ("'1'", "'1.0'")),
    "finetune-nan-label": Case(lambda k, t: (finetune(k, nan_label(t), t / "s", "--model", k.base), t / "s"),
                               ("'NaN'",)),
    "finetune-store-shard-list-edited": Case(lambda k, t: (distill(k, k.train, store_short_shard_list(k, t), t / "s"),
                                                           t / "s"), ("meta.json",)),
    "finetune-store-extra-shard": Case(lambda k, t: (distill(k, k.train, store_extra_shard(k, t), t / "s"), t / "s"),
                                       ("shard-00099",)),
    # pretrain-student
    "pretrain-store-checksum-fails": Case(lambda k, t: (pretrain(k, k.train, store_flipped_byte(k, t), t / "s"),
                                                        t / "s"), ("checksum",)),
    "pretrain-output-is-the-store": Case(lambda k, t: (pretrain(k, k.train, copy_store(k, t), t / "store",
                                                                "--overwrite"), t / "store"), ("is the input",)),
    "pretrain-output-inside-store": Case(lambda k, t: (pretrain(k, k.train, copy_store(k, t), t / "store" / "s"),
                                                       t / "store" / "s"), ("sit inside",)),
    # prune
    "prune-output-is-the-model": Case(lambda k, t: (["prune", "--model", copy_model(k, t), "--data", k.train,
                                                     "--output", t / "model", "--overwrite", "--quiet"], t / "model"),
                                      ("is the input",)),
})


# -- inputs for issue 30: formats read by their spec, settings that must agree, bounded configs ----------

def csv_unclosed_quote(tmp: Path) -> Path:
    """Line 3 opens a quoted field that the file never closes (RFC 4180)."""
    return text_file(tmp, "open.csv", 'query,passage,label\nwhat is the sea,the sea is blue,1\n'
                                      'what is the sun,"the sun\nis hot,0\nwhat is ice,ice is cold,1\n')


def csv_stray_quote(tmp: Path) -> Path:
    return text_file(tmp, "stray.csv", 'query,passage,label\nwhat is the sea,"the sea" is blue,1\n')


def csv_ragged_quoted_record(tmp: Path) -> Path:
    """A record of two fields spanning lines 3-4 (its quoted field holds a line break)."""
    return text_file(tmp, "ragged.csv", 'query,passage,label\nwhat is the sea,the sea is blue,1\n'
                                        '"what is\nthe sun","the sun is hot"\nwhat is ice,ice is cold,0\n')


def csv_not_utf8_in_quoted_field(tmp: Path) -> Path:
    return text_file(tmp, "latin1.csv", b'query,passage,label\nwhat is the sea,"the sea\nis caf\xe9",1\n')


def jsonl(tmp: Path, name: str, *lines: str) -> Path:
    return text_file(tmp, name, "\n".join(lines) + "\n")


ROW_A = '{"query": "what is the sea", "passage": "the sea is blue", "label": 1}'
ROW_B = '{"query": "what is the sun", "passage": "the sun is hot", "label": 0}'


def parquet_file(tmp: Path, name: str, **columns) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp / name
    pq.write_table(pa.table(columns), path)
    return path


def parquet_list_text(tmp: Path) -> Path:
    return parquet_file(tmp, "lists.parquet", query=[["what", "is", "the sea"], ["what is the sun"]],
                        passage=["the sea is blue", "the sun is hot"], label=[1, 0])


def parquet_list_label(tmp: Path) -> Path:
    return parquet_file(tmp, "lists.parquet", query=["what is the sea", "what is the sun"],
                        passage=["the sea is blue", "the sun is hot"], label=[[1], [0]])


def parquet_struct_text(tmp: Path) -> Path:
    return parquet_file(tmp, "struct.parquet", query=[{"text": "what is the sea"}, {"text": "what is the sun"}],
                        passage=["the sea is blue", "the sun is hot"], label=[1, 0])


def parquet_binary_text(tmp: Path) -> Path:
    return parquet_file(tmp, "binary.parquet", query=[b"what is the sea", b"what is the sun"],
                        passage=["the sea is blue", "the sun is hot"], label=[1, 0])


def store_with_weights(kit: Kit, tmp: Path, name: str, sha: str) -> Path:
    """A copy of the kit's store whose teacher records weights ``sha`` (meta.json is not checksummed)."""
    store = Path(shutil.copytree(kit.store, tmp / name))
    meta = json.loads((store / "meta.json").read_text())
    meta["teachers"][0]["weights_sha256"] = sha
    (store / "meta.json").write_text(json.dumps(meta))
    return store


def store_of_teacher_u(kit: Kit, tmp: Path) -> Path:
    return make_store(tmp / "eval-store", kit.train, {"u": kit.teacher}, layers="none")


def foreign_arrow_store(kit: Kit, tmp: Path, keep_own_checksums: bool) -> Path:
    """The kit's store with its shard's Arrow file swapped for another store's (same rows, other logits);
    meta.json's checksum list removed, or rewritten to match the foreign file."""
    from bertdistill.teachers.layout import shard_checksums
    from bertdistill.teachers.store import LabelStore

    good = LabelStore.open(kit.store)
    meta = {k: good.meta[k] for k in ("label_names", "teachers", "data", "max_length")}
    logits = np.random.default_rng(7).normal(size=(good.num_rows, 2)).astype(np.float32)
    hidden = np.asarray(good.dataset[good.cls_column("t")], dtype=np.float16)
    from bertdistill.teachers.store import write_label_store

    foreign = write_label_store(tmp / "foreign", meta, [logits], [hidden])
    store = copy_store(kit, tmp)
    shard = store / "shards" / "shard-00000"
    arrow = next(shard.glob("*.arrow"))
    shutil.copy(next((foreign / "shards" / "shard-00000").glob("*.arrow")), arrow)
    saved = json.loads((store / "meta.json").read_text())
    if keep_own_checksums:
        saved["shards"][0]["files"] = shard_checksums(shard)
    else:
        del saved["shards"][0]["files"]
        (shard / ".checksums.json").unlink()
    (store / "meta.json").write_text(json.dumps(saved))
    return store


def store_version(kit: Kit, tmp: Path, version) -> Path:
    store = copy_store(kit, tmp)
    meta = json.loads((store / "meta.json").read_text())
    meta["version"] = version
    (store / "meta.json").write_text(json.dumps(meta))
    return store


def billion_laughs(tmp: Path) -> Path:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{','.join('*' + prev for _ in range(9))}]")
    return text_file(tmp, "laughs.yaml", "\n".join(lines) + "\n")


def deep_yaml(tmp: Path) -> Path:
    return text_file(tmp, "deep.yaml", "train: " + "[" * 3000 + "]" * 3000 + "\n")


def deep_json(tmp: Path) -> Path:
    return text_file(tmp, "deep.json", '{"threads": ' + "[" * 100_000 + "]" * 100_000 + "}")


def huge_config(tmp: Path) -> Path:
    return text_file(tmp, "huge.yaml", "# padding\n" * 300_000 + "repeats: 1\n")


def config_long_value(tmp: Path) -> Path:
    return text_file(tmp, "long.yaml", f"max_length: '{'9' * 5000}'\n")


def config_file(tmp: Path, name: str, text: str) -> Path:
    return text_file(tmp, name, text)


CORPUS = ("corpus", "--quiet")


CASES.update({
    # CSV read by RFC 4180: quoted fields may hold line breaks; a broken quote is named by its line
    "data-csv-unclosed-quote": Case(lambda k, t: (["data", "--data", csv_unclosed_quote(t), "--no-tokens"], None),
                                    ("line 3", "never closed")),
    "label-csv-stray-quote": Case(lambda k, t: (label(k, csv_stray_quote(t), t / "out"), t / "out"),
                                  ("line 2", "not valid CSV")),
    "finetune-csv-ragged-quoted-record": Case(
        lambda k, t: (finetune(k, csv_ragged_quoted_record(t), t / "s", "--model", k.teacher), t / "s"),
        ("line 3 has 2 fields, expected 3",)),
    "predict-csv-not-utf8-in-quoted-field": Case(
        lambda k, t: (predict(k, csv_not_utf8_in_quoted_field(t), t / "p.jsonl"), t / "p.jsonl"),
        ("line 3 is not valid UTF-8",)),
    "corpus-csv-unclosed-quote": Case(lambda k, t: ([*CORPUS, "--data", csv_unclosed_quote(t), "--output",
                                                     t / "c.jsonl"], t / "c.jsonl"), ("line 3", "never closed")),
    # JSON Lines: the tool's own line, 1-based, naming the line
    "data-jsonl-malformed-line": Case(lambda k, t: (["data", "--data", jsonl(t, "d.jsonl", ROW_A, ROW_B, ROW_A[:-1]),
                                                     "--no-tokens"], None), ("line 3 is not valid JSON",)),
    "data-jsonl-malformed-after-blank-line": Case(
        lambda k, t: (["data", "--data", jsonl(t, "d.jsonl", ROW_A, "", ROW_B, '{"query": "x",'), "--no-tokens"], None),
        ("line 4 is not valid JSON",)),
    "label-jsonl-not-an-object": Case(
        lambda k, t: (label(k, jsonl(t, "d.jsonl", ROW_A, '["what is the sun", "the sun is hot", 0]'), t / "out"),
                      t / "out"), ("line 2 is a JSON list, not an object",)),
    "finetune-jsonl-key-twice": Case(
        lambda k, t: (finetune(k, jsonl(t, "d.jsonl", ROW_A, ROW_B[:-1] + ', "label": 1}'), t / "s", "--model",
                               k.teacher), t / "s"), ("line 2", "'label' appears twice")),
    "predict-jsonl-nan-token": Case(
        lambda k, t: (predict(k, jsonl(t, "d.jsonl", ROW_A.replace('"label": 1', '"label": NaN')), t / "p.jsonl"),
                      t / "p.jsonl"), ("line 1", "NaN is not a JSON value")),
    "data-json-array-record-not-object": Case(
        lambda k, t: (["data", "--data", text_file(t, "d.json", f"[{ROW_A},\n 3]"), "--no-tokens"], None),
        ("record 2 of the array",)),
    "corpus-jsonl-list-as-text": Case(
        lambda k, t: ([*CORPUS, "--data", jsonl(t, "d.jsonl", ROW_A, ROW_B.replace('"what is the sun"',
                                                                                  '["what", "is the sun"]')),
                       "--output", t / "c.jsonl"], t / "c.jsonl"), ("line 2", "'query'", "JSON list")),
    "bench-jsonl-number-as-text": Case(
        lambda k, t: (bench(k, jsonl(t, "d.jsonl", ROW_A.replace('"what is the sea"', "42"), ROW_B)), None),
        ("line 1", "'query'", "JSON number")),
    "finetune-jsonl-object-as-label": Case(
        lambda k, t: (finetune(k, jsonl(t, "d.jsonl", ROW_A, ROW_B.replace('"label": 0', '"label": {"gold": 0}')),
                               t / "s", "--model", k.teacher), t / "s"), ("line 2", "'label'", "JSON object")),
    "export-jsonl-malformed-parity-data": Case(
        lambda k, t: (export(k, t / "x", "--data", jsonl(t, "d.jsonl", ROW_A, "{oops}")), t / "x"),
        ("line 2 is not valid JSON",)),
    # parquet: typed columns checked against what a text or label column may be
    "data-parquet-list-as-text": Case(lambda k, t: (["data", "--data", parquet_list_text(t), "--no-tokens"], None),
                                      ("'query'", "list", "not text")),
    "finetune-parquet-list-as-label": Case(
        lambda k, t: (finetune(k, parquet_list_label(t), t / "s", "--model", k.teacher), t / "s"),
        ("'label'", "no class labels")),
    "label-parquet-struct-as-text": Case(lambda k, t: (label(k, parquet_struct_text(t), t / "out"), t / "out"),
                                         ("'query'", "struct", "not text")),
    "predict-parquet-binary-as-text": Case(
        lambda k, t: (predict(k, parquet_binary_text(t), t / "p.jsonl"), t / "p.jsonl"), ("'query'", "binary")),
    "predict-not-parquet": Case(lambda k, t: (predict(k, text_file(t, "d.parquet", "query,passage\na,b\n"),
                                                      t / "p.jsonl"), t / "p.jsonl"), ("not a readable parquet",)),
    # settings an artifact and the run that reads it must agree on
    "finetune-store-other-max-length": Case(lambda k, t: (distill(k, k.train, k.store, t / "s", "--max-length", "8"),
                                                          t / "s"), ("--max-length 64", "uses 8", "rows")),
    "pretrain-store-other-max-length": Case(lambda k, t: (pretrain(k, k.train, k.store, t / "s", "--max-length", "8"),
                                                          t / "s"), ("--max-length 64", "uses 8")),
    "finetune-eval-store-other-teacher": Case(
        lambda k, t: (distill(k, k.train, k.store, t / "s", "--eval-data", k.train, "--eval-labels",
                              store_of_teacher_u(k, t)), t / "s"), ("'t'",)),
    "finetune-eval-store-other-weights": Case(
        lambda k, t: (distill(k, k.train, store_with_weights(k, t, "a", "a" * 64), t / "s", "--eval-data", k.train,
                              "--eval-labels", store_with_weights(k, t, "b", "b" * 64)), t / "s"),
        ("'t'", "other weights")),
    # label stores: integrity checks that editing meta.json cannot switch off
    "pretrain-store-checksums-removed": Case(
        lambda k, t: (pretrain(k, k.train, foreign_arrow_store(k, t, keep_own_checksums=False), t / "s"), t / "s"),
        ("no checksums", "shard-00000")),
    "finetune-store-checksums-rewritten": Case(
        lambda k, t: (distill(k, k.train, foreign_arrow_store(k, t, keep_own_checksums=True), t / "s"), t / "s"),
        ("differ from the ones saved with the shard",)),
    "finetune-store-version-not-a-number": Case(lambda k, t: (distill(k, k.train, store_version(k, t, "2"), t / "s"),
                                                              t / "s"), ("version is '2'",)),
    # config files: bounded size, alias expansion and depth; echoed values clipped
    "finetune-config-billion-laughs": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--config", billion_laughs(t)), t / "s"), ("aliases expand",)),
    "label-config-nested-deep": Case(lambda k, t: (label(k, k.train, t / "out", "--config", deep_yaml(t)), t / "out"),
                                     ("nested more than",)),
    "predict-config-json-nested-deep": Case(
        lambda k, t: (predict(k, k.train, t / "p.jsonl", "--config", deep_json(t)), t / "p.jsonl"),
        ("nested more than",)),
    "bench-config-too-large": Case(lambda k, t: (bench(k, k.train, "--config", huge_config(t)), None), ("MB",)),
    "export-config-long-value-clipped": Case(
        lambda k, t: (export(k, t / "x", "--config", config_long_value(t)), t / "x"),
        ("config key 'max_length'", "characters in all")),
    "finetune-student-config-nested-deep": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--student-from", k.teacher, "--student-config", deep_json(t)),
                      t / "s"), ("nested thousands of levels deep",)),
    "corpus-data-config-nested-deep": Case(
        lambda k, t: ([*CORPUS, "--data-config", deep_json(t), "--output", t / "c.jsonl"], t / "c.jsonl"),
        ("nested more than",)),
    # numeric options checked when parsed
    "finetune-seed-negative": Case(lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--seed", "-1"),
                                                 t / "s"), ("--seed -1", "0 to 4,294,967,295")),
    "finetune-seed-past-2-32": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--seed", str(2**32)), t / "s"),
        ("--seed 4294967296",)),
    "pretrain-seed-negative": Case(lambda k, t: (pretrain(k, k.train, k.store, t / "s", "--seed", "-1"), t / "s"),
                                   ("--seed -1",)),
    "bench-seed-past-2-32": Case(lambda k, t: (bench(k, k.train, "--seed", str(2**40)), None), ("--seed",)),
    "corpus-seed-negative": Case(lambda k, t: ([*CORPUS, "--data", k.train, "--seed", "-3", "--output",
                                                t / "c.jsonl"], t / "c.jsonl"), ("--seed -3",)),
    "predict-threads-0": Case(lambda k, t: (predict(k, k.train, t / "p.jsonl", "--threads", "0"), t / "p.jsonl"),
                              ("--threads 0",)),
    "label-threads-negative": Case(lambda k, t: (label(k, k.train, t / "out", "--threads", "-1"), t / "out"),
                                   ("--threads -1",)),
    "export-threads-0": Case(lambda k, t: (export(k, t / "x", "--threads", "0"), t / "x"), ("--threads 0",)),
    "bench-threads-0": Case(lambda k, t: (bench(k, k.train, "--threads", "0"), None), ("--threads 0",)),
    "finetune-config-seed-negative": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--config",
                               config_file(t, "c.yaml", "train:\n  seed: -1\n")), t / "s"), ("'train.seed'", "-1")),
    "predict-config-threads-0": Case(
        lambda k, t: (predict(k, k.train, t / "p.jsonl", "--config", config_file(t, "c.yaml", "threads: 0\n")),
                      t / "p.jsonl"), ("'threads'",)),
    "finetune-max-length-4": Case(lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--max-length",
                                                         "4"), t / "s"), ("--max-length 4",)),
    "finetune-batch-size-overflows": Case(
        lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--batch-size", str(2**63)), t / "s"),
        ("--batch-size", "2,147,483,647")),
    "label-shard-rows-0": Case(lambda k, t: (label(k, k.train, t / "out", "--shard-rows", "0"), t / "out"),
                               ("--shard-rows 0",)),
    "pretrain-warmup-ratio-1": Case(lambda k, t: (pretrain(k, k.train, k.store, t / "s", "--warmup-ratio", "1"),
                                                  t / "s"), ("--warmup-ratio 1",)),
    # a write that fails (file system full, quota, size limit): one line naming the output and its free space
    # A run long enough not to be warned about its length (the first checkpoint write fails anyway).
    "finetune-write-fails": Case(lambda k, t: (finetune(k, k.train, t / "s", "--model", k.teacher, "--no-eval",
                                                        "--max-steps", "200"), t / "s"),
                                 ("cannot write", "free on that disk"), file_size_limit=16_000, names_output=True),
    "pretrain-write-fails": Case(lambda k, t: (pretrain(k, k.train, k.store, t / "s", "--max-length", "64",
                                                        "--max-steps", "200", "--eval-fraction", "0"), t / "s"),
                                 ("cannot write", "free on that disk"), file_size_limit=16_000, names_output=True),
    "export-write-fails": Case(lambda k, t: (export(k, t / "x"), t / "x"), ("cannot write", "free on that disk"),
                               file_size_limit=16_000, names_output=True),
    "predict-write-fails": Case(lambda k, t: (predict(k, k.train, t / "p.jsonl"), t / "p.jsonl"),
                                ("cannot write", "free on that disk"), file_size_limit=1_000, names_output=True),
    "label-write-fails": Case(lambda k, t: (label(k, k.train, t / "out"), t / "out"),
                              ("cannot write", "free on that disk"), file_size_limit=1_000),
    "corpus-write-fails": Case(lambda k, t: ([*CORPUS, "--data", k.train, "--output", t / "c.jsonl"], t / "c.jsonl"),
                               ("cannot write", "free on that disk"), file_size_limit=1_000, names_output=True),
    "bench-json-write-fails": Case(lambda k, t: (bench(k, k.train, "--json", t / "b.json"), t / "b.json"),
                                   ("cannot write", "free on that disk"), file_size_limit=500),
    "data-json-write-fails": Case(lambda k, t: (["data", "--data", k.train, "--no-tokens", "--json", t / "s.json"],
                                                t / "s.json"), ("cannot write", "free on that disk"),
                                  file_size_limit=100),
    "prune-write-fails": Case(lambda k, t: (["prune", "--model", k.teacher, "--data", k.train, "--max-length", "32",
                                             "--output", t / "p", "--quiet"], t / "p"),
                              ("cannot write", "free on that disk"), file_size_limit=16_000, names_output=True),
})


def _snapshot(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def assert_nothing_looks_finished(output: Path | None, before: dict | None) -> None:
    """A pre-existing output is untouched; otherwise nothing finished is there (no marker, no model files)."""
    from bertdistill.io import is_complete

    if output is None:
        return
    if before is not None:
        assert _snapshot(output) == before, f"{output} was changed"
        return
    if output.parent.is_dir():
        # A temporary sibling (atomic_dir, label's .partial) may remain, but never a finished one.
        for sibling in output.parent.glob(f".{output.name}*"):
            assert not is_complete(sibling), sibling
    # label's resumable work folder: left by a rejected command, it would block the corrected one
    assert not output.with_name(output.name + ".partial").exists()
    if not output.exists():
        return
    assert output.is_dir(), f"{output} was written"
    assert not is_complete(output), output
    found = [p for pattern in MODEL_FILES for p in output.rglob(pattern)]
    assert not found, found


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_clear_line(name, kit, tmp_path, monkeypatch):
    case = CASES[name]
    if case.patch is not None:
        case.patch(monkeypatch)
    argv, output = case.build(kit, tmp_path)
    before = _snapshot(output)
    threads = _torch_threads()
    try:
        with _file_size_limit(case.file_size_limit):
            result = run_cli(*argv)
    finally:
        _restore_threads(threads)
    line = assert_user_error(result, *case.needles)
    assert len(line) < 1500, f"{len(line)} characters"  # echoed input is clipped (errors.PART_WIDTH)
    if case.names_output:
        assert str(output) in line, line
    assert_nothing_looks_finished(output, before)


@contextlib.contextmanager
def _file_size_limit(limit: int | None):
    """Writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored), for this process, until the block ends."""
    if limit is None:
        yield
        return
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_corpus_covers_every_subcommand():
    commands = {name.split("-")[0] for name in CASES}
    assert {"label", "corpus", "pretrain", "finetune", "bench", "export", "predict"} <= commands
    assert {"data", "prune"} <= commands
    assert len(CASES) >= 180


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _restore_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
