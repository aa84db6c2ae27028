"""Atomic artifacts: everything is written to a temporary path and renamed when complete.

A finished artifact directory carries a completion marker (``.complete``); readers check it, so a
directory left by a crash never looks finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
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
    """Refuse to replace an existing artifact unless ``overwrite`` is set; check the parent is writable."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError("output path already exists", str(path),
                        "pass --overwrite to replace it, or choose another path")
    check_writable_parent(path)
    return path


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
        return obj.item()
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", str(path), "check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"not valid JSON ({exc})", str(path), "fix or regenerate the file") from None
