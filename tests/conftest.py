from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REF_DIR = FIXTURES / "stylegan2_reference"
REF_PKL = REF_DIR / "network-snapshot.pkl"
REF_STATE_DICT = REF_DIR / "generator_state_dict.pt"
ASTRONAUT = FIXTURES / "photos" / "astronaut.png"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True, scope="session")
def _offline():
    """No test touches the internet: LPIPS backbones are never downloaded (subprocesses inherit this)."""
    os.environ["DRAGEDIT_OFFLINE"] = "1"
    yield


@pytest.fixture(scope="session")
def ref_io() -> dict[str, np.ndarray]:
    with np.load(REF_DIR / "reference_io.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def ref_json() -> dict:
    return json.loads((REF_DIR / "reference.json").read_text())


@pytest.fixture(scope="session")
def ref_generator():
    from stylegan2 import load_generator

    return load_generator(REF_PKL)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `dragedit` as a user would, in a fresh process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess, needle: str | None = None) -> None:
    """A user error: non-zero exit, one `dragedit: error:` line, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("dragedit: error:"), proc.stderr
    if needle:
        assert needle.lower() in proc.stderr.lower(), proc.stderr
