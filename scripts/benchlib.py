"""Shared by the benchmarks and evaluations: each case in a fresh process (its peak memory its own), and the
photos of a folder argument."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_isolated(script: str, cases: list[str], args: list[str]) -> list[dict]:
    """`python SCRIPT --case CASE ARGS...` for each case; each prints one JSON object."""
    rows = []
    for case in cases:
        cmd = [sys.executable, script, "--case", case, *args]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    return rows


def photos_in(folder: str) -> list[Path]:
    """The photos in `folder`, as `dragedit batch` reads a folder; a one-line exit where there is none."""
    from dragedit.common.errors import UserError
    from dragedit.pipeline.batch.run import collect_photos

    if not Path(folder).is_dir():
        raise SystemExit(f"{Path(sys.argv[0]).name}: {folder} is not a folder; give a folder of photos")
    try:
        return collect_photos([folder])
    except UserError as exc:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {exc}") from None
