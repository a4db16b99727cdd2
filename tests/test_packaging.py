"""The installed package lives under one `dragedit` namespace, so it sits beside the package index's `draggan`
(OpenGVLab's DragGAN) without either overwriting the other."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO


CLEAN = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel alone, never a checkout's src/


def _pip(python: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                          text=True, timeout=timeout, env=CLEAN)


def _their_draggan(tmp_path: Path) -> str:
    """The package index's `draggan` wheel: the one `.ci/run` fetched into .whl/ before the tests, else one
    fetched now (the only test that asks the index for anything), else a skip that says why."""
    local = sorted((REPO / ".whl").glob("draggan-*.whl"))
    if local:
        return str(local[-1])
    got = _pip(Path(sys.executable), "download", "--no-deps", "-q", "-d", str(tmp_path / "theirs"), "draggan",
               timeout=120)
    if got.returncode != 0:
        pytest.skip(f"the package index cannot be reached to fetch draggan: {got.stderr.strip()[-300:]}")
    return str(next((tmp_path / "theirs").glob("draggan-*")))


@pytest.mark.slow
def test_wheel_installs_beside_the_index_draggan(tmp_path):
    wheels = tmp_path / "wheels"
    built = _pip(Path(sys.executable), "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO))
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("dragedit-*.whl"))
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    # torch and the other dependencies come from this environment's site-packages (a path, not its .pth files:
    # this checkout's editable install stays out), so only the two packages under test are installed
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    theirs = _pip(python, "install", "--no-deps", "-q", _their_draggan(tmp_path), timeout=120)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    ours = _pip(python, "install", "--no-deps", "-q", str(wheel))
    assert ours.returncode == 0, ours.stderr[-2000:]
    code = ("import draggan, dragedit.draggan, dragedit.pipeline.cli.main\n"
            "print(draggan.__file__)\nprint(dragedit.draggan.__file__)\nprint(hasattr(draggan, 'home'))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=CLEAN)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs_file, ours_file, theirs_api = proc.stdout.split()
    assert Path(theirs_file).parent == site / "draggan" and theirs_api == "True"  # OpenGVLab's, untouched
    assert Path(ours_file).parent == site / "dragedit" / "draggan"
    top = {p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))}
    assert not top & {"pipeline", "common", "inversion", "stylegan2"}, top  # no generic names squatted
