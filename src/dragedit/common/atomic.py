"""Atomic file writes: a temp file in the target folder, fsync, then rename.

A reader never sees a half-written artifact: either the old file, the complete new one, or none.
A write that fails for a reason the user can fix (a full disk, a read-only file system, no permission)
becomes one `UserError` line that names the file and what to do; the temp file is removed.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


LOW_SPACE = 64 * 2 ** 20  # bytes; below this a failed write is reported as a full disk


def write_error(path: Path, exc: BaseException) -> Exception:
    """The one-line error for a failed write of `path`, or `exc` itself when it is not the user's to fix."""
    from .errors import UserError

    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or (not isinstance(exc, OSError) and _low_space(path.parent)):
        return UserError(f"no space left on device while writing {path}; free space and run the same command again")
    if code == errno.EROFS:
        return UserError(f"cannot write {path}: the file system is read-only; choose a folder you can write to")
    if code in (errno.EACCES, errno.EPERM):
        return UserError(f"cannot write {path}: permission denied; choose a folder you can write to")
    if isinstance(exc, OSError):
        return UserError(f"cannot write {path}: {exc.strerror or exc}")
    return exc


def _low_space(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp_path = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or (path.suffix or ".tmp") + ".part",
                                   dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give what a plain open() would
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:  # torch's writer reports a full disk as a RuntimeError
        err = write_error(path, exc)
        if err is exc:
            raise
        raise err from None
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Let `writer(tmp_path)` produce the file (for libraries that take a path), then commit it."""
    with atomic_path(path) as tmp:
        writer(tmp)
