"""`dragedit serve` against a hostile but fair client: foreign Host and Origin headers, tokens, bodies that are
too big or too deep, path and listing tricks, bind failures, cancelled and interrupted jobs, and a bounded
random fuzz of edit bodies and upload headers. Never a 500, never a server path."""
from __future__ import annotations

import io
import json
import os
import random
import socket

import pytest
from PIL import Image

from tests.conftest import (ASTRONAUT, SERVER_BASE, assert_user_error, run_main, serve_client, serve_config,
                            upload)

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'dragedit[web]')")

BASE = SERVER_BASE
OK_DRAG = [201.0, 139.0, 199.0, 131.0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("secure")
    with serve_client(serve_config(root, max_steps=4)) as client:
        with open(ASTRONAUT, "rb") as f:
            sid = client.post("/api/sessions", files={"photo": ("a.png", f, "image/png")}).json()["id"]
        yield client, root, sid


# ---- 1. Host and Origin ---------------------------------------------------------------------------------------
def test_attack_table(served):
    client, root, sid = served
    foreign = {"host": "attacker.example:7871"}
    evil = {"origin": "http://attacker.example"}
    edits = f"/api/sessions/{sid}/edits"
    table = [
        (lambda: client.get("/api/sessions", headers=foreign), 403),
        (lambda: client.get(f"/api/sessions/{sid}/photo", headers=foreign), 403),
        (lambda: client.get(f"/api/sessions/{sid}", headers=foreign), 403),
        (lambda: client.post(edits, content=json.dumps({"drags": [OK_DRAG]}),
                             headers={**evil, "content-type": "text/plain"}), 403),
        (lambda: client.post(edits, json={"drags": [OK_DRAG]}, headers=evil), 403),
        (lambda: upload(client, headers=evil), 403),
        (lambda: client.post(edits, json={"drags": []}, headers={"origin": "null"}), 403),
        (lambda: client.post(edits, json={"drags": []}, headers={"origin": "http://127.0.0.1:9999"}), 403),
        (lambda: client.post(edits, content=json.dumps({"drags": []}), headers={"content-type": "text/plain"}), 415),
        (lambda: client.post(edits, json={"drags": []}, headers={"origin": BASE}), 400),  # same origin: let in
        (lambda: client.post(edits, json={"drags": []}, headers={"host": "localhost:7860"}), 400),
        (lambda: client.get("/api/sessions", headers={"host": "[::1]:7860"}), 200),
        (lambda: client.delete(f"/api/sessions/{sid}/job", headers=evil), 403),
        (lambda: client.delete(f"/api/sessions/{sid}/job"), 409),  # no job to cancel
        (lambda: client.post(edits, json={"drags": [OK_DRAG] * 69}), 400),
        (lambda: client.post(edits, content="[" * 100_000 + "]" * 100_000,
                             headers={"content-type": "application/json"}), 400),
        (lambda: client.post(edits, content=b" " * (25 * 2 ** 20), headers={"content-type": "application/json"}),
         413),
        # the sweep: the Origin's scheme counts (it serves http), and drags off the face crop are a 400 at once
        (lambda: client.post(edits, json={"drags": [OK_DRAG]}, headers={"origin": BASE.replace("http:", "https:")}),
         403),
        (lambda: client.post(edits, json={"drags": [[2.0, 2.0, 4.0, 4.0]]}), 400),
        (lambda: client.post(edits, json={"drags": ["@chin:0,900%"]}), 400),
        (lambda: client.post(edits, json={"drags": [OK_DRAG], "face": "²"}), 400),
        (lambda: client.post(edits, json={"drags": [OK_DRAG], "from": True}), 400),
    ]
    for n, (request, status) in enumerate(table):
        res = request()
        assert res.status_code == status, (n, res.status_code, res.text[:200])
        assert "error" in res.json() or status == 200, (n, res.text[:200])
    assert not (root / sid).exists()  # nothing of it reached a job


def test_allow_host_adds_a_name(tmp_path):
    with serve_client(serve_config(tmp_path, allow_hosts=("editor.lan",), max_steps=4)) as client:
        assert client.get("/api/sessions", headers={"host": "editor.lan:7860"}).status_code == 200
        assert client.get("/api/sessions", headers={"host": "other.lan"}).status_code == 403


# ---- 2 and 3. tokens, options, 500s -----------------------------------------------------------------------------
def test_tokens_are_compared_as_bytes(tmp_path):
    cfg = serve_config(tmp_path, host="0.0.0.0", max_steps=4)
    with serve_client(cfg) as client:
        assert client.get("/api/sessions?token=%C3%A9t%C3%A9").status_code == 401
        assert client.get("/api/sessions", headers={"x-dragedit-token": "caf\xe9".encode("latin-1")}).status_code == 401
        assert client.get("/api/sessions", headers={"cookie": "dragedit_token=\xe9t\xe9".encode("latin-1")}).status_code == 401
        assert client.get(f"/api/sessions?token={cfg.token}").status_code == 200


@pytest.mark.parametrize("args,needle", [
    (["--host", "127.0.0.2", "--token", ""], "--token"),
    (["--max-upload-mb", "nan"], "--max-upload-mb"), (["--max-upload-mb", "inf"], "--max-upload-mb"),
    (["--max-upload-mb", "0"], "--max-upload-mb"), (["--port", "70000"], "--port"),
])
def test_serve_refuses_bad_options_at_start(tmp_path, args, needle):
    proc = run_main("serve", "--root", tmp_path / "r", *args)
    assert_user_error(proc, needle)
    assert "open http" not in proc.stdout


def test_bind_failures_are_one_line_and_print_no_url(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        proc = run_main("serve", "--root", tmp_path / "r", "--port", busy.getsockname()[1])
    finally:
        busy.close()
    assert_user_error(proc, "in use")
    assert "open http" not in proc.stdout
    proc = run_main("serve", "--root", tmp_path / "r", "--host", "192.0.2.1", "--port", "7999")  # not on this machine
    assert_user_error(proc, "--host 192.0.2.1")
    assert "open http" not in proc.stdout


def test_a_deleted_photo_is_a_404(tmp_path):
    with serve_client(serve_config(tmp_path, max_steps=4)) as client:
        sid = upload(client).json()["id"]
        for p in (tmp_path / "uploads").glob(f"{sid}.png"):
            p.unlink()
        res = client.get(f"/api/sessions/{sid}/photo")
        assert res.status_code == 404 and "missing" in res.json()["error"]


# ---- 5 and 7. listing is opening; no server paths ------------------------------------------------------------
def test_the_list_holds_exactly_what_opens(tmp_path):
    import shutil

    from dragedit.pipeline.core.session import Session

    root = tmp_path / "root"
    with serve_client(serve_config(root, max_steps=4)) as client:
        upload_only = upload(client).json()["id"]
        with Session(root / "me.dragedit"):  # a CLI-made session under the root, with its default name
            pass
        (root / "me.dragedit" / "session.json").write_text(json.dumps(
            {"format": "dragedit-session", "version": 1, "stages": {}}))
        shutil.copytree(root / "me.dragedit", tmp_path / "elsewhere")
        os.symlink(tmp_path / "elsewhere", root / "linked")
        listed = client.get("/api/sessions").json()["sessions"]
        assert upload_only in listed and "linked" not in listed
        for sid in listed:
            assert client.get(f"/api/sessions/{sid}").status_code in (200, 404), sid
        assert client.get("/api/sessions/linked").status_code == 404
        state = client.get(f"/api/sessions/{upload_only}").json()
        assert "photo_path" not in state and str(tmp_path) not in json.dumps(state)


# ---- 6. cancel and restart --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cancel_stops_the_job_and_commits_nothing(tmp_path):
    from dragedit.inversion.config import PTIConfig

    cfg = serve_config(tmp_path, max_steps=4)
    cfg.settings.pti = PTIConfig(pivot_steps=400, tune_steps=400, allow_download=False)
    with serve_client(cfg) as client:
        sid = upload(client).json()["id"]
        assert client.post(f"/api/sessions/{sid}/edits", json={"drags": [OK_DRAG]}).status_code == 202
        assert client.delete(f"/api/sessions/{sid}/job").json() == {"cancelled": True, "job": "cancelling"}
        again = client.delete(f"/api/sessions/{sid}/job")  # before the job reached its next step, or after it
        assert again.json() == {"cancelled": True, "job": "already cancelling"} or again.status_code == 409
        final = None
        with client.stream("GET", f"/api/sessions/{sid}/events") as res:
            for line in res.iter_lines():
                if line.startswith("data: "):
                    final = json.loads(line[6:])
        assert final["status"] == "cancelled", final
        stages = json.loads((tmp_path / sid / "session.json").read_text())["stages"] \
            if (tmp_path / sid / "session.json").is_file() else {}
        assert "invert" not in stages and not any(k.startswith("edits/") for k in stages)


def test_a_job_cut_by_a_restart_is_reported_interrupted(tmp_path):
    with serve_client(serve_config(tmp_path, max_steps=4)) as client:
        sid = upload(client).json()["id"]
        client.app.state.store.job_started(sid, 1)  # what a running job leaves if the server is killed
    with serve_client(serve_config(tmp_path, max_steps=4)) as client:  # the restarted server
        job = client.get(f"/api/sessions/{sid}").json()["job"]
        assert job["status"] == "interrupted" and job["edit"] == 1


# ---- fuzz ---------------------------------------------------------------------------------------------------------
def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([0, -1, 1e308, -1e308, 3.5, 2 ** 70, True, False])
    if kind == 1:
        return rng.choice(["", "pivot", "@mouth_left:1,2", "1,2:3,4", "@x", "data:image/png;base64,AAAA", "\u00e9"])
    if kind == 2:
        return None
    if kind == 3:
        return [rng.uniform(-1e4, 1e4) for _ in range(rng.choice([0, 3, 4, 5]))]
    if kind in (4, 5):
        return rng.choice([OK_DRAG, [1, 2, 3, 4], "201,139:199,131"])
    if kind in (6, 7):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["drags", "mask", "from", "face", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_fuzzed_edit_bodies_never_500(served):
    client, root, sid = served
    rng = random.Random(20261130)
    for _ in range(500):
        body = _random_json(rng)
        if isinstance(body, dict) and rng.random() < 0.7:
            body.setdefault("drags", _random_json(rng, 1))
        res = client.post(f"/api/sessions/{sid}/edits", json=body)
        assert res.status_code < 500, (body, res.text[:200])
        assert str(root) not in res.text


def test_fuzzed_upload_headers_never_500(served):
    client, root, _ = served
    rng = random.Random(7)
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    for _ in range(150):
        ctype = rng.choice(["multipart/form-data", "multipart/form-data; boundary=x", "image/png", "", "text/plain",
                            "multipart/form-data; boundary=" + "a" * 300, "application/json"])
        length = rng.choice([None, "0", "-1", "abc", "99999999999", str(rng.randrange(10 ** 6))])
        headers = {"content-type": ctype}
        if length is not None:
            headers["content-length"] = length
        body = rng.choice([b"", png.getvalue(), b"--x\r\n\r\n", os.urandom(rng.randrange(1, 2000))])
        try:
            res = client.post("/api/sessions", content=body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - the client library refusing a header is not the server's answer
            if "content-length" in str(exc).lower() or "h11" in type(exc).__module__:
                continue
            raise
        assert res.status_code < 500, (headers, res.text[:200])
        assert str(root) not in res.text


# ---- the answers a busy server gives ------------------------------------------------------------------------------
def _hold(runner, sid: str):
    """A job that holds the runner's one worker (and `sid`'s state) until the returned event is set."""
    import threading

    release = threading.Event()
    runner.submit(sid, 1, lambda update: release.wait(60))
    return release


def test_a_full_queue_is_a_503_that_names_the_wait(tmp_path):
    with serve_client(serve_config(tmp_path, max_steps=4, max_queued=1)) as client:
        busy, other = upload(client).json()["id"], upload(client).json()["id"]
        release = _hold(client.app.state.runner, busy)
        try:
            res = client.post(f"/api/sessions/{other}/edits", json={"drags": [OK_DRAG]})
            assert res.status_code == 503 and "try again" in res.json()["error"], res.text
            res = client.post(f"/api/sessions/{busy}/edits", json={"drags": [OK_DRAG]})
            assert res.status_code == 409 and "busy" in res.json()["error"], res.text
        finally:
            release.set()


@pytest.mark.slow
def test_an_edit_photo_asked_for_while_a_job_runs_is_a_409_then_made(tmp_path):
    """A CLI session under the server's root with an edit not yet composited (`dragedit drag`): while the
    session has a job, its photo is not made under it (409); after the job, the same request makes it."""
    from tests.conftest import QUICK

    session = tmp_path / "mine"
    proc = run_main("edit", ASTRONAUT, "--session", session, "--drag", "201,139:199,133", "-o", tmp_path / "o.png",
                    *QUICK)
    assert proc.returncode == 0, proc.stderr
    proc = run_main("drag", session, "--drag", "246,141:249,135", "--steps", "3")
    assert proc.returncode == 0, proc.stderr
    with serve_client(serve_config(tmp_path, max_steps=4)) as client:
        release = _hold(client.app.state.runner, "mine")
        try:
            res = client.get("/api/sessions/mine/edits/2/photo")
            assert res.status_code == 409 and "made after the job" in res.json()["error"], res.text
        finally:
            release.set()
        for _ in range(100):
            if not client.app.state.runner.state("mine").active:
                break
            import time

            time.sleep(0.05)
        res = client.get("/api/sessions/mine/edits/2/photo")
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"


# ---- the sweep's server cases -------------------------------------------------------------------------------------
def test_a_gif_or_bmp_upload_is_kept_and_served_as_what_it_is(tmp_path):
    with serve_client(serve_config(tmp_path, max_steps=4)) as client:
        for fmt, mime in (("GIF", "image/gif"), ("BMP", "image/bmp")):
            buf = io.BytesIO()
            Image.open(ASTRONAUT).convert("RGB").save(buf, fmt)
            res = client.post("/api/sessions", files={"photo": (f"a.{fmt.lower()}", buf.getvalue(), mime)})
            assert res.status_code == 201, res.text
            photo = client.get(f"/api/sessions/{res.json()['id']}/photo")
            assert photo.status_code == 200 and photo.headers["content-type"] == mime


def test_serve_on_every_address_prints_a_url_it_answers_to(tmp_path):
    from urllib.parse import urlsplit

    cfg = serve_config(tmp_path, host="0.0.0.0", max_steps=4)
    url = urlsplit(cfg.url())
    assert url.hostname not in ("0.0.0.0", "::")
    with serve_client(cfg) as client:
        res = client.get(f"/api/sessions?{url.query}", headers={"host": url.netloc})
        assert res.status_code == 200, res.text


@pytest.mark.slow
def test_preset_arrows_for_a_session_the_cli_made(tmp_path):
    from tests.conftest import QUICK

    proc = run_main("edit", ASTRONAUT, "--session", tmp_path / "cli", "--drag", "201,139:199,133",
                    "-o", tmp_path / "o.png", *QUICK)
    assert proc.returncode == 0, proc.stderr
    with serve_client(serve_config(tmp_path, max_steps=4)) as client:
        res = client.get("/api/sessions/cli/presets/smile")
        assert res.status_code == 200, res.text
        assert len(res.json()["drags"]) == 2
