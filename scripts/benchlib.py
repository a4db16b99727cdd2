"""Shared by the benchmarks: run each case in a fresh process so its peak memory is its own."""
from __future__ import annotations

import json
import subprocess
import sys


def run_isolated(script: str, cases: list[str], args: list[str]) -> list[dict]:
    """`python SCRIPT --case CASE ARGS...` for each case; each prints one JSON object."""
    rows = []
    for case in cases:
        cmd = [sys.executable, script, "--case", case, *args]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    return rows
