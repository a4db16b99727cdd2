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
    from dragedit.stylegan2 import load_generator

    return load_generator(REF_PKL)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 900,
            fresh: bool = False) -> subprocess.CompletedProcess:
    """Run `dragedit`: in this process (`run_main`) unless `fresh` (or `cwd`/`env`) asks for a new one, as a user
    starts it (what a process-wide once-only note or a kill needs)."""
    if not (fresh or cwd or env):
        return run_main(*args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "dragedit", *map(str, args)], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_main(*args: str) -> subprocess.CompletedProcess:
    """Run `dragedit` in this process (`main([...])`): the same parser, errors and output as the command, without
    starting an interpreter and torch for every case."""
    import contextlib
    import io

    from dragedit.pipeline.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


# The step counts tests edit with (the embedded generator, offline, on the CPU): enough to move, fast to run.
QUICK = ["--pivot-steps", "10", "--tune-steps", "5", "--steps", "3", "--offline", "--device", "cpu"]


@pytest.fixture(scope="module")
def one_edit(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(folder, photo, session): a copy of the test photo with a finished one-edit session beside it."""
    import shutil

    root = tmp_path_factory.mktemp("one-edit")
    photo = root / "photo.png"
    shutil.copy(ASTRONAUT, photo)
    proc = run_main("edit", photo, "--drag", "201,139:199,133", "-o", root / "out.png", "--session", root / "s",
                    *QUICK)
    assert proc.returncode == 0, proc.stderr
    return root, photo, root / "s"


def tree_hash(folder: Path) -> str:
    """Every file under `folder` (name and bytes) but the lock: equal hashes mean nothing changed."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != ".lock":
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def sha(path: str | os.PathLike) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_user_error(proc: subprocess.CompletedProcess, needle: str | None = None, *, notes: bool = False) -> None:
    """A user error: exit status 2, no traceback, and one line on stderr, `dragedit: error: ...` (with `notes`,
    the notes a run printed before it failed may stand above that line)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("dragedit: error:"), proc.stderr
    assert notes or len(lines) == 1, proc.stderr
    if needle:
        assert needle.lower() in proc.stderr.lower(), proc.stderr


# ---- the server in process, as the browser on this machine addresses it -----------------------------------
SERVER_BASE = "http://127.0.0.1:7860"  # the Host and origin of a server on its default port


def serve_config(root: Path, *, max_steps: int = 6, **extra):
    """A server config with the few steps tests edit with."""
    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.server.app import ServeConfig

    settings = EditSettings(device="cpu", pti=PTIConfig(pivot_steps=10, tune_steps=5, allow_download=False),
                            drag=DragConfig(max_steps=max_steps))
    return ServeConfig(root=root, settings=settings, preview_every=2, **extra)


def serve_client(config):
    """The app in process; a 500 is an answer to check, not an exception."""
    from fastapi.testclient import TestClient

    from dragedit.pipeline.server.app import create_app

    return TestClient(create_app(config), base_url=SERVER_BASE, raise_server_exceptions=False)


def upload(client, path: Path = ASTRONAUT, name: str = "astronaut.png", headers: dict | None = None):
    with open(path, "rb") as f:
        return client.post("/api/sessions", files={"photo": (name, f, "image/png")}, headers=headers or {})
