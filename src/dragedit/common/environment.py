"""Every environment variable dragedit reads, and its one logger: read here and nowhere else."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("dragedit")  # warnings and notes; the CLI prints them to stderr as they are


def offline() -> bool:
    """DRAGEDIT_OFFLINE=1: never download anything (LPIPS backbones); the test suite sets it."""
    return bool(os.environ.get("DRAGEDIT_OFFLINE"))


def models_dir() -> Path:
    """$DRAGEDIT_HOME/models, else $XDG_CACHE_HOME/dragedit/models, else ~/.cache/dragedit/models."""
    if os.environ.get("DRAGEDIT_HOME"):
        return Path(os.environ["DRAGEDIT_HOME"]) / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dragedit" / "models"


def threads_from_env() -> int | None:
    """$DRAGEDIT_THREADS, else $OMP_NUM_THREADS: a thread count the user fixed for every dragedit process."""
    for name in ("DRAGEDIT_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def runtime_dir() -> Path:
    """Where running dragedit processes register (to share the cores): $DRAGEDIT_RUNTIME_DIR, else
    $XDG_RUNTIME_DIR/dragedit, else TMPDIR/dragedit-UID."""
    import tempfile

    if os.environ.get("DRAGEDIT_RUNTIME_DIR"):
        return Path(os.environ["DRAGEDIT_RUNTIME_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "dragedit"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"dragedit-{uid}"


def may_keep_freed_memory() -> bool:
    """Whether dragedit may keep freed memory for reuse while it computes (`memory.py`): not with
    DRAGEDIT_KEEP_MEMORY=0 (less memory held, slower steps), nor where the user tuned glibc's malloc
    (MALLOC_* or GLIBC_TUNABLES glibc.malloc.*), which is then left as they set it."""
    if os.environ.get("DRAGEDIT_KEEP_MEMORY", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return not (any(k.startswith("MALLOC_") for k in os.environ)
                or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))
