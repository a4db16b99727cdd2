"""`dragedit serve`'s HTTP API in process (FastAPI's TestClient): upload, edit, events, history, photos,
a busy session, bad uploads and path tricks, the token; sessions shared with the CLI."""
from __future__ import annotations

import base64
import io
import json
import re
import uuid

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, SERVER_BASE, run_cli, serve_client, serve_config, upload

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'dragedit[web]'); CI installs it")

HANDLE, TARGET = (201.0, 139.0), (199.0, 131.0)
BASE = SERVER_BASE


@pytest.fixture(scope="module")
def server(tmp_path_factory):

    root = tmp_path_factory.mktemp("serve")
    with serve_client(serve_config(root)) as client:
        yield client, root


def _events(client, sid):
    """Every server-sent event of the session's current job, until its final state."""
    out = []
    with client.stream("GET", f"/api/sessions/{sid}/events") as res:
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        for line in res.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


@pytest.fixture(scope="module")
def edited(server):
    """A session with edit 1 made through the API, and the events it sent."""
    client, root = server
    res = upload(client)
    assert res.status_code == 201, res.text
    sid = res.json()["id"]
    res = client.post(f"/api/sessions/{sid}/edits", json={"drags": [[*HANDLE, *TARGET]]})
    assert res.status_code == 202, res.text
    assert res.json() == {"edit": 1, "reused": False}
    busy = client.post(f"/api/sessions/{sid}/edits", json={"drags": [[*HANDLE, *TARGET]]})
    events = _events(client, sid)
    return {"sid": sid, "events": events, "busy": busy, "root": root}


def test_upload_answers_the_contract(server):
    client, root = server
    res = upload(client)
    assert res.status_code == 201
    body = res.json()
    assert set(body) == {"id", "kind", "width", "height", "faces"} and body["kind"] == "photo"
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"]) and uuid.UUID(body["id"]).version == 4
    assert (body["width"], body["height"]) == Image.open(ASTRONAUT).size
    assert body["faces"] and len(body["faces"][0]["box"]) == 4
    state = client.get(f"/api/sessions/{body['id']}").json()
    assert state["job"]["status"] == "idle" and state["history"] == []


@pytest.mark.slow
def test_edit_events_history_and_photos(server, edited):
    client, _ = server
    sid, events = edited["sid"], edited["events"]
    assert edited["busy"].status_code == 409 and "busy" in edited["busy"].json()["error"]
    assert events[-1]["status"] == "done" and events[-1]["edit"] == 1, events[-1]
    stages = {e["stage"] for e in events}
    assert {"align", "drag"} <= stages and any(s and s.startswith("invert") for s in stages)
    drag = [e for e in events if e["stage"] == "drag" and e["points"]]
    assert drag and all(len(e["points"]) == 1 and e["total"] == 6 for e in drag)
    assert any(e["preview"] for e in events)
    state = client.get(f"/api/sessions/{sid}").json()
    assert [h["edit"] for h in state["history"]] == [1] and state["history"][0]["from"] == "pivot"
    assert state["history"][0]["drags"] == [[*HANDLE, *TARGET]]
    photo = client.get(f"/api/sessions/{sid}/edits/1/photo")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    edited_px = np.asarray(Image.open(io.BytesIO(photo.content)).convert("RGB"))
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert edited_px.shape == original.shape
    crop = client.get(f"/api/sessions/{sid}/edits/1/crop")
    assert crop.status_code == 200 and Image.open(io.BytesIO(crop.content)).size == (128, 128)  # the generator's
    assert client.get(f"/api/sessions/{sid}/live.png").status_code == 200
    assert client.get(f"/api/sessions/{sid}/edits/2/photo").status_code == 404


@pytest.mark.slow
def test_branch_from_pivot_and_continue_with_the_cli(server, edited):
    client, root = server
    sid = edited["sid"]
    res = client.post(f"/api/sessions/{sid}/edits", json={"drags": ["@mouth_right:2%,-4%"], "from": "pivot"})
    assert res.status_code == 202 and res.json() == {"edit": 2, "reused": False}
    assert _events(client, sid)[-1]["status"] == "done"
    hist = client.get(f"/api/sessions/{sid}").json()["history"]
    assert [(h["edit"], h["from"]) for h in hist] == [(1, "pivot"), (2, "pivot")]
    # The browser's session is an ordinary session folder: the CLI continues it, and the page sees that.
    proc = run_cli("drag", root / sid, "--drag", "246,141:249,135", "--from", "1", "--steps", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    hist = client.get(f"/api/sessions/{sid}").json()["history"]
    assert [(h["edit"], h["from"]) for h in hist][-1] == (3, "edits/001")
    assert client.get(f"/api/sessions/{sid}/edits/3/photo").status_code == 200  # composited on demand


@pytest.mark.slow
def test_a_cli_session_opens_in_the_server(tmp_path):

    proc = run_cli("edit", ASTRONAUT, "--drag", "201,139:199,133", "-o", tmp_path / "out.png", "--session",
                   tmp_path / "root" / "mine", "--pivot-steps", "5", "--tune-steps", "2", "--steps", "2",
                   "--offline", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    with serve_client(serve_config(tmp_path / "root")) as client:
        state = client.get("/api/sessions/mine").json()
        assert [h["edit"] for h in state["history"]] == [1] and state["width"] == 512
        assert client.get("/api/sessions").json()["sessions"] == ["mine"]
        assert client.get("/api/sessions/mine/photo").status_code == 200


@pytest.mark.parametrize("path", ["/api/sessions/..%2F..%2Fetc", "/api/sessions/%2Fetc%2Fpasswd/photo",
                                  "/api/sessions/../../etc/passwd", "/api/sessions/uploads",
                                  "/api/sessions/.hidden", "/api/sessions/x%00y/photo", "/static/..%2Fserver.py",
                                  "/static/%2Fetc%2Fpasswd"])
def test_path_tricks_never_reach_the_filesystem(server, path):
    client, _ = server
    res = client.get(path)
    assert res.status_code == 404, (path, res.status_code, res.text)
    assert "error" in res.json()


@pytest.mark.parametrize("content,needle", [
    (b"", "empty"), (b"not an image at all", "not an image"), (ASTRONAUT.read_bytes()[:5000], "truncated or corrupt"),
])
def test_bad_uploads_are_one_line_400s(server, content, needle):
    client, root = server
    res = client.post("/api/sessions", files={"photo": ("x.png", content, "image/png")})
    assert res.status_code == 400, res.text
    err = res.json()["error"]
    assert needle in err and "\n" not in err and str(root) not in err


def test_no_face_upload_is_refused(server):
    client, _ = server
    buf = io.BytesIO()
    Image.new("RGB", (200, 160), (120, 130, 140)).save(buf, format="PNG")
    res = client.post("/api/sessions", files={"photo": ("flat.png", buf.getvalue(), "image/png")})
    assert res.status_code == 400 and "no face" in res.json()["error"]


def test_upload_size_limit_and_missing_field(tmp_path):

    with serve_client(serve_config(tmp_path, max_upload_mb=0.01)) as client:
        res = upload(client)
        assert res.status_code == 413 and "limit" in res.json()["error"]
        res = client.post("/api/sessions", files={"picture": ("a.png", b"123", "image/png")})
        assert res.status_code == 400 and "photo" in res.json()["error"]
        assert client.post("/api/sessions", json={"photo": 1}).status_code == 400


def test_bad_edit_requests(server):
    client, _ = server
    sid = upload(client).json()["id"]
    for body, needle in [({"drags": []}, "non-empty"), ({"drags": [[1, 2, 3]]}, "4 finite numbers"),
                         ({"drags": ["@nose_tipp:1,1"]}, "unknown landmark"),
                         ({"drags": [[1, 2, 3, 4]], "face": 7}, "face"),
                         ({"drags": [[1, 2, 3, 4]], "from": "../x"}, "from"),
                         ({"drags": [[1, 2, 3, 4]], "mask": "data:text/plain,hi"}, "PNG data URL")]:
        res = client.post(f"/api/sessions/{sid}/edits", json=body)
        assert res.status_code == 400 and needle in res.json()["error"], (body, res.text)
    res = client.post(f"/api/sessions/{sid}/edits", content=b"{", headers={"content-type": "application/json"})
    assert res.status_code == 400
    assert client.post("/api/sessions/0123456789abcdef/edits", json={"drags": [[1, 2, 3, 4]]}).status_code == 404


def test_the_page_is_served_without_a_build_step(server):
    client, _ = server
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from a CDN
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_token_is_required_off_localhost(tmp_path):
    from dragedit.pipeline.server.app import ServeConfig

    cfg = serve_config(tmp_path, host="0.0.0.0")
    assert cfg.token and len(cfg.token) >= 24 and cfg.url().endswith(f"?token={cfg.token}")
    assert ServeConfig(root=tmp_path).token is None  # localhost: no token
    with serve_client(cfg) as client:
        assert client.get("/api/sessions").status_code == 401
        assert client.get("/api/sessions", headers={"x-dragedit-token": "wrong"}).status_code == 401
        res = client.get(f"/?token={cfg.token}")
        assert res.status_code == 200 and "dragedit_token" in res.headers.get("set-cookie", "")
        assert client.get("/api/sessions").status_code == 200  # the cookie the page got


def test_serve_refuses_bad_options(tmp_path):
    from tests.conftest import assert_user_error

    assert_user_error(run_cli("serve", "--port", "70000", "--root", tmp_path), "--port")


def _png_data_url(size, value) -> str:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_invalid_edit_bodies_are_400s_before_any_job(server):
    client, root = server
    sid = upload(client).json()["id"]
    ok = [*HANDLE, *TARGET]
    bodies = [{"drags": [[HANDLE[0], HANDLE[1], 2000, 139]]}, {"drags": [[-5, 139, 196, 128]]},
              {"drags": [ok], "from": 99}, {"drags": [ok], "from": True},
              {"drags": [ok], "mask": _png_data_url((512, 512), 0)}, {"drags": [[1e308, 139, 196, 128]]},
              {"drags": ["@nosuch:1,1"]}, {"drags": [ok] * 69}]
    for body in bodies:
        res = client.post(f"/api/sessions/{sid}/edits", json=body)
        assert res.status_code == 400, (str(body)[:80], res.text)
        assert str(root) not in res.json()["error"] and "--" not in res.json()["error"], res.text
    assert client.get(f"/api/sessions/{sid}").json()["job"]["status"] == "idle"
    assert not (root / sid).exists()  # no job ever started: nothing aligned


@pytest.mark.slow
def test_every_202_names_an_edit_that_exists(server):
    client, _ = server
    sid = upload(client).json()["id"]
    body = {"drags": [[*HANDLE, *TARGET]]}
    assert client.post(f"/api/sessions/{sid}/edits", json=body).json() == {"edit": 1, "reused": False}
    assert _events(client, sid)[-1]["status"] == "done"
    assert client.post(f"/api/sessions/{sid}/edits", json=body).json() == {"edit": 1, "reused": True}
    assert _events(client, sid)[-1]["status"] == "done"
    other = {"drags": [[*HANDLE, TARGET[0] + 2, TARGET[1]]]}
    assert client.post(f"/api/sessions/{sid}/edits", json=other).json() == {"edit": 2, "reused": False}
    assert _events(client, sid)[-1]["status"] == "done"
    assert [h["edit"] for h in client.get(f"/api/sessions/{sid}").json()["history"]] == [1, 2]
    for n in (1, 2):
        assert client.get(f"/api/sessions/{sid}/edits/{n}/photo").status_code == 200


def test_another_photo_is_a_409(server):
    client, root = server
    sid = upload(client).json()["id"]
    (root / sid).mkdir()
    (root / sid / "session.json").write_text(json.dumps({"format": "dragedit-session", "version": 1, "stages": {},
                                                          "identity": {"photo": "0" * 64, "face": 0,
                                                                       "face_spec": {"face": 0}}}))
    res = client.post(f"/api/sessions/{sid}/edits", json={"drags": [[*HANDLE, *TARGET]]})
    assert res.status_code == 409 and "another photo" in res.json()["error"], res.text


@pytest.mark.slow
def test_cli_library_and_server_make_the_same_photo(tmp_path):
    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig
    from dragedit.pipeline.api import EditSettings, edit_photo, edit_request
    from dragedit.pipeline.server.app import ServeConfig
    from tests.conftest import run_main

    settings = EditSettings(device="cpu", threads=1, pti=PTIConfig(pivot_steps=10, tune_steps=5, allow_download=False),
                            drag=DragConfig(max_steps=6))
    drag = "{:g},{:g}:{:g},{:g}".format(*HANDLE, *TARGET)
    cli = run_main("edit", ASTRONAUT, "--drag", drag, "-o", tmp_path / "cli.png", "--session", tmp_path / "a",
                   "--pivot-steps", "10", "--tune-steps", "5", "--steps", "6", "--offline", "--device", "cpu",
                   "--threads", "1")
    assert cli.returncode == 0, cli.stderr
    edit_photo(ASTRONAUT, [edit_request(drag)], tmp_path / "lib.png", tmp_path / "b", settings=settings)
    assert (tmp_path / "lib.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    with serve_client(ServeConfig(root=tmp_path / "root", settings=settings)) as client:
        sid = upload(client).json()["id"]
        assert client.post(f"/api/sessions/{sid}/edits", json={"drags": [[*HANDLE, *TARGET]]}).status_code == 202
        assert _events(client, sid)[-1]["status"] == "done"
        served = client.get(f"/api/sessions/{sid}/edits/1/photo").content
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(served))), np.asarray(Image.open(tmp_path / "cli.png")))


def test_events_end_with_the_final_state_when_the_job_ends_while_one_is_sent(tmp_path):
    """A job that finishes while its last progress event is on its way: the stream still sends the final state
    before it ends (it used to end on the live state, after sending a stale 'running')."""
    pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'dragedit[web]')")
    with serve_client(serve_config(tmp_path / "serve")) as client:
        sid = upload(client).json()["id"]
        runner = client.app.state.runner
        runner.update(sid, status="running", edit=1, stage="frames")
        read = runner.snapshot

        def racing(session_id, preview_url):
            snap = read(session_id, preview_url)
            if snap["status"] == "running":
                runner.update(session_id, status="done", stage=None)  # the job ends as this one is sent
            return snap

        runner.snapshot = racing
        events = _events(client, sid)
    assert [e["status"] for e in events] == ["running", "done"]
