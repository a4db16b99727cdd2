"""The user's photo is never overwritten by accident.

An output path that resolves to the input photo (the same spelling, `..` segments, a symbolic link, a
hard link) is refused unless the user says `--overwrite`; even then the original is kept beside it
as `PHOTO.orig` first (an existing `.orig`, the older original, is never replaced).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from dragedit.common import atomic
from .errors import WouldOverwrite


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when both paths name one file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: they cannot be the same file
        return False


def backup_path(photo: str | os.PathLike) -> Path:
    p = Path(photo)
    return p.with_name(p.name + ".orig")


def guard_original(output: str | os.PathLike, photo: str | os.PathLike, overwrite: bool = False) -> Path | None:
    """Refuse writing `output` over `photo`; with `overwrite`, keep `PHOTO.orig` first and return its path."""
    if not same_file(output, photo):
        return None
    if not overwrite:
        raise WouldOverwrite(f"the output {output} is the input photo {photo}; choose another output path "
                             "(or allow replacing it, keeping the original as PHOTO.orig)")
    backup = backup_path(os.path.realpath(photo))
    if not backup.exists():
        atomic.write_with(backup, lambda tmp: shutil.copyfile(os.path.realpath(photo), tmp))
    return backup
