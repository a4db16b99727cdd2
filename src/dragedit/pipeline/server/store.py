"""The server's sessions on disk: ids checked before they touch the filesystem, uploads, what a session shows
(never a server path), and the markers that let a restart say a job was interrupted.

Sessions are ordinary session folders, `ROOT/ID/`, so the CLI continues what the browser started and the
reverse; uploads live in `ROOT/uploads/`. An id names a folder directly under the root (no link), so no
request reaches the filesystem outside it; the list and the id route agree on what a session is.
"""
from __future__ import annotations

import base64
import functools
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from dragedit.common import atomic
from dragedit.common.errors import FieldError, UserError
from dragedit.pipeline.core import layout as L
from dragedit.pipeline.imaging.video import is_video

UPLOADS = "uploads"
# letters, digits, '_', '-' and '.', starting with a letter or digit: uuid4 hex ids, and the CLI's STEM.dragedit
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_MASK_BYTES = 16 * 2 ** 20
PRIVATE = ("photo_path", "photo", "landmarks", "keyframe_path", "face_at", "part")  # the server's own use only


@functools.lru_cache(maxsize=16)
def _probe(clip: Path, mtime_ns: int):
    """A clip's frames and times (decoding it whole takes seconds: once per clip and version)."""
    from dragedit.pipeline.imaging.video import probe_video

    return probe_video(clip)


class ApiError(Exception):
    """An answer other than success: the status and one line (never a server path)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class SessionStore:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self._clip_lock = threading.Lock()
        self.uploads = self.root / UPLOADS
        try:
            self.uploads.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise atomic.write_error(self.root, exc) from None

    # ---- ids -> folders ----------------------------------------------------------------------------------
    def is_session(self, sid: str) -> bool:
        """A well-formed id of an upload or of a session folder directly under the root (not a link)."""
        from dragedit.pipeline.core.session import is_session_folder

        if not ID.match(sid or "") or sid == UPLOADS:
            return False
        folder = self.root / sid
        if folder.is_symlink() or (folder.exists() and folder.resolve().parent != self.root):
            return False
        return (self.uploads / f"{sid}.json").is_file() or is_session_folder(folder)

    def folder(self, sid: str) -> Path:
        """`ROOT/sid` for an id that names a session; else 404."""
        if not self.is_session(sid):
            raise ApiError(404, "no such session")
        return self.root / sid

    def ids(self) -> list[str]:
        """Every session the id route opens, newest first."""
        names = {p.name for p in self.root.iterdir() if p.is_dir()}
        names |= {p.name[:-5] for p in self.uploads.glob("*.json")}
        found = [n for n in names if self.is_session(n)]

        def mtime(sid: str) -> float:
            p = self.root / sid if (self.root / sid).exists() else self.uploads / f"{sid}.json"
            return p.stat().st_mtime

        return sorted(found, key=mtime, reverse=True)

    # ---- uploads -----------------------------------------------------------------------------------------
    def new_upload(self, data: bytes) -> dict[str, Any]:
        """Store the upload under a fresh uuid4, validate it as the CLI does, find its faces."""
        from PIL import Image

        from dragedit.pipeline.imaging.faces import find_faces
        from dragedit.pipeline.imaging.photo import register_plugins, load_photo

        register_plugins()  # so that a HEIC upload is recognised as one
        sid = uuid.uuid4().hex
        probe = self.uploads / f"{sid}.upload"
        atomic.write_bytes(probe, data)
        if is_video(probe):
            return self._new_clip(sid, probe)
        try:
            try:
                with Image.open(probe) as img:
                    fmt = (img.format or "").lower()
            except Exception:  # noqa: BLE001 - load_photo below names the problem in one line
                fmt = ""
            suffix = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "tiff": ".tif", "heif": ".heic",
                      "avif": ".avif", "gif": ".gif", "bmp": ".bmp"}.get(fmt, ".img")
            photo_path = self.uploads / f"{sid}{suffix}"
            probe.rename(photo_path)
            try:
                photo = load_photo(photo_path)
                faces = find_faces(photo.pixels)
            except UserError as exc:
                photo_path.unlink(missing_ok=True)
                said = self.private(str(exc).replace(str(photo_path), "the uploaded photo"))
                clip = "" if fmt else " (FFmpeg cannot read it as a clip either: send a clip whole, MP4, MOV or MKV)"
                raise ApiError(400, said + clip) from None
        finally:
            probe.unlink(missing_ok=True)
        w, h = photo.size
        meta = {"id": sid, "kind": "photo", "width": w, "height": h,
                "faces": [{"box": [round(v, 2) for v in f["box"]]} for f in faces], "photo": photo_path.name,
                "landmarks": [f["landmarks"] for f in faces]}
        atomic.write_json(self.uploads / f"{sid}.json", meta)
        return self.public(meta)

    def _new_clip(self, sid: str, probe: Path) -> dict[str, Any]:
        """A clip upload (recognised by its content): checked whole as the CLI checks it, its keyframe (the first
        frame with a face) kept as the picture the points refer to, and the faces on it."""
        from dragedit.common.images import save_image
        from dragedit.pipeline.core.video import VideoConfig, find_keyframe
        from dragedit.pipeline.imaging import video as V
        from dragedit.pipeline.imaging.faces import find_faces

        clip = self.uploads / f"{sid}.clip"
        probe.rename(clip)
        try:
            info = V.probe_video(clip)  # decodes every frame: a truncated clip is refused now
            key = find_keyframe(info, 0, info.frames - 1, None, None, None, VideoConfig().keyframe_search)
            rgb = V.frame_at(clip, key, info.rotation)
            faces = find_faces(rgb)
        except UserError as exc:
            clip.unlink(missing_ok=True)
            raise ApiError(400, self.private(str(exc).replace(str(clip), "the uploaded clip"))) from None
        save_image(rgb, self.uploads / f"{sid}-keyframe.png")
        meta = {"id": sid, "kind": "clip", "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "faces": [{"box": [round(v, 2) for v in f["box"]]} for f in faces], "frames": info.frames,
                "seconds": round(info.times[-1], 3), "keyframe": key, "keyframe_seconds": info.times[key],
                "photo": clip.name, "landmarks": [f["landmarks"] for f in faces]}
        atomic.write_json(self.uploads / f"{sid}.json", meta)
        return self.public(meta)

    def keyframe(self, sid: str) -> Path:
        """A clip session's keyframe (PNG): the picture its points refer to; 404 for a photo."""
        meta = self.describe(sid)
        if meta.get("kind") != "clip":
            raise ApiError(404, f"session {sid} is a photo's; its picture is /photo")
        return Path(meta.get("keyframe_path") or self.uploads / f"{sid}-keyframe.png")

    def clip_output(self, sid: str) -> Path:
        """Where a clip session's edited clip goes (H.264 in MP4: what every player plays); each edit replaces it."""
        return self.uploads / f"{sid}-edited.mp4"

    def has_edited_clip(self, sid: str) -> bool:
        from dragedit.pipeline.core.video import finished_clip_edit

        return finished_clip_edit(self.folder(sid)) is not None

    def clip_written(self, sid: str) -> None:
        """The server's own edit has just written `clip_output`: it is the session's latest whole edit."""
        from dragedit.pipeline.core.video import finished_clip_edit

        made = finished_clip_edit(self.folder(sid))
        if made is not None:
            atomic.write_json(self._clip_note(sid), {"edit": made})

    def edited_clip(self, sid: str) -> Path:
        """The session's latest whole clip edit as H.264 MP4: the copy kept in uploads/ when it is of that edit,
        else written again from the session's patches (a clip the CLI edited, or a copy from before a later edit
        made elsewhere). 404 while the session holds no whole edit."""
        from dragedit.pipeline.core.video import finished_clip_edit, write_session_clip

        folder, out, note = self.folder(sid), self.clip_output(sid), self._clip_note(sid)
        with self._clip_lock:  # two requests at once: one writes, the other then finds it written
            made = finished_clip_edit(folder)
            if made is None:
                raise ApiError(404, "no edited clip yet; POST an edit first")
            try:
                kept = json.loads(note.read_text()).get("edit")
            except (OSError, ValueError, AttributeError):
                kept = None
            if kept == made and out.is_file():
                return out
            try:
                write_session_clip(folder, out)  # (to a temporary name, renamed when whole)
            except UserError as exc:
                raise ApiError(409, self.private(str(exc))) from None
            except OSError as exc:  # a full or read-only disk under uploads/: the server's operator to fix
                said = atomic.write_error(out, exc)
                if not isinstance(said, UserError):
                    raise
                raise ApiError(507, self.private(str(said))) from None
            if finished_clip_edit(folder) == made:  # else an edit began meanwhile: its job writes the clip again
                atomic.write_json(note, {"edit": made})
            return out

    def _clip_note(self, sid: str) -> Path:
        return self.uploads / f"{sid}-edited.json"

    def mask_file(self, data_url: Any, sid: str, size: tuple[int, int]) -> str | None:
        """A PNG data URL (white = may move, the photo's size) -> a file in uploads/, or None."""
        if data_url is None:
            return None
        if not isinstance(data_url, str) or not data_url.startswith("data:image/png;base64,"):
            raise ApiError(400, "\"mask\" must be a PNG data URL (data:image/png;base64,...)")
        try:
            raw = base64.b64decode(data_url.split(",", 1)[1], validate=True)
        except ValueError:
            raise ApiError(400, "\"mask\" is not valid base64") from None
        if len(raw) > MAX_MASK_BYTES:
            raise ApiError(413, f"\"mask\" is larger than {MAX_MASK_BYTES // 2 ** 20} MB")
        path = self.uploads / f"{sid}-mask-{uuid.uuid4().hex[:8]}.png"
        atomic.write_bytes(path, raw)
        from PIL import Image

        try:
            with Image.open(path) as img:
                mask_size = img.size
        except Exception:  # noqa: BLE001 - any unreadable PNG is the client's error
            path.unlink(missing_ok=True)
            raise ApiError(400, "\"mask\" is not a readable PNG") from None
        if mask_size != tuple(size):
            path.unlink(missing_ok=True)
            raise ApiError(400, f"\"mask\" is {mask_size[0]}x{mask_size[1]} but the photo is {size[0]}x{size[1]}")
        return str(path)

    # ---- what a session shows (through `Session`, which alone knows the folder's layout) -------------
    def _session(self, sid: str):
        from dragedit.pipeline.core.session import Session

        return Session(self.folder(sid), read_only=True, warn=lambda _msg: None)

    def describe(self, sid: str) -> dict[str, Any]:
        """id, size, faces, the face it edits and its photo's path (the path is for the server's own use:
        `public` leaves it out)."""
        self.folder(sid)  # 404 unless the id names a session
        upload = self.uploads / f"{sid}.json"
        if upload.is_file():
            meta = json.loads(upload.read_text())
            out = {**meta, "photo_path": str(self.uploads / meta["photo"])}
            with self._session(sid) as s:
                out["face"] = s.face
            return out
        clip = self._clip_folder(sid)
        if clip is not None:
            return clip
        with self._session(sid) as s:
            size, photo_path = s.photo_size, s.aligned_photo_path()
            if size is None or photo_path is None:
                raise ApiError(404, f"session {sid} has no aligned photo yet")
            return {"id": sid, "width": size[0], "height": size[1], "photo_path": photo_path, "face": s.face,
                    "faces": [{"box": f.get("box")} for f in s.faces()]}

    def _clip_folder(self, sid: str) -> dict[str, Any] | None:
        """A clip session the CLI made under the root, described as a clip upload is (None for a photo's): its
        keyframe and faces as the session keeps them, its frames from the clip where it was edited."""
        from PIL import Image

        view = self._clip_view(sid)
        if view is None:
            return None
        if not view.clip.is_file():
            raise ApiError(404, f"session {sid}'s clip {view.clip.name} is missing (moved or deleted); edit it where "
                                "it is now with `dragedit edit CLIP --session`")
        try:
            info = _probe(view.clip, view.clip.stat().st_mtime_ns)
        except UserError as exc:
            raise ApiError(409, self.private(str(exc))) from None
        if not view.keyframe < info.frames:
            raise ApiError(409, f"session {sid}'s clip {view.clip.name} changed since it was edited; edit it with "
                                "`dragedit edit CLIP --session`")
        with Image.open(view.keyframe_png) as img:
            width, height = img.size
        part = (None if view.first is None or view.last is None or not view.last < info.frames else
                [info.times[view.first], info.times[view.last]])
        return {"id": sid, "kind": "clip", "width": width, "height": height,
                "faces": [{"box": f.get("box")} for f in view.faces], "frames": info.frames,
                "seconds": round(info.times[-1], 3), "keyframe": view.keyframe,
                "keyframe_seconds": info.times[view.keyframe], "face": view.face, "photo_path": str(view.clip),
                "keyframe_path": str(view.keyframe_png), "landmarks": view.landmarks, "face_at": view.face_at,
                "part": part}

    def _clip_view(self, sid: str):
        """What a session folder keeps of its clip (None for a photo's session); 404 before its keyframe is aligned."""
        from dragedit.pipeline.core.video import clip_session_view

        try:
            return clip_session_view(self.root / sid)
        except UserError as exc:
            raise ApiError(404, self.private(str(exc))) from None

    @staticmethod
    def public(meta: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "photo", **{k: v for k, v in meta.items() if k not in PRIVATE}}

    def landmarks(self, sid: str, face: int):
        """Face `face`'s 68 landmarks (photo pixels), as found at upload or by the session's alignment."""
        import numpy as np

        from dragedit.pipeline.imaging.faces import choose_face, face_number

        self.folder(sid)
        upload = self.uploads / f"{sid}.json"
        view = None if upload.is_file() else self._clip_view(sid)  # (the clip itself is not read)
        if upload.is_file():
            found = json.loads(upload.read_text())["landmarks"]
        elif view is not None:
            found = view.landmarks
        else:
            with self._session(sid) as s:
                found = [s.landmarks(i) for i in range(len(s.faces()))]
        try:
            face = choose_face([{}] * len(found), face_number(face))
        except FieldError as exc:
            raise ApiError(400, exc.worded('"face"')) from None
        if found[face] is None:
            raise ApiError(409, f"session {sid} keeps no landmarks for face {face} (made by an older dragedit); "
                                "upload the photo again")
        return np.asarray(found[face], np.float64)

    def photo_path(self, sid: str) -> Path:
        path = Path(self.describe(sid)["photo_path"])
        if not path.is_file():
            raise ApiError(404, f"session {sid}'s photo is missing; upload it again")
        return path

    def history(self, sid: str) -> list[dict[str, Any]]:
        with self._session(sid) as s:
            return [h.to_dict() for h in s.history()]

    def edit_name(self, sid: str, n: int) -> str:
        with self._session(sid) as s:
            if not s.has_edit(n):
                raise ApiError(404, f"no edit {n} in this session")
        return L.edit_stage(n)

    def composite_photo(self, sid: str, name: str) -> Path | None:
        with self._session(sid) as s:
            return s.composite_photo(name)

    def edit_crop(self, sid: str, name: str) -> Path:
        with self._session(sid) as s:
            return s.edit_crop(name)

    def private(self, message: str) -> str:
        """A message with the server's folders taken out."""
        return message.replace(str(self.uploads) + "/", "").replace(str(self.root) + "/", "").replace(str(self.root), "")

    # ---- jobs across restarts ----------------------------------------------------------------------------
    def _marker(self, sid: str) -> Path:
        return self.uploads / f"{sid}.job"

    def job_started(self, sid: str, edit: int) -> None:
        atomic.write_json(self._marker(sid), {"edit": edit})

    def job_ended(self, sid: str) -> None:
        self._marker(sid).unlink(missing_ok=True)

    def interrupted(self, sid: str) -> int | None:
        """The edit a job was making when the server stopped (its marker outlived it), else None."""
        try:
            return int(json.loads(self._marker(sid).read_text())["edit"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

