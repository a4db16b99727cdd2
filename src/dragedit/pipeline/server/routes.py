"""The HTTP API's routes (the contract is in the README; OpenAPI at `/docs`). Each one checks its input, asks
the store or the one recipe, and answers; errors are `ApiError`s, one line each, no server path.

(No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at definition time.)
"""
import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from dragedit.common.errors import FieldError, UserError
from dragedit.pipeline.core import layout as L
from dragedit.pipeline.core.errors import SessionBusy, SessionMismatch

from .jobs import ACTIVE, Busy, QueueFull, png_bytes
from .store import ApiError

router = APIRouter()
MAX_JSON_BYTES = 24 * 2 ** 20  # an edit body: drags and a mask of a 12 MP photo fit many times over
MAX_JSON_DEPTH = 8


def _state(request: Request):
    return request.app.state.config, request.app.state.store, request.app.state.runner


@router.post("/api/sessions", status_code=201, summary="Upload a photo (multipart field `photo`)")
async def create_session(request: Request):
    cfg, store, _ = _state(request)
    data = await _read_upload(request, cfg.max_upload_mb)
    return await asyncio.to_thread(store.new_upload, data)


@router.get("/api/sessions", summary="Every session under the root, newest first")
def list_sessions(request: Request):
    return {"sessions": _state(request)[1].ids()}


@router.get("/api/sessions/{sid}", summary="A session's photo size, faces, job and edit history")
def get_session(sid: str, request: Request):
    _, store, runner = _state(request)
    meta = store.describe(sid)
    job = runner.snapshot(sid, f"/api/sessions/{sid}/live.png")
    interrupted = store.interrupted(sid)
    if job["status"] == "idle" and interrupted is not None:
        job.update(status="interrupted", edit=interrupted)  # the server stopped mid-job; POST it again to resume
    clip = {"edited_clip": store.has_edited_clip(sid)} if meta.get("kind") == "clip" else {}
    return {**store.public(meta), **clip, "job": job, "history": store.history(sid)}


@router.post("/api/sessions/{sid}/edits", status_code=202, summary="Start a drag edit")
async def start_edit(sid: str, request: Request):
    cfg, store, runner = _state(request)
    folder = store.folder(sid)
    body = await _json_body(request)
    meta = store.describe(sid)
    if meta.get("kind") == "clip":
        return await _start_clip_edit(cfg, store, runner, sid, folder, body, meta)
    job = _edit_job(body, meta, store, folder)
    plan = await asyncio.to_thread(_checked, job, cfg.settings, store)
    _check_on_face(job.requests[0], meta, store, job.face)
    edit = plan.edit_numbers[-1]
    _submit(runner, sid, folder, edit, lambda update: _run_edit(cfg, store, sid, plan, update))
    return {"edit": edit, "reused": plan.reused}


@router.get("/api/presets", summary="The named edits (POST one as {\"preset\": NAME, \"strength\": S})")
def list_presets():
    from dragedit.pipeline.core.presets import presets

    return {"presets": [{"name": p.name, "description": p.description, "mask_region": p.mask_region}
                        for p in presets().values()]}


@router.get("/api/sessions/{sid}/presets/{name}", summary="A named edit's drags on a face, in photo pixels")
def preset_drags(sid: str, name: str, request: Request, strength: float = 1.0, face: int | None = None):
    from dragedit.pipeline.core.requests import EditRequest

    store = _state(request)[1]
    meta = store.describe(sid)
    chosen = face if face is not None else (meta["face"] if meta["face"] is not None else 0)
    try:
        req = EditRequest.from_preset(name, strength)
    except FieldError as exc:
        raise ApiError(404 if exc.field == "preset" else 400, exc.worded(f'"{exc.field}"')) from None
    resolved = req.resolved(store.landmarks(sid, chosen))
    return {"preset": name, "strength": req.extra["strength"], "face": chosen,
            "drags": [[round(v, 2) for v in d] for d in resolved.drags], "mask_region": req.mask_region}


@router.delete("/api/sessions/{sid}/job", summary="Cancel the session's job at its next step")
def cancel_job(sid: str, request: Request):
    _, store, runner = _state(request)
    store.folder(sid)
    state = runner.cancel(sid)
    if state is None:
        raise ApiError(409, f"session {sid} has no job running")
    # the job stops at its next step; until then the session is busy (GET the session, or its events, to see)
    return {"cancelled": True, "job": state}


@router.get("/api/sessions/{sid}/events", summary="Server-sent events: the job's stage, step, points, preview")
async def events(sid: str, request: Request):
    _, store, runner = _state(request)
    store.folder(sid)
    preview_url = f"/api/sessions/{sid}/live.png"

    async def stream():
        seen, idle = -1, 0.0
        while True:
            snap = runner.snapshot(sid, preview_url)  # one reading: what is sent is what ends the stream
            if snap["version"] != seen:
                seen = snap["version"]
                yield f"data: {json.dumps(snap)}\n\n"
                idle = 0.0
                if snap["status"] not in ACTIVE:
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


@router.get("/api/sessions/{sid}/live.png", summary="The latest live preview of a running drag (PNG)")
def live(sid: str, request: Request):
    _, store, runner = _state(request)
    store.folder(sid)
    st = runner.state(sid)
    if st.preview is None:
        raise ApiError(404, "no live preview yet")
    return Response(st.preview, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/sessions/{sid}/photo", summary="The original photo")
def original(sid: str, request: Request):
    return FileResponse(_state(request)[1].photo_path(sid))


@router.get("/api/sessions/{sid}/keyframe", summary="A clip's keyframe (PNG): the picture its points refer to")
def keyframe(sid: str, request: Request):
    return FileResponse(_state(request)[1].keyframe(sid), media_type="image/png")


@router.get("/api/sessions/{sid}/clip", summary="A clip's latest edit, every frame (H.264 MP4, its sound kept)")
def edited_clip(sid: str, request: Request):
    _, store, runner = _state(request)
    store.keyframe(sid)  # 404 unless a clip's session
    if runner.state(sid).active:
        raise ApiError(409, f"session {sid} is busy; the clip is written at the end of the job")
    out = store.edited_clip(sid)
    return FileResponse(out, media_type="video/mp4", filename=f"{sid}_edited.mp4",
                        headers={"Cache-Control": "no-store"})


@router.get("/api/sessions/{sid}/edits/{n}/photo", summary="Edit n composited into the photo (PNG)")
async def edit_photo(sid: str, n: int, request: Request):
    cfg, store, runner = _state(request)
    folder = store.folder(sid)
    name = store.edit_name(sid, n)
    if store.composite_photo(sid, name) is None:
        if runner.state(sid).active:
            raise ApiError(409, f"session {sid} is busy; edit {n}'s photo is made after the job")
        await asyncio.to_thread(_composite, cfg, store, folder, name)
    return FileResponse(store.composite_photo(sid, name), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/sessions/{sid}/edits/{n}/crop", summary="Edit n's generator crop (PNG)")
def edit_crop(sid: str, n: int, request: Request):
    store = _state(request)[1]
    return FileResponse(store.edit_crop(sid, store.edit_name(sid, n)), media_type="image/png")


# ---- bodies ------------------------------------------------------------------------------------------------
async def _read_upload(request: Request, max_mb: float) -> bytes:
    """The multipart field `photo`, refused past `max_mb` before it is all read."""
    limit = int(max_mb * 1024 * 1024)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + 64 * 1024:
        raise ApiError(413, f"the upload is larger than the {max_mb:g} MB limit")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the photo as multipart/form-data in the field `photo`")
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception:  # noqa: BLE001 - any malformed multipart body is the client's error
        raise ApiError(400, "the multipart body is malformed; send the photo in the field `photo`") from None
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


async def _json_body(request: Request) -> Any:
    """A JSON body of bounded size and depth, sent as application/json (a form or text/plain post, which any
    web page may send across sites, is refused)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "send the body as application/json")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_JSON_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_JSON_BYTES // 2 ** 20} MB")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise ApiError(413, f"the body is larger than {MAX_JSON_BYTES // 2 ** 20} MB")
    if _depth(bytes(raw)) > MAX_JSON_DEPTH:
        raise ApiError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body must be JSON: {\"drags\": [[x1, y1, x2, y2], ...]}") from None


def _depth(raw: bytes) -> int:
    """How deep brackets nest, counted outside strings, before parsing (a parser would recurse that deep)."""
    depth = deepest = 0
    in_string = escaped = False
    for b in raw:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # closing quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif b in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _request_and_face(body: Any, meta: dict[str, Any], store, folder: Path):
    """The JSON body's edit (the same request model as edit files) and face; shape errors are 400s."""
    from dragedit.pipeline.core.requests import EditRequest
    from dragedit.pipeline.imaging.faces import choose_face, face_number

    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object with \"drags\"")
    try:
        req = EditRequest.from_json(body, "the edit", lambda m: store.mask_file(m, folder.name,
                                                                               (meta["width"], meta["height"])))
    except UserError as exc:
        raise ApiError(400, str(exc)) from None
    face = body.get("face")
    if face is not None:  # the faces are known at upload: one past the last is a 400 now, not a failed job later
        try:
            face = choose_face(meta["faces"], face_number(face))
        except FieldError as exc:
            raise ApiError(400, exc.worded('"face"')) from None
    return req, face


def _edit_job(body: Any, meta: dict[str, Any], store, folder: Path):
    """The JSON body -> an EditJob; shape errors are 400s."""
    from dragedit.pipeline.core.edit import EditJob

    req, face = _request_and_face(body, meta, store, folder)
    try:  # "from" is the core's to check (here its type, in check_edit whether it names an edit): a 400 naming it
        job = EditJob(folder, requests=[req], photo=Path(meta["photo_path"]), face=face, from_spec=body.get("from"))
    except FieldError as exc:
        raise ApiError(400, exc.worded(f'"{exc.field}"')) from None
    return job


def _check_on_face(req, meta: dict[str, Any], store, face: int | None) -> None:
    """The faces are known at upload: drags off the chosen face's crop are a 400 now, not a failed job later."""
    from dragedit.pipeline.core.requests import check_on_face

    chosen = face if face is not None else (meta["face"] if meta["face"] is not None else 0)
    try:
        landmarks = store.landmarks(meta["id"], chosen)
    except ApiError:
        return  # a session that keeps no landmarks: the recipe checks after alignment, as it always did
    try:
        check_on_face([req], landmarks, (meta["width"], meta["height"]))
    except UserError as exc:
        raise ApiError(400, str(exc)) from None


# ---- a clip -------------------------------------------------------------------------------------------------
async def _start_clip_edit(cfg, store, runner, sid: str, folder: Path, body: Any, meta: dict[str, Any]):
    """A clip's edit: the drag on the keyframe shown at upload, carried to every frame (the CLI's clip recipe),
    written to the session's edited clip; progress per frame in the job's state."""
    from dragedit.pipeline.core.session import Session
    from dragedit.pipeline.core.video import VideoJob, check_video

    if isinstance(body, dict) and body.get("from") is not None:
        raise ApiError(400, "\"from\" goes with photos; a clip's edit is always made from the keyframe's pivot")
    req, face = _request_and_face(body, meta, store, folder)
    face_at = None
    if face is None:  # the face the session edits, as it was chosen (a CLI session's may be --face-at's)
        face, face_at = (None, meta["face_at"]) if meta.get("face_at") else (meta.get("face"), None)
    part = meta.get("part") or [None, None]  # a CLI session's edited part, kept
    job = VideoJob(Path(meta["photo_path"]), requests=[req], output=store.clip_output(sid), session=folder,
                   face=face, face_at=face_at, keyframe=meta["keyframe_seconds"], start=part[0], end=part[1])
    plan = await asyncio.to_thread(_checked, job, cfg.settings, store, check_video)
    _check_on_face(req, meta, store, face)
    with Session(folder / L.KEYFRAME, read_only=True) as ks:  # the edit the keyframe's session will make
        edit = L.edit_number(ks.next_edit_names(1)[0])
    _submit(runner, sid, folder, edit, lambda update: _run_clip(cfg, store, sid, edit, plan, update))
    return {"edit": edit, "reused": False}


def _run_clip(cfg, store, sid: str, edit: int, plan, update) -> None:
    from dragedit.pipeline.core.video import run_video

    store.job_started(sid, edit)
    try:
        run_video(plan, _progress(cfg, update))
        store.clip_written(sid)
    finally:
        store.job_ended(sid)


# ---- the work ----------------------------------------------------------------------------------------------
def _checked(job, settings, store, check=None):
    """check_edit (or `check`: check_video) with its errors as HTTP answers: a field's problem is a 400 naming
    the JSON field; another photo or face, or a busy session, a 409."""
    from dragedit.pipeline.core.edit import check_edit

    try:
        return (check or check_edit)(job, settings)
    except (SessionMismatch, SessionBusy) as exc:
        raise ApiError(409, store.private(str(exc))) from None
    except FieldError as exc:
        raise ApiError(400, store.private(exc.worded(f'"{exc.field}"'))) from None
    except UserError as exc:
        raise ApiError(400, store.private(str(exc))) from None


def _run_edit(cfg, store, sid: str, plan, update) -> None:
    """The one recipe, its progress as the job's state (a live preview every few drag steps); a marker file
    says the job was interrupted if the server stops before it ends."""
    from dragedit.pipeline.core.edit import run_edit

    store.job_started(sid, plan.edit_numbers[-1])
    try:
        run_edit(plan, _progress(cfg, update))
    finally:
        store.job_ended(sid)


def _progress(cfg, update):
    """The recipe's progress as the job's state: stage, step of total (drag steps, a clip's frames), the drag's
    points and a live preview every few steps."""
    def on_progress(p) -> None:
        if p.stage == "done":
            return
        changes: dict[str, Any] = {"stage": p.stage}
        if p.total:  # a stage that counts steps; the others leave the last count (the drag's) standing
            changes.update(step=p.step, total=p.total)
        if p.edit is not None:
            changes["edit"] = p.edit
        if p.points is not None:
            changes.update(points=p.points, targets=p.targets)
            if p.step % cfg.preview_every == 0 and p.render is not None:
                changes["preview"] = png_bytes(p.render())
                changes["preview_step"] = p.step
        update(**changes)

    return on_progress


def _submit(runner, sid: str, folder: Path, edit: int, work) -> None:
    """Queue the job: 409 while the session is busy here or held by a `dragedit` command, 503 when the queue is
    full."""
    if folder.is_dir() and not runner.state(sid).active:
        _check_not_locked(folder)
    try:
        runner.submit(sid, edit, work)
    except Busy as exc:
        raise ApiError(409, str(exc)) from None
    except QueueFull as exc:
        raise ApiError(503, str(exc)) from None


def _check_not_locked(folder: Path) -> None:
    """409 while another process (a `dragedit` command) holds the session."""
    from dragedit.pipeline.core.manifest import SessionLock

    try:
        with SessionLock(folder):
            pass
    except UserError as exc:
        raise ApiError(409, str(exc)) from None


def _composite(cfg, store, folder: Path, name: str) -> None:
    from dragedit.pipeline.core.edit import EditJob, run_edit

    plan = _checked(EditJob(folder, composite_edit=L.edit_number(name)), cfg.settings, store)
    try:
        run_edit(plan)
    except SessionBusy as exc:
        raise ApiError(409, str(exc)) from None
    except UserError as exc:
        raise ApiError(400, store.private(str(exc))) from None
