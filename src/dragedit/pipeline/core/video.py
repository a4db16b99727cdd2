"""A clip: drag once, on a keyframe, and the same edit on every frame where the face is, each frame's own pixels
moved along the motion the generator made for it; the clip's timing, sound and every other pixel kept.

    plan = check_video(job, settings)     # 1. every check before any work; writes nothing
    result = run_video(plan, on_progress)  # 2. keyframe edit -> follow the face -> per-frame fields -> clip

The keyframe is edited by the one photo recipe (`edit.py`: align, PTI, drag) in a photo session inside the clip
session (`keyframe/`). The edit is the latent offset it made (edited w minus the keyframe's pivot). The clip's
own stages are cached in the clip session's manifest, so a kill anywhere resumes, the same command again
reuses everything, and a second edit reuses the alignment, the tuning, the face track and nothing else:
- `video/track`: the face followed over the frames, and found again by who it is after a cut, its FFHQ crop
  smoothed in time (no jitter: `video_track.py`);
- `video/fields/NNNNNN`: the frame's pivot (fitted from its neighbour's, in runs of at most 3 s that each
  start from the keyframe's pivot, across processes with `workers`: `video_fields.py`), its renders at the
  pivot and at the pivot plus the offset, and the motion between them;
- `video/frames/NNNNNN`: the frame's edited patch, moved by its field averaged with its neighbours' (no flicker)
  and held to the keyframe's motion at the same place of the face (another pose never gets a larger edit).
Frames are decoded one at a time; only the changed patch of each frame is kept on disk. The job's types are
`video_types.py`'s, what every frame takes from the keyframe's edit `video_keyframe.py`'s, and the fields
stage (runs of frames, in this process or across processes) `video_fields.py`'s.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dragedit.common.errors import UserError
from dragedit.common.hashing import file_sha256
from dragedit.pipeline.imaging import video as V

from . import layout as L
from .errors import RequestError, SessionMismatch, SettingError
from .originals import same_file
from .progress import Progress, ProgressHook, ignore
from .requests import EditRequest
from .session import Session
from .settings import EditSettings
from .video_keyframe import Keyframe, crop_frame
from .video_track import track_face
from .video_types import VideoConfig, VideoJob, VideoPlan, VideoResult



# ---- 1. checks before any work ------------------------------------------------------------------------------
def check_video(job: VideoJob, settings: EditSettings | None = None,
                config: VideoConfig | None = None) -> VideoPlan:
    """Everything that can be checked before any work: a one-line typed `UserError`, nothing written."""
    settings = EditSettings() if settings is None else settings
    config = VideoConfig() if config is None else config
    if not isinstance(settings, EditSettings):
        raise SettingError("settings", type(settings).__name__, "give an EditSettings (or None for the defaults)")
    if not job.requests:
        raise RequestError("drags", None, "no points given; give at least one drag")
    if settings.composite is not None and settings.composite.paste != "warp":
        raise SettingError("paste", settings.composite.paste, "a clip's frames are always their own pixels, moved "
                           "(warp); the generated paste is for photos")
    clip = Path(job.clip)
    if not clip.is_file():
        raise UserError(f"clip not found: {clip}" if not clip.is_dir() else f"{clip} is a folder, not a clip")
    if not V.is_video(clip):
        raise UserError(f"{clip} is not a video FFmpeg can read (a photo? an unsupported codec?); pass a clip "
                        "(.mp4, .mov, .mkv)")
    output = Path(job.output) if job.output is not None else default_output(clip)
    V.output_kind(output)
    if output.exists() and same_file(output, clip) or output.resolve() == clip.resolve():
        raise UserError(f"the output {output} is the clip itself; the original clip is never written: name "
                        "another output")
    if job.output is None and output.exists() and not job.overwrite:
        raise UserError(f"{output} exists (the default output, -o left out); pass --overwrite to replace it, or -o "
                        "to name another file")
    if not output.parent.is_dir():
        raise UserError(f"cannot write {output}: folder {output.parent} does not exist")
    info = V.probe_video(clip)  # decodes every frame: a truncated clip is refused now
    first, last = _frame_range(info, job.start, job.end)
    keyframe = None
    if job.keyframe is not None:
        keyframe = _nearest(info.times, job.keyframe)
        if job.keyframe > info.times[-1] + 1.0 / max(info.fps, 1.0) or not first <= keyframe <= last:
            raise RequestError("keyframe", job.keyframe, f"past the edited part of the clip ({info.times[first]:.2f}"
                               f"-{info.times[last]:.2f} s); give a time inside it")
    keyframe = find_keyframe(info, first, last, keyframe, job.face, job.face_at, config.keyframe_search)
    session = Path(job.session) if job.session is not None else output.parent / f"{clip.stem}.dragedit"
    sha = file_sha256(clip)
    with Session(session, read_only=True) as s:
        ident = s.identity
        if ident and ident.get("photo") != sha:
            raise SessionMismatch(f"session {session.name} was made for another clip or photo; {clip.name} differs, "
                                  "so nothing in the session was changed: use a new session folder for this clip")
    _check_disk(info, session, output, first, last)
    return VideoPlan(job=job, settings=settings, config=config, info=info, clip_sha=sha, session=session,
                     output=output, first=first, last=last, keyframe=keyframe)


def default_output(clip: Path) -> Path:
    """CLIP_edited beside the clip, in its container where dragedit writes it, else .mp4."""
    suffix = clip.suffix.lower() if clip.suffix.lower() in V.VIDEO_SUFFIXES else ".mp4"
    return clip.with_name(f"{clip.stem}_edited{suffix}")


def _nearest(times: list[float], t: float) -> int:
    return int(np.argmin(np.abs(np.asarray(times) - t)))


def _frame_range(info: V.VideoInfo, start: float | None, end: float | None) -> tuple[int, int]:
    first = 0 if start is None else int(np.searchsorted(info.times, start - 1e-6))
    last = len(info.times) - 1 if end is None else int(np.searchsorted(info.times, end + 1e-6)) - 1
    if first >= len(info.times):
        raise RequestError("start", start, f"past the end of the clip ({info.times[-1]:.2f} s)")
    if last < first:
        raise RequestError("end", end, "before the start; give an end after it")
    return first, last


def _check_disk(info: V.VideoInfo, session: Path, output: Path, first: int, last: int) -> None:
    """Too little disk for the session and the output is refused before any work (a rough upper bound: a
    generator crop's worth of patch, renders and field per frame, and the output at the source's bit rate
    for H.264, uncompressed for the lossless ones)."""
    frames = last - first + 1
    per_frame = 3 * 512 * 512 + 2 * 256 * 256 * 3 + 256 * 256 * 8
    kind = V.output_kind(output)
    out_bytes = info.path.stat().st_size * 2 if kind == "h264" else info.width * info.height * 3 * info.frames
    need = frames * per_frame + out_bytes + 64 * 2 ** 20
    where = session if session.exists() else session.parent
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need:
        raise UserError(f"too little disk: the session and the output need about {need / 2 ** 30:.1f} GB and "
                        f"{where} has {free / 2 ** 30:.1f} GB free; free some space or edit a part (--start/--end)")


# ---- 2. the work --------------------------------------------------------------------------------------------
def run_video(plan: VideoPlan, on_progress: ProgressHook = ignore) -> VideoResult:
    """Keyframe edit, face track, per-frame fields, then the clip; every stage cached in the clip session."""
    from .edit import EditJob, edit
    from .video_fields import fit_fields

    job, info = plan.job, plan.info
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with Session(plan.session) as s:
        s.check_photo(plan.clip_sha, Path(job.clip).name)
        if s.manifest.data.get("identity") is None:
            s.record_identity(plan.clip_sha, Path(job.clip), job.face or 0,
                              {"kind": "video", "face": job.face or 0, **({"face_at": list(job.face_at)}
                                                                         if job.face_at else {})})
        # 1. the keyframe: found (or given), written as a photo, and aligned by the one photo recipe
        keyframe = _keyframe(s, plan, on_progress)
        keyframe_job = EditJob(s.path(L.KEYFRAME), requests=job.requests, photo=s.path(L.KEYFRAME_PNG),
                               face=job.face, face_at=job.face_at, from_spec="pivot", until="align")
        edit(keyframe_job, plan.settings, on_progress)
        seconds["keyframe"] = round(time.perf_counter() - t0, 3)

        # 2. the face followed over the frames, its crop smoothed in time
        t = time.perf_counter()
        track = track_face(s, plan, keyframe, on_progress)
        seconds["track"] = round(time.perf_counter() - t, 3)

        # 3. the keyframe edited (PTI tuned on it and on a few sampled frames' crops, then the drag)
        t = time.perf_counter()
        res = edit(replace(keyframe_job, until="drag", tune_with=_tuning_crops(s, plan, track, keyframe)),
                   plan.settings, on_progress)
        seconds["keyframe_edit"] = round(time.perf_counter() - t, 3)
        key = Keyframe.load(s.path(L.KEYFRAME), res.edits[-1], plan.settings)

        # 4. each frame's pivot, renders and motion (in runs across processes with `workers`)
        t = time.perf_counter()
        fit_fields(s, plan, track, key, res.edits[-1], on_progress)
        seconds["fields"] = round(time.perf_counter() - t, 3)

        # 5. the clip: each frame's patch (its field smoothed over its neighbours'), written with the source's
        #    timestamps and sound
        t = time.perf_counter()
        edited = _write(s, plan, track, key, res.edits[-1], on_progress)
        seconds["frames"] = round(time.perf_counter() - t, 3)
        counts: dict[str, int] = {}
        for name, how in s.report.items():
            kind = name.split("/")[1] if name.startswith(L.VIDEO + "/") else name
            counts[f"{kind} {how}"] = counts.get(f"{kind} {how}", 0) + 1
        on_progress(Progress("done"))
    seconds["total"] = round(time.perf_counter() - t0, 3)
    linked = len(track["frames"])
    return VideoResult(session=str(plan.session), output=str(plan.output), keyframe=keyframe,
                       keyframe_seconds=info.times[keyframe], frames=info.frames, edited=edited,
                       untouched=(plan.last - plan.first + 1) - linked, found_again=track["found_again"],
                       edits=res.edits, stages=counts,
                       keyframe_stages=dict(res.stages), seconds=seconds)


def edit_video(clip: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike | None = None, *,
               session: str | os.PathLike | None = None, settings: EditSettings | None = None,
               config: VideoConfig | None = None, face: int | None = None,
               face_at: tuple[float, float] | None = None, keyframe: float | None = None,
               start: float | None = None, end: float | None = None, overwrite: bool = False,
               on_progress: ProgressHook = ignore) -> VideoResult:
    """The whole clip recipe in one call: check_video, then run_video."""
    job = VideoJob(clip, requests=edits, output=output, session=session, face=face, face_at=face_at,
                   keyframe=keyframe, start=start, end=end, overwrite=overwrite)
    return run_video(check_video(job, settings, config), on_progress)


# ---- the stages ---------------------------------------------------------------------------------------------
def find_keyframe(info: V.VideoInfo, first: int, last: int, index: int | None, face: int | None,
                  face_at: tuple[float, float] | None, search: int) -> int:
    """The keyframe: `index` if the face asked for is on it, else the first frame from `first` where it is (within
    `search` frames); a one-line error otherwise. A check before any work: frames are only decoded."""
    from dragedit.pipeline.imaging.faces import NoFaceError, choose_face, find_faces

    for i, _, rgb in V.frames(info.path, info.rotation):
        if i < first or (index is not None and i != index):
            continue
        if i > min(last, first + search):
            break
        try:
            choose_face(find_faces(rgb), face or 0, face_at)
            return i
        except NoFaceError:
            if index is not None:
                raise UserError(f"no face on the keyframe ({info.times[i]:.2f} s); give a keyframe time where the "
                                "face is visible") from None
    raise UserError(f"no face found in the first {search} frames from {info.times[first]:.2f} s; give a keyframe "
                    "time where the face is visible")


def _keyframe(s: Session, plan: VideoPlan, on_progress: ProgressHook) -> int:
    """The keyframe's pixels written as `video/keyframe.png` (cached)."""
    from dragedit.common.images import save_image

    def compute():
        on_progress(Progress("keyframe"))
        path = s.path(L.KEYFRAME_PNG)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(V.frame_at(plan.info.path, plan.keyframe, plan.info.rotation), path)
        return [path], {"index": plan.keyframe}

    s.cached(L.VIDEO_KEYFRAME, {"clip": plan.clip_sha}, {"keyframe": plan.keyframe}, compute)
    return plan.keyframe


def tuning_frames(followed: list[int], keyframe: int, count: int) -> list[int]:
    """`count` of the followed frames (the keyframe left out), spread evenly over them: the middles of `count`
    equal parts, so a turn of the head late in the clip is among them as much as the start."""
    others = [i for i in sorted(followed) if i != keyframe]
    if count <= 0 or not others:
        return []
    picks = {others[min(len(others) - 1, int((k + 0.5) * len(others) / count))] for k in range(count)}
    return sorted(picks)


def _tuning_crops(s: Session, plan: VideoPlan, track: dict, keyframe: int) -> list[Path]:
    """The sampled frames' crops (`video/tuning/NNNNNN.png`, cached) the keyframe's PTI tunes the generator on."""
    from dragedit.common.images import save_image

    picks = tuning_frames(list(track["frames"]), keyframe, plan.config.tune_frames)
    folder = s.path(L.VIDEO_TUNING)
    paths = [folder / f"{i:06d}.png" for i in picks]

    def compute():
        folder.mkdir(parents=True, exist_ok=True)
        for i, _, rgb in V.frames(plan.info.path, plan.info.rotation):
            if i in picks:
                save_image(crop_frame(rgb, track["frames"][i], track["size"])[0], folder / f"{i:06d}.png")
            if i >= picks[-1]:
                break
        return paths, {"frames": picks}

    if picks:
        s.cached(L.VIDEO_TUNING, {"track": s.stages[L.VIDEO_TRACK]["outputs"][L.TRACK_JSON]},
                 {"frames": picks}, compute)
    return paths


def _write(s: Session, plan: VideoPlan, track: dict, key: Keyframe, edit_name: str,
           on_progress: ProgressHook) -> int:
    """The output clip: every frame of the source, the tracked ones of the edited range with their patch (cached
    per frame; computed first across processes with `workers`), with the source's timestamps and sound. Returns
    how many frames changed."""
    from .video_fields import frame_patch, make_patches

    cfg, info = plan.config, plan.info
    frames = track["frames"]
    make_patches(s, plan, track, key, edit_name, on_progress)
    changed = 0

    def edited(i: int, rgb: np.ndarray) -> np.ndarray:
        nonlocal changed
        on_progress(Progress("frames", i + 1, info.frames))
        if i not in frames:
            return rgb
        entry = frame_patch(s, plan, track, key, i, rgb, s.cached)
        if not entry.get("bbox"):
            return rgb
        changed += 1
        return _with_patch(s, i, rgb, entry["bbox"])

    V.write_video(info, plan.output, edited, crf=cfg.crf)
    return changed


def _with_patch(s: Session, i: int, rgb: np.ndarray, bbox: list[int]) -> np.ndarray:
    """Frame i with its kept patch pasted where its entry says."""
    from PIL import Image

    x0, y0, x1, y1 = bbox
    out = rgb.copy()
    out[y0:y1, x0:x1] = np.asarray(Image.open(s.path(L.video_frame_stage(i), "patch.png")).convert("RGB"))
    return out


# ---- a look at what a clip session made ---------------------------------------------------------------------
def is_clip_session(folder: str | os.PathLike) -> bool:
    with Session(folder, read_only=True) as s:
        return L.VIDEO_TRACK in s.stages


@dataclass(frozen=True)
class ClipSessionView:
    """What a clip session keeps of its clip, for a door that opens a session the CLI made (the server)."""
    clip: Path  # where the clip was when it was edited (its content is checked by the next edit)
    keyframe: int
    keyframe_png: Path  # the frame the points refer to, upright
    face: int | None  # the face edited, an index into `faces`
    face_at: tuple[float, float] | None
    faces: list[dict[str, Any]]  # the keyframe's faces, largest first (their boxes)
    landmarks: list[list[list[float]] | None]  # each face's 68 landmarks (keyframe pixels), where kept
    first: int | None  # the edited part's frames, once the face was followed
    last: int | None


def clip_session_view(folder: str | os.PathLike) -> ClipSessionView | None:
    """The clip a session was made for, its keyframe and the keyframe's faces; None for a photo's session.
    A one-line `UserError` for a clip session whose keyframe was not aligned yet (stopped before)."""
    with Session(folder, read_only=True) as s:
        ident = s.identity or {}
        found = ident.get("face_spec")
        spec: dict[str, Any] = found if isinstance(found, dict) else {}
        entry = s.stages.get(L.VIDEO_KEYFRAME)
        if spec.get("kind") != "video" and entry is None:
            return None
        track = s.stages.get(L.VIDEO_TRACK, {}).get("params", {})
        png = s.path(L.KEYFRAME_PNG)
    with Session(Path(folder) / L.KEYFRAME, read_only=True) as ks:
        faces = ks.faces()
        landmarks = [ks.landmarks(i) for i in range(len(faces))]
    if entry is None or not faces or not png.is_file():
        raise UserError(f"session {Path(folder).name} has not aligned its clip's keyframe yet; run its clip edit "
                        "again with the CLI")
    at = spec.get("face_at")
    return ClipSessionView(clip=Path(ident.get("photo_path") or ""), keyframe=int(entry["params"]["keyframe"]),
                           keyframe_png=png, face=ident.get("face"),
                           face_at=(float(at[0]), float(at[1])) if isinstance(at, list) and len(at) == 2 else None,
                           faces=faces, landmarks=landmarks, first=track.get("first"), last=track.get("last"))


def finished_clip_edit(folder: str | os.PathLike) -> str | None:
    """A name (a digest) for the clip edit the session holds whole: its track, and every followed frame's patch
    made on that track for one edit of the keyframe. None while one is missing (no edit yet, or one stopped
    before its end). A door that serves the edited clip (the server, for a session the CLI edited) keys its copy
    with it, so a later edit is never served stale."""
    import hashlib
    import json

    with Session(folder, read_only=True) as s:
        track_sha, frames = _followed(s)
        keys, edits = [], set()
        for i in frames:
            e = s.stages.get(L.video_frame_stage(i))
            if not e or e.get("inputs", {}).get("track") != track_sha:
                return None
            if not all((s.folder / rel).is_file() for rel in e.get("outputs", {})):  # a patch deleted since
                return None
            keys.append(e.get("key"))
            edits.add(e["inputs"].get("edit"))
    if not frames or len(edits) != 1:
        return None
    return hashlib.sha256(json.dumps([track_sha, keys]).encode()).hexdigest()


def _followed(s: Session) -> tuple[str | None, list[int]]:
    """(the track's SHA-256, the frames it follows) as committed and intact; (None, []) before the track."""
    import json

    entry = s.stages.get(L.VIDEO_TRACK)
    if not entry or not s.manifest.lookup(L.VIDEO_TRACK, entry.get("key")):  # (its outputs checked intact there)
        return None, []
    try:
        frames = json.loads(s.path(L.TRACK_JSON).read_text())["frames"]
        return entry["outputs"][L.TRACK_JSON], sorted(int(k) for k in frames)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, []


def write_session_clip(folder: str | os.PathLike, output: Path, crf: int = V.DEFAULT_CRF) -> None:
    """The session's clip edit written again from the patches it keeps (nothing computed but the encoding), the
    source's timing and sound kept: for a door that serves a clip edited elsewhere. Check `finished_clip_edit`
    first: a frame without its patch is copied as it is."""
    with Session(folder, read_only=True) as s:
        clip = s.photo_path()  # checked against the content the session was made of
        info = V.probe_video(clip)
        boxes = {i: s.stages.get(L.video_frame_stage(i), {}).get("bbox") for i in _followed(s)[1]}

        def edited(i: int, rgb: np.ndarray) -> np.ndarray:
            box = boxes.get(i)
            return _with_patch(s, i, rgb, box) if box else rgb

        V.write_video(info, Path(output), edited, crf=crf)


def preview_strip(folder: str | os.PathLike, count: int = 4, tile: int = 256) -> np.ndarray:
    """Source frames above, the edited ones below, around the face: `count` frames across the ones the clip
    session edited (read from its patches; nothing is computed)."""
    import cv2

    with Session(folder, read_only=True) as s:
        clip = s.photo_path()
        info = V.probe_video(clip)
        edited = [i for i in _followed(s)[1] if s.stages.get(L.video_frame_stage(i), {}).get("bbox")]
        if not edited:
            raise UserError(f"session {Path(folder).name} has no edited frame yet; edit the clip first")
        picks = sorted({edited[int(k)] for k in np.linspace(0, len(edited) - 1, min(count, len(edited)))})
        tiles = []
        for i, _, rgb in V.frames(clip, info.rotation):
            if i not in picks:
                continue
            x0, y0, x1, y1 = s.stages[L.video_frame_stage(i)]["bbox"]
            after = _with_patch(s, i, rgb, [x0, y0, x1, y1])
            cx, cy, half = (x0 + x1) // 2, (y0 + y1) // 2, max(x1 - x0, y1 - y0)
            box = (max(0, cx - half), max(0, cy - half), min(rgb.shape[1], cx + half), min(rgb.shape[0], cy + half))
            pair = [cv2.resize(np.ascontiguousarray(img[box[1]:box[3], box[0]:box[2]]), (tile, tile),
                               interpolation=cv2.INTER_AREA) for img in (rgb, after)]
            tiles.append(np.concatenate([pair[0], np.full((4, tile, 3), 255, np.uint8), pair[1]], axis=0))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([t for k, tile_ in enumerate(tiles) for t in ((gap, tile_) if k else (tile_,))], axis=1)
