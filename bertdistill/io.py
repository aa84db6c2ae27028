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
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from bertdistill.errors import UserError

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
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"another bertdistill run (pid {holder}) is writing this output", str(path),
                            "wait for it to finish, or choose another output path") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
    finally:
        os.close(fd)


def publish_dir(tmp: Path, path: Path) -> None:
    """Mark the finished directory ``tmp`` complete and rename it to ``path`` (replacing any old one)."""
    mark_complete(tmp)
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success mark it complete and rename it to ``path``.

    On failure the temporary directory is removed and ``path`` is left as it was.
    """
    path = check_output_dir(path, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.resolve().parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; artifacts are shared like any folder
    try:
        yield tmp
        publish_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file through a temporary sibling and rename it into place."""
    path = Path(path)
    check_writable_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.resolve().parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def os_error_as_user_error(exc: BaseException) -> UserError | None:
    """An OS error while writing (disk full, quota, read-only, I/O, permission) as one user line; else None."""
    if not isinstance(exc, OSError):
        return None
    no_space = "No space left on device" in str(exc)
    if exc.errno not in _OUTPUT_ERRNOS and not no_space:
        return None
    where = exc.filename or "output"
    reason = exc.strerror or ("No space left on device" if no_space else str(exc))
    fix = ("free some disk space (or choose an output on another disk) and run the same command again"
           if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or no_space
           else "check the output folder's permissions and disk, then run the same command again")
    return UserError(f"cannot write ({reason}; {free_space(exc.filename)} free on that disk)", str(where), fix)


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
