"""Atomic artifacts: everything is written to a temporary path and renamed when complete.

A finished artifact directory carries a completion marker (``.complete``); readers check it, so a
directory left by a crash never looks finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from bertdistill.errors import UserError

FAILED_MARKER = "FAILED"
"""File in a model folder whose training run failed (collapsed at every evaluation, or a --strict check): its
verdict line. The folder is complete (``.complete``), so it can be inspected and replaced with --overwrite."""

COMPLETE_MARKER = ".complete"


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory that was finished (has the completion marker)."""
    return (Path(path) / COMPLETE_MARKER).is_file()


def mark_complete(path: str | os.PathLike) -> None:
    (Path(path) / COMPLETE_MARKER).write_text("complete\n")


def check_writable_parent(path: Path) -> None:
    parent = path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create folder {parent} ({exc.strerror})", str(path),
                        "choose an output path in a writable folder") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"folder {parent} is not writable", str(path),
                        "choose an output path in a writable folder")


def check_output_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse to replace an existing artifact unless ``overwrite`` is set; check the parent is writable.

    With ``overwrite`` only something bertdistill made is replaced (see ``check_replaceable``).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError("output path already exists", str(path),
                        "pass --overwrite to replace it, or choose another path")
    if overwrite:
        check_replaceable(path)
    check_writable_parent(path)
    return path


# -- what --overwrite may replace -----------------------------------------------------------------
# A folder is replaceable when it is a finished bertdistill artifact (``.complete``), an unfinished
# training run (only ``checkpoints/`` and hidden temporaries in it), or empty. A file is replaceable when
# bertdistill wrote it: every output file gets a hidden sidecar ``.<name>.bertdistill`` holding the
# file's size and modification time, so a file the user put there later (same name) is not mistaken
# for ours.

def written_marker(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.bertdistill")


def mark_written(path: str | os.PathLike, command: str = "") -> None:
    """Record that bertdistill wrote the file ``path`` (so a later ``--overwrite`` may replace it)."""
    path = Path(path)
    st = path.stat()
    marker = written_marker(path)
    marker.write_text(json.dumps({"written_by": f"bertdistill {command}".strip(), "size": st.st_size,
                                  "mtime_ns": st.st_mtime_ns}) + "\n", encoding="utf-8")


def is_bertdistill_file(path: str | os.PathLike) -> bool:
    """Whether the file ``path`` is one bertdistill wrote (its marker matches its size and time)."""
    path = Path(path)
    try:
        st = path.stat()
        info = json.loads(written_marker(path).read_text(encoding="utf-8"))
        return info.get("size") == st.st_size and info.get("mtime_ns") == st.st_mtime_ns
    except (OSError, ValueError, AttributeError):
        return False


def is_replaceable_dir(path: Path) -> bool:
    if is_complete(path):
        return True
    # An unfinished training run holds only its checkpoints and tracker logs (training.loop writes both).
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    return all(p.name in ("checkpoints", "logs") and p.is_dir() for p in entries)


def check_replaceable(path: str | os.PathLike) -> None:
    """Refuse ``--overwrite`` of something bertdistill did not make."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    fix = "choose another output path (--overwrite replaces only bertdistill outputs and empty folders)"
    if path.is_dir():
        if not is_replaceable_dir(path):
            raise UserError("output folder is not a bertdistill artifact (no .complete marker) and not empty",
                            str(path), fix)
    elif not is_bertdistill_file(path):
        raise UserError("output file was not written by bertdistill", str(path), fix)


def check_output_file(path: str | os.PathLike, overwrite: bool) -> Path:
    """An output file (--json, --markdown, --plot, predictions, sidecars): never a folder, never replaced
    without ``overwrite``, and with it only when bertdistill wrote it; the parent must be writable."""
    path = Path(path)
    if path.is_dir():
        raise UserError("output is a folder", str(path), "name an output file")
    if path.exists():
        if not overwrite:
            raise UserError("output file already exists", str(path),
                            "pass --overwrite to replace it, or choose another path")
        check_replaceable(path)
    check_writable_parent(path)
    return path


# -- outputs never touch inputs ---------------------------------------------------------------------

def input_paths(*values: Any) -> list[Path]:
    """The local paths among ``values`` (None, hub ids and ``NAME=PATH[:BACKEND]`` forms are handled)."""
    out: list[Path] = []
    for value in values:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out.extend(input_paths(*value))
            continue
        text = str(value)
        candidates = [text]
        if "=" in text:
            candidates.append(text.split("=", 1)[1])
        candidates += [c.rsplit(":", 1)[0] for c in list(candidates) if ":" in c]
        for cand in candidates:
            if cand and os.path.exists(cand):
                out.append(Path(cand))
                break
    return out


def check_not_inputs(outputs: Any, inputs: Any) -> None:
    """Refuse an output that equals, contains or sits inside an input (data file, model, label store)."""
    outs = [Path(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs]) if o is not None]
    for out in outs:
        o = out.resolve()
        for inp in input_paths(inputs):
            i = inp.resolve()
            if o == i:
                what = f"output is the input {inp}"
            elif o in i.parents:
                what = f"output folder contains the input {inp}"
            elif i in o.parents:
                what = f"output would sit inside the input {inp}"
            else:
                continue
            raise UserError(what, str(out), "choose an output path outside every input (data, models, label stores)")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside the output while writing it; a second writer gets one line with the holder's pid.

    The lock is an ``flock`` on the file, so it is released when the process ends, however it ends; a
    lock file left by a killed run does not block the next one.
    """
    import fcntl

    path = Path(path)
    check_writable_parent(path)
    lock_path = path.resolve().parent / f".{path.name}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, file_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"another bertdistill run (pid {holder}) is writing this output", str(path),
                            "wait for it to finish, or choose another output path") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporaries(path.resolve(), locked=True)  # only a lock holder writes them
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
    finally:
        os.close(fd)


# -- temporaries: named after their writer's pid, so a later run can tell a dead writer's leftovers ----------

def temp_prefix(path: str | os.PathLike, kind: str = "tmp") -> str:
    """Prefix of a temporary sibling of ``path`` written by this process: ``.<name>.<kind>-<pid>-``."""
    return f".{Path(path).name}.{kind}-{os.getpid()}-"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (someone else's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer_pid(leftover: str, kind: str) -> int | None:
    """The pid in ``.<name>.<kind>-<pid>-...`` (None for a name without one, e.g. from an older bertdistill)."""
    digits = leftover.rsplit(f".{kind}-", 1)[-1].split("-", 1)[0]
    return int(digits) if digits.isdigit() else None


def remove_stale_temporaries(path: str | os.PathLike, locked: bool = False) -> list[Path]:
    """Delete the temporary siblings of ``path`` (``.<name>.tmp-*``, ``.<name>.old-*``) whose writer is dead:
    what a run killed with SIGKILL (or a power cut) left behind. ``locked``: the caller holds ``path``'s
    output lock, so no other bertdistill is writing it and a leftover without a pid (an older version's) goes too.
    Returns what was removed."""
    import glob

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    removed = []
    if not parent.is_dir():
        return removed
    for kind in ("tmp", "old"):
        for leftover in parent.glob(f".{glob.escape(path.name)}.{kind}-*"):
            pid = _writer_pid(leftover.name, kind)
            if pid == os.getpid() or (pid is None and not locked) or (pid is not None and pid_alive(pid)):
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    leftover.unlink()
            removed.append(leftover)
    return removed


# -- permissions: what the umask allows, like any file the user makes ---------------------------------

def file_mode() -> int:
    return 0o666 & ~_umask()


def dir_mode() -> int:
    return 0o777 & ~_umask()


def apply_umask(root: str | os.PathLike) -> None:
    """Give ``root`` and everything under it the umask's permissions. Libraries write some files through
    ``mkstemp`` (safetensors' model.safetensors: 0600 whatever the umask); an artifact is shared like any
    folder the user makes."""
    root = Path(root)
    files, dirs = file_mode(), dir_mode()
    os.chmod(root, dirs if root.is_dir() else files)
    if root.is_dir():
        for base, subdirs, names in os.walk(root):
            for name in subdirs:
                if not os.path.islink(os.path.join(base, name)):
                    os.chmod(os.path.join(base, name), dirs)
            for name in names:
                if not os.path.islink(os.path.join(base, name)):
                    os.chmod(os.path.join(base, name), files)


def publish_dir(tmp: Path, path: Path) -> None:
    """Mark the finished directory ``tmp`` complete and rename it to ``path`` (replacing any old one)."""
    apply_umask(tmp)
    mark_complete(tmp)
    if path.exists():
        old = path.with_name(f"{temp_prefix(path, 'old')}{os.urandom(3).hex()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success mark it complete and rename it to ``path``.

    On failure the temporary directory is removed and ``path`` is left as it was; one left by a killed
    run is removed by the next run that writes ``path``.
    """
    path = check_output_dir(path, overwrite)
    remove_stale_temporaries(path.resolve())
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), dir=path.resolve().parent))
    os.chmod(tmp, dir_mode())  # mkdtemp makes it private; artifacts are shared like any folder
    try:
        yield tmp
        publish_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, binary: bool = False) -> Iterator[Any]:
    """An open file written through a temporary sibling (the umask's permissions), synced and renamed into
    place only when the block ends without an error."""
    path = Path(path)
    check_writable_parent(path)
    remove_stale_temporaries(path.resolve())
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=path.resolve().parent)
    try:
        os.fchmod(fd, file_mode())
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="\n")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file through a temporary sibling and rename it into place."""
    with atomic_file(path) as fh:
        fh.write(text)


# errno values that mean "the output could not be written" (disk full, quota, read-only, I/O, permission).
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}


def free_space(path: str | os.PathLike | None) -> str:
    """Free space on the disk holding ``path`` (its nearest existing folder), e.g. ``"1.2 GB"``; "?" if unknown."""
    p = Path(path or ".").absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = shutil.disk_usage(p).free
    except OSError:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if free < 1024 or unit == "TB":
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1024
    return "?"


_OUTPUTS: list[Path] = []


def note_outputs(paths) -> None:
    """Remember the running command's outputs: a write error that names no file is reported against the
    first of them (and the free space of its file system), not the current folder's."""
    for path in paths:
        if path is not None and Path(path) not in _OUTPUTS:
            _OUTPUTS.append(Path(path))


def forget_outputs() -> None:
    _OUTPUTS.clear()


# Libraries that write in C++ or Rust report a failed write in their own words; these are the ones seen
# (safetensors: "I/O error: File too large (os error 27)"; torch.save: "PytorchStreamWriter failed writing
# file data/0: file write failed"; pyarrow: "[errno 28] No space left on device").
_OS_ERROR_NUMBER = re.compile(r"(?:os error|errno|\[Errno) ?(\d+)", re.IGNORECASE)
_WRITE_FAILED = ("file write failed", "failed writing file", "PytorchStreamWriter failed")


def _write_failure(exc: BaseException) -> tuple[int | None, str | None, str] | None:
    """(errno, file name, reason) when ``exc`` (or what it was raised from) is a failed write; else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
            return exc.errno, exc.filename, os.strerror(exc.errno)
        text = str(exc)
        for match in _OS_ERROR_NUMBER.finditer(text):
            number = int(match.group(1))
            if number in _OUTPUT_ERRNOS:
                return number, getattr(exc, "filename", None), os.strerror(number)
        if "No space left on device" in text:
            return errno.ENOSPC, getattr(exc, "filename", None), "No space left on device"
        if any(phrase in text for phrase in _WRITE_FAILED):
            return None, None, "the write failed"
        exc = exc.__cause__ or exc.__context__
    return None


def os_error_as_user_error(exc: BaseException) -> UserError | None:
    """A failed write (disk full, quota, file size limit, read-only, I/O, permission), as an OSError or in a
    library's own words, as one user line naming the path and the free space of its file system; else None."""
    failure = _write_failure(exc)
    if failure is None:
        return None
    number, filename, reason = failure
    where = Path(filename) if filename else (_OUTPUTS[0] if _OUTPUTS else None)
    if number == errno.EFBIG:
        fix = ("a file size limit refuses the file (the file system's, or ulimit -f): choose an output on another "
               "disk, or raise the limit, and run the same command again")
    elif number in (errno.ENOSPC, errno.EDQUOT) or number is None:
        fix = "free some disk space (or choose an output on another disk) and run the same command again"
    else:
        fix = "check the output folder's permissions and disk, then run the same command again"
    return UserError(f"cannot write ({reason}; {free_space(where)} free on that disk)", str(where or "output"), fix)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN/inf: written as null, never as the invalid token NaN
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", str(path), "check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"not valid JSON ({exc})", str(path), "fix or regenerate the file") from None
    except RecursionError:
        raise UserError("not valid JSON here (nested thousands of levels deep)", str(path),
                        "fix or regenerate the file") from None


def hash_file(path: str | os.PathLike, digest=None):
    """``digest`` (a new sha256 by default) updated with the file's bytes, read in 4 MB blocks."""
    import hashlib

    digest = digest if digest is not None else hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, in hex."""
    return hash_file(path).hexdigest()


# -- whole columns of a datasets.Dataset ---------------------------------------------------------------------
# In datasets 5, ``ds[name]`` is a lazy Column: numpy.asarray or list() over it reads one row at a time through
# the formatter (about 30 µs a row: 0.6 s for a 10k-row label column, read again by every training run). These
# read the column as one formatted batch (the dataset's row order and selection kept).

def column_list(dataset, name: str) -> list:
    """Column ``name`` of ``dataset`` as a Python list."""
    return dataset.select_columns([name]).with_format(None)[:][name]


def column_array(dataset, name: str, dtype=None):
    """Column ``name`` of ``dataset`` as one numpy array (fixed-length list columns as 2-D and 3-D arrays)."""
    import numpy as np

    return np.asarray(dataset.select_columns([name]).with_format("numpy")[:][name], dtype=dtype)
