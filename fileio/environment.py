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
