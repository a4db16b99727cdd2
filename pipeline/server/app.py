"""`dragedit serve`: the web editor's page and its HTTP API (`pip install 'dragedit[web]'`).

Sessions live under `root` and are ordinary session folders (`root/ID/`), so the CLI continues what the
browser started and the reverse; uploaded photos are kept in `root/uploads/`. Every id in a path is
checked against a strict pattern and must name a folder directly under `root`, so no request reaches
the filesystem outside it. On a host other than localhost every request needs the token printed in the
start URL. The contract is in the README; OpenAPI at `/docs`.

(No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at definition time,
and `Request` is imported inside `create_app`, so that dragedit runs without the web extra.)
"""
import asyncio
import base64
import json
import re
import secrets
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dragedit.fileio import atomic
from dragedit.fileio.errors import FieldError, UserError
from dragedit.pipeline.core.errors import SessionBusy, SessionMismatch
from dragedit.pipeline.core.settings import EditSettings

from dragedit.pipeline.core import layout as L
from .jobs import Busy, JobRunner, QueueFull, png_bytes

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
UPLOADS = "uploads"
WEB = Path(__file__).parent / "web"


@dataclass
class ServeConfig:
    """What `dragedit serve` runs with; the stage configs default to the CLI's defaults."""

    root: Path = Path("dragedit-sessions")
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None  # required on every request when set; generated for non-local hosts
    max_upload_mb: float = 40.0
    max_queued: int = 4
    preview_every: int = 5  # drag steps between live preview renders
    settings: EditSettings = field(default_factory=EditSettings)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.token is None and self.host not in LOCAL_HOSTS:
            self.token = secrets.token_urlsafe(24)

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def create_app(config: ServeConfig):
    """The FastAPI application; `uvicorn` serves it (`serve`), tests call it in process."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.exceptions import HTTPException

    cfg = config
    root = cfg.root.resolve()
    try:
        (root / UPLOADS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise atomic.write_error(root, exc) from None
    runner = JobRunner(max_queued=cfg.max_queued)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        runner.shutdown()

    app = FastAPI(title="dragedit", version=_version(), lifespan=lifespan,
                  description="Edit portrait photos by dragging points. Errors are `{\"error\": \"one line\"}`.")
    app.state.runner, app.state.config = runner, cfg

    # ---- errors and the token ---------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return JSONResponse({"error": f"invalid request: {where} {first.get('msg', '')}".strip()}, status_code=422)

    @app.middleware("http")
    async def _token(request: Request, call_next):
        if cfg.token:
            given = (request.query_params.get("token") or request.headers.get("x-dragedit-token")
                     or request.cookies.get("dragedit_token") or "")
            if not secrets.compare_digest(given, cfg.token):
                return JSONResponse({"error": "missing or wrong token; open the URL dragedit serve printed"},
                                    status_code=401)
        response = await call_next(request)
        if cfg.token and request.query_params.get("token"):
            response.set_cookie("dragedit_token", cfg.token, httponly=True, samesite="strict")
        return response

    # ---- the page -----------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in {"app.js", "style.css"}:
            raise ApiError(404, f"no such file: {name}")
        return FileResponse(WEB / name)

    # ---- sessions -----------------------------------------------------------------------------------------
    @app.post("/api/sessions", status_code=201, summary="Upload a photo (multipart field `photo`)")
    async def create_session(request: Request):
        data = await _read_upload(request, cfg.max_upload_mb)
        return await asyncio.to_thread(_new_session, root, data)

    @app.get("/api/sessions", summary="Every session under the root, newest first")
    def list_sessions():
        found = [p for p in root.iterdir() if p.is_dir() and _ID.match(p.name) and _is_session(root, p.name)]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return {"sessions": [p.name for p in found]}

    @app.get("/api/sessions/{sid}", summary="A session's photo, faces, job and edit history")
    def get_session(sid: str):
        folder = _session_folder(root, sid)
        return {**_describe(root, sid, folder), "job": runner.state(sid).snapshot(f"/api/sessions/{sid}/live.png"),
                "history": _history(folder)}

    @app.post("/api/sessions/{sid}/edits", status_code=202, summary="Start a drag edit")
    async def start_edit(sid: str, request: Request):
        folder = _session_folder(root, sid)
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "the body must be JSON: {\"drags\": [[x1, y1, x2, y2], ...]}") from None
        meta = _describe(root, sid, folder)
        job = _edit_job(body, meta, root, folder)
        plan = await asyncio.to_thread(_checked, job, cfg.settings)
        edit = plan.edit_numbers[-1]
        if folder.is_dir() and not runner.state(sid).active:
            _check_not_locked(folder)
        try:
            runner.submit(sid, edit, lambda update: _run_edit(cfg, plan, update))
        except Busy as exc:
            raise ApiError(409, str(exc)) from None
        except QueueFull as exc:
            raise ApiError(503, str(exc)) from None
        return {"edit": edit, "reused": plan.reused}

    @app.get("/api/sessions/{sid}/events", summary="Server-sent events: the job's stage, step, points, preview")
    async def events(sid: str, request: Request):
        _session_folder(root, sid)
        preview_url = f"/api/sessions/{sid}/live.png"

        async def stream():
            seen = -1
            idle = 0.0
            while True:
                st = runner.state(sid)
                if st.version != seen:
                    seen = st.version
                    yield f"data: {json.dumps(st.snapshot(preview_url))}\n\n"
                    idle = 0.0
                    if not st.active:
                        return  # the final state is sent; the page reconnects for the next job
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)
                idle += 0.1
                if idle >= 15:  # a comment line keeps proxies from closing a quiet stream
                    yield ": keep-alive\n\n"
                    idle = 0.0

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/sessions/{sid}/live.png", summary="The latest live preview of a running drag (PNG)")
    def live(sid: str):
        _session_folder(root, sid)
        st = runner.state(sid)
        if st.preview is None:
            raise ApiError(404, "no live preview yet")
        return Response(st.preview, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/sessions/{sid}/photo", summary="The original photo")
    def original(sid: str):
        folder = _session_folder(root, sid)
        return FileResponse(_describe(root, sid, folder)["photo_path"])

    @app.get("/api/sessions/{sid}/edits/{n}/photo", summary="Edit n composited into the photo (PNG)")
    async def edit_photo(sid: str, n: int):
        folder = _session_folder(root, sid)
        name = _edit_name(folder, n)
        path = folder / L.composite_file(name, "edit")
        if not _committed(folder, L.composite_stage(name)):
            if runner.state(sid).active:
                raise ApiError(409, f"session {sid} is busy; edit {n}'s photo is made after the job")
            await asyncio.to_thread(_composite, cfg, folder, name)
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/sessions/{sid}/edits/{n}/crop", summary="Edit n's generator crop (PNG)")
    def edit_crop(sid: str, n: int):
        folder = _session_folder(root, sid)
        return FileResponse(folder / _edit_name(folder, n) / L.EDIT_CROP, media_type="image/png")

    return app


def _version() -> str:
    from dragedit import __version__

    return __version__


# ---- requests -> filesystem, checked ---------------------------------------------------------------------
def _session_folder(root: Path, sid: str) -> Path:
    """`root/sid` for a well-formed id naming an existing session (or a fresh upload); else 404."""
    if not _ID.match(sid or ""):
        raise ApiError(404, "no such session")
    folder = root / sid
    if folder.resolve().parent != root or not _is_session(root, sid):
        raise ApiError(404, "no such session")
    return folder


def _is_session(root: Path, sid: str) -> bool:
    from dragedit.pipeline.core.session import is_session_folder

    return (root / UPLOADS / f"{sid}.json").is_file() or is_session_folder(root / sid)


async def _read_upload(request, max_mb: float) -> bytes:
    """The multipart field `photo`, refused past `max_mb` before it is all read."""
    limit = int(max_mb * 1024 * 1024)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 64 * 1024:
        raise ApiError(413, f"the upload is larger than the {max_mb:g} MB limit")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the photo as multipart/form-data in the field `photo`")
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("photo")
    if upload is None or not hasattr(upload, "read"):
        raise ApiError(400, "no file in the multipart field `photo`")
    data = await upload.read(limit + 1)
    await upload.close()
    if len(data) > limit:
        raise ApiError(413, f"the upload is larger than the {max_mb:g} MB limit")
    if not data:
        raise ApiError(400, "the uploaded photo is empty")
    return data


def _new_session(root: Path, data: bytes) -> dict[str, Any]:
    """Store the upload under a fresh uuid4, validate it as the CLI does, find its faces."""
    from PIL import Image

    from dragedit.pipeline.imaging.align import AlignConfig, find_faces
    from dragedit.pipeline.imaging.photo import load_photo

    sid = uuid.uuid4().hex
    probe = root / UPLOADS / f"{sid}.upload"
    atomic.write_bytes(probe, data)
    try:
        try:
            with Image.open(probe) as img:
                fmt = (img.format or "").lower()
        except Exception:  # noqa: BLE001 - load_photo below names the problem in one line
            fmt = ""
        suffix = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "tiff": ".tif"}.get(fmt, ".img")
        photo_path = root / UPLOADS / f"{sid}{suffix}"
        probe.rename(photo_path)
        try:
            photo = load_photo(photo_path)
            faces = find_faces(photo.pixels, AlignConfig())
        except UserError as exc:
            photo_path.unlink(missing_ok=True)
            raise ApiError(400, str(exc).replace(str(photo_path), "the uploaded photo")) from None
    finally:
        probe.unlink(missing_ok=True)
    h, w = photo.pixels.shape[:2]
    meta = {"id": sid, "width": w, "height": h, "faces": [{"box": [round(v, 2) for v in f["box"]]} for f in faces],
            "photo": photo_path.name}
    atomic.write_json(root / UPLOADS / f"{sid}.json", meta)
    return {k: meta[k] for k in ("id", "width", "height", "faces")}


def _describe(root: Path, sid: str, folder: Path) -> dict[str, Any]:
    """id, size, faces and the photo's path: from the upload's record, or a CLI-made session's alignment."""
    upload = root / UPLOADS / f"{sid}.json"
    if upload.is_file():
        meta = json.loads(upload.read_text())
        out = {**meta, "photo_path": str(root / UPLOADS / meta["photo"])}
    else:
        try:
            al = json.loads((folder / L.ALIGNMENT).read_text())
            photo_path = _stages(folder)[L.ALIGN]["photo_path"]
        except (OSError, ValueError, KeyError):
            raise ApiError(404, f"session {sid} has no aligned photo yet") from None
        out = {"id": sid, "width": al["photo_size"][0], "height": al["photo_size"][1],
               "faces": [{"box": f["box"]} for f in al["faces"]], "photo_path": photo_path}
    out["face"] = _aligned_face(folder)
    return out


def _aligned_face(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / L.ALIGNMENT).read_text())["face_index"])
    except (OSError, ValueError, KeyError):
        return None


def _history(folder: Path) -> list[dict[str, Any]]:
    from dragedit.pipeline.core.session import Session

    from dragedit.pipeline.core.manifest import MANIFEST_NAME

    if not (folder / MANIFEST_NAME).is_file():
        return []
    with Session(folder, read_only=True) as s:
        return [h.to_dict() for h in s.history()]


def _stages(folder: Path) -> dict[str, Any]:
    """The session's committed stages, read as `Session` reads them (a broken manifest counts as empty)."""
    from dragedit.pipeline.core.manifest import Manifest

    return Manifest(folder, warn=lambda _msg: None).stages


def _committed(folder: Path, stage: str) -> bool:
    return stage in _stages(folder)


def _edit_name(folder: Path, n: int) -> str:
    name = L.edit_stage(n) if 0 < n < 1000 else None
    if name is None or not _committed(folder, name):
        raise ApiError(404, f"no edit {n} in this session")
    return name


def _edit_job(body: Any, meta: dict[str, Any], root: Path, folder: Path):
    """The JSON body -> an EditJob (the same request model as edit files); shape errors are 400s."""
    from dragedit.pipeline.core.edit import EditJob
    from dragedit.pipeline.core.requests import EditRequest

    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object with \"drags\"")
    try:
        req = EditRequest.from_json(body, "the edit", lambda m: _mask_file(m, meta, root, folder.name))
    except UserError as exc:
        raise ApiError(400, str(exc)) from None
    face = body.get("face")
    if face is not None and (not isinstance(face, int) or isinstance(face, bool) or not 0 <= face < len(meta["faces"])):
        raise ApiError(400, f"\"face\" must be a face number from 0 to {len(meta['faces']) - 1}")
    from_spec = body.get("from")
    if from_spec is not None and not (from_spec == "pivot" or (isinstance(from_spec, int)
                                                               and not isinstance(from_spec, bool) and from_spec > 0)):
        raise ApiError(400, "\"from\" must be an edit number or \"pivot\"")
    return EditJob(folder, [req], Path(meta["photo_path"]), face=face, from_spec=from_spec)


def _checked(job, settings: EditSettings):
    """check_edit with its errors as HTTP answers: a field's problem is a 400 naming the JSON field; another
    photo or face, or a busy session, a 409. No server path in any message."""
    from dragedit.pipeline.core.edit import check_edit

    try:
        return check_edit(job, settings)
    except (SessionMismatch, SessionBusy) as exc:
        raise ApiError(409, str(exc)) from None
    except FieldError as exc:
        raise ApiError(400, exc.worded(f'"{exc.field}"')) from None
    except UserError as exc:
        raise ApiError(400, str(exc)) from None


def _mask_file(data_url: Any, meta: dict[str, Any], root: Path, sid: str) -> str | None:
    """A PNG data URL (white = may move, the photo's size) -> a file in uploads/, or None."""
    if data_url is None:
        return None
    if not isinstance(data_url, str) or not data_url.startswith("data:image/png;base64,"):
        raise ApiError(400, "\"mask\" must be a PNG data URL (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(data_url.split(",", 1)[1], validate=True)
    except ValueError:
        raise ApiError(400, "\"mask\" is not valid base64") from None
    path = root / UPLOADS / f"{sid}-mask-{uuid.uuid4().hex[:8]}.png"
    atomic.write_bytes(path, raw)
    from PIL import Image

    try:
        with Image.open(path) as img:
            size = img.size
    except Exception:  # noqa: BLE001
        path.unlink(missing_ok=True)
        raise ApiError(400, "\"mask\" is not a readable PNG") from None
    if size != (meta["width"], meta["height"]):
        path.unlink(missing_ok=True)
        raise ApiError(400, f"\"mask\" is {size[0]}x{size[1]} but the photo is {meta['width']}x{meta['height']}")
    return str(path)


# ---- the job ------------------------------------------------------------------------------------------------
def _run_edit(cfg: ServeConfig, plan, update) -> None:
    """The one recipe, its progress as the job's state (a live preview every few drag steps)."""
    from dragedit.pipeline.core.edit import run_edit

    def on_progress(p) -> None:
        changes: dict[str, Any] = {"stage": p.stage, "step": p.step, "total": p.total}
        if p.stage == "done":
            return
        if p.edit is not None:
            changes["edit"] = p.edit
        if p.points is not None:
            changes.update(points=p.points, targets=p.targets)
            if p.step % cfg.preview_every == 0 and p.render is not None:
                changes["preview"] = png_bytes(p.render())
                changes["preview_step"] = p.step
        update(**changes)

    run_edit(plan, on_progress)


def _check_not_locked(folder: Path) -> None:
    """409 while another process (a `dragedit` command) holds the session."""
    from dragedit.pipeline.core.manifest import SessionLock

    try:
        with SessionLock(folder):
            pass
    except UserError as exc:
        raise ApiError(409, str(exc)) from None


def _composite(cfg: ServeConfig, folder: Path, name: str) -> None:
    from dragedit.pipeline.core.edit import EditJob, run_edit

    plan = _checked(EditJob(folder, edit=L.edit_number(name)), cfg.settings)
    try:
        run_edit(plan)
    except SessionBusy as exc:
        raise ApiError(409, str(exc)) from None
    except UserError as exc:
        raise ApiError(400, str(exc)) from None


def serve(config: ServeConfig) -> None:
    """Run the server until Ctrl-C (uvicorn)."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn", "multipart")):
        raise UserError("dragedit serve needs the web extra: pip install 'dragedit[web]'")
    import uvicorn

    app = create_app(config)
    print(f"dragedit serve: open {config.url()}", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
