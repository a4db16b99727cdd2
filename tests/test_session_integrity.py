"""A session is one photo and one face for life, its results do not depend on the machine's load, and bad
requests are refused before any work (issue: one edit recipe)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, QUICK, assert_user_error, run_main, tree_hash

DRAG = "201,139:199,133"


def _edit(tmp_path, photo, *extra):
    return run_main("edit", photo, "--drag", DRAG, "-o", tmp_path / "out.png", "--session", tmp_path / "s", *QUICK,
                    *extra)


def _hold_a_core_share(runtime: str) -> subprocess.Popen:
    """Another dragedit process, registered in the runtime folder as `dragedit serve` would be."""
    code = ("import sys, time\nfrom dragedit.common.threads import CoreShare\nc = CoreShare().__enter__()\n"
            "print('ready', flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "DRAGEDIT_RUNTIME_DIR": runtime},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.slow
def test_same_command_twice_with_another_dragedit_process_between(tmp_path, monkeypatch):
    runtime = str(tmp_path / "runtime")
    monkeypatch.setenv("DRAGEDIT_RUNTIME_DIR", runtime)
    for name in ("DRAGEDIT_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    first = _edit(tmp_path, ASTRONAUT, "--json")
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "out.png").read_bytes()
    other = _hold_a_core_share(runtime)
    try:
        second = _edit(tmp_path, ASTRONAUT, "--json")
    finally:
        other.kill()
        other.wait()
    assert second.returncode == 0, second.stderr
    import json

    res = json.loads(second.stdout)
    assert set(res["stages"].values()) == {"reused"}, res["stages"]
    assert res["edits"] == ["edits/001"] and res["reused"] is True
    assert (tmp_path / "out.png").read_bytes() == before


@pytest.mark.slow
def test_replaced_photo_or_another_face_changes_nothing(tmp_path):
    photo = tmp_path / "me.png"
    Image.open(ASTRONAUT).save(photo)
    assert _edit(tmp_path, photo).returncode == 0
    before = tree_hash(tmp_path / "s")
    brighter = np.clip(np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(int) + 8, 0, 255).astype(np.uint8)
    Image.fromarray(brighter).save(photo)  # another photo at the same path
    proc = _edit(tmp_path, photo)
    assert_user_error(proc, "made for another photo")
    assert "--session" in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr
    assert tree_hash(tmp_path / "s") == before
    Image.open(ASTRONAUT).save(photo)
    assert_user_error(_edit(tmp_path, photo, "--face", "1"), "edits face 0, not face 1")
    assert_user_error(_edit(tmp_path, photo, "--face-at", "5,5"), "on none of the")
    assert tree_hash(tmp_path / "s") == before


def test_bad_feature_block_is_refused_before_alignment(tmp_path):
    proc = _edit(tmp_path, ASTRONAUT, "--feature-block", "99")
    assert_user_error(proc, "--feature-block 99")
    assert not (tmp_path / "s").exists()  # no session, so no align/ folder either


def test_mask_with_edits_file_is_a_conflict(tmp_path):
    (tmp_path / "e.json").write_text('{"edits": [{"drags": ["201,139:199,133"]}]}')
    Image.new("L", (512, 512), 255).save(tmp_path / "m.png")
    assert_user_error(run_main("edit", ASTRONAUT, "--edits", tmp_path / "e.json", "--mask", tmp_path / "m.png",
                               "-o", tmp_path / "o.png"), "--mask and --mask-region go with --drag")


def test_from_an_edit_that_does_not_exist_is_refused_before_work(tmp_path):
    assert_user_error(_edit(tmp_path, ASTRONAUT, "--from", "7"), "--from 7")
    assert not (tmp_path / "s").exists()


def test_an_idle_server_does_not_take_a_share_of_the_cores(tmp_path, monkeypatch):
    """`dragedit serve` counts among the dragedit processes only while a job runs: an edit beside an idle server
    computes with the same threads, so gives the same bytes, as with no server."""
    import socket
    import time

    from dragedit.pipeline.server.jobs import JobRunner

    runtime = tmp_path / "runtime"
    monkeypatch.setenv("DRAGEDIT_RUNTIME_DIR", str(runtime))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "dragedit", "serve", "--root", str(tmp_path / "r"), "--port",
                               str(port)], env={**os.environ, "DRAGEDIT_RUNTIME_DIR": str(runtime)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert server.poll() is None
        assert not list(runtime.glob("*.lock"))  # listening, idle: no share
    finally:
        server.kill()
        server.wait()

    seen = []
    runner = JobRunner()
    runner.submit("s1", 1, lambda update: seen.append(len(list(runtime.glob("*.lock")))))
    deadline = time.time() + 30
    while runner.state("s1").active and time.time() < deadline:
        time.sleep(0.05)
    runner.shutdown()
    assert seen == [1] and runner.state("s1").status == "done"  # a share while the job ran
    assert not list(runtime.glob("*.lock"))  # and given back after
