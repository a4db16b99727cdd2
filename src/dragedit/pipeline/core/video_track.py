"""A clip's face track: the keyframe's face followed over the frames, its FFHQ crop smoothed in time.

dlib finds the faces on every frame (in this process, in worker processes or as Ray tasks), and each frame's
shot is told from hard cuts. The keyframe's face is followed outwards frame by frame by position and size,
within its shot. Where it is lost (a cut, the person leaving), it is found again by who it is: dlib's
face-recognition descriptor of a face on a later (or earlier) frame against the followed face's, and followed
by position from there. The crop of each frame where the face is followed is then
smoothed over time so it does not jitter (`video/track` in the clip session).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Container

import numpy as np

from dragedit.common import atomic
from dragedit.common.errors import UserError
from dragedit.pipeline.imaging import video as V

from . import layout as L
from .progress import Progress, ProgressHook
from .session import Session
from .video_types import VideoPlan

Faces = dict[int, list[dict[str, Any]]]
# how often (seconds) the frames where the face was lost are searched for it by who it is; a stretch found again
# is followed back to where it starts, so a search every few frames loses nothing but descriptor time
SEARCH_EVERY_S = 0.25


def track_face(s: Session, plan: VideoPlan, keyframe: int, on_progress: ProgressHook) -> dict:
    """The keyframe's face followed frame to frame (by position and size, and found again by who it is where it
    was lost), its FFHQ quad smoothed in time: {"frames": {index: {"c2p": 3x3, "landmarks": 68x2}}} for the
    frames where it is found and large enough, "size" (the crop's), "cuts" (the first frames of the shots after
    the first among them: no smoothing, pivot or field is carried over one) and "found_again" (how many of the
    frames were found by who the face is)."""
    from .stages.align import alignment

    cfg, info = plan.config, plan.info
    with Session(s.path(L.KEYFRAME), read_only=True) as ks:
        al = alignment(ks)
    size, face_box = al.crop_size, list(al.face_box)
    params = {"first": plan.first, "last": plan.last, "keyframe": keyframe, "size": size,
              "min_face_px": cfg.min_face_px, "smoothing": cfg.crop_smoothing_s,
              "follow": cfg.follow_distance, "face_box": [round(v, 3) for v in face_box], "keyframe_crop": "own",
              "same_person": cfg.same_person, "cut_score": V.CUT_SCORE, "shots": "split"}

    def compute():
        found = found_faces(plan, on_progress)
        followed = follow_face(found, keyframe, face_box, cfg.follow_distance, cfg.min_face_px)
        every = max(1, round(info.fps * SEARCH_EVERY_S))
        linked = find_again(found, followed, lambda ask: _descriptors(plan, ask, on_progress), cfg.follow_distance,
                            cfg.min_face_px, cfg.same_person, every)
        landmarks = {i: np.asarray(f["landmarks"], np.float64) for i, f in linked.items()}
        cuts = sorted({f["shot"] for f in linked.values() if "shot" in f})[1:]
        frames = smooth_crops(landmarks, size, cfg.crop_smoothing_s * max(info.fps, 1.0), keyframe, cuts)
        path = s.path(L.TRACK_JSON)
        # "cuts": where a shot among the followed frames starts (absent when they are all in one shot)
        atomic.write_json(path, {"frames": {str(i): f for i, f in frames.items()}, **({"cuts": cuts} if cuts else {})})
        return [path], {"linked": len(frames), "found_again": len(linked) - len(followed)}

    entry = s.cached(L.VIDEO_TRACK, {"clip": plan.clip_sha}, params, compute)
    data = json.loads(s.path(L.TRACK_JSON).read_text())
    again = entry.get("found_again")
    return {"frames": {int(i): f for i, f in data["frames"].items()}, "size": size,
            "cuts": [int(c) for c in data.get("cuts", [])],
            "found_again": again if isinstance(again, int) and not isinstance(again, bool) else 0}


def found_faces(plan: VideoPlan, on_progress: ProgressHook) -> Faces:
    """Every face on every frame of the edited part: in this process, or with `workers` N in N processes (or Ray
    tasks), each detecting a part of consecutive frames (dlib's detector runs on one core; the faces found are
    the same)."""
    from .video_fields import cut_runs, worker_count

    total = plan.last - plan.first + 1
    parts = cut_runs(list(range(plan.first, plan.last + 1)), worker_count(plan.config))
    if len(parts) == 1:
        return faces_on_frames(plan.info.path, plan.info.rotation, plan.first, plan.last,
                               lambda done: on_progress(Progress("track", done, total)))
    if plan.config.backend == "ray":
        return _faces_on_ray(plan, parts, on_progress)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from dragedit.common.threads import start_worker

    found: Faces = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(parts), mp_context=ctx, initializer=start_worker, initargs=(1,)) as pool:
        jobs = [pool.submit(faces_on_frames, plan.info.path, plan.info.rotation, p[0], p[-1]) for p in parts]
        for job in as_completed(jobs):
            found.update(job.result())
            on_progress(Progress("track", len(found), total))
    return found


def _faces_on_ray(plan: VideoPlan, parts: list[list[int]], on_progress: ProgressHook) -> Faces:
    """The parts' detection as Ray tasks of one CPU each (the clip read where it is: a path every node sees)."""
    from dragedit.common.cluster import connect_ray

    ray = connect_ray(plan.config.address)
    task = ray.remote(num_cpus=1, max_retries=0)(faces_on_frames)
    share = {task.remote(plan.info.path, plan.info.rotation, p[0], p[-1]): p for p in parts}
    waiting = list(share)
    found: Faces = {}
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            try:
                found.update(ray.get(done[0]))
            except Exception as exc:  # noqa: BLE001 - a task that died: one line, the command stops
                part = share[done[0]]
                raise UserError(f"the Ray task detecting faces on frames {part[0]}-{part[-1]} failed "
                                f"({str(exc).strip().splitlines()[-1][:200]}); the clip must be at the same path on "
                                "every node") from None
            on_progress(Progress("track", len(found), plan.last - plan.first + 1))
    finally:
        for ref in waiting:
            ray.cancel(ref, force=True)
    return found


def faces_on_frames(path: Path, rotation: int, first: int, last: int,
                    on_frame=lambda done: None) -> Faces:
    """index -> the faces found on it (none: []), for frames first..last of the clip, each face with the shot it
    is in ("shot": the index of the shot's first frame; every frame from the clip's start is looked at for cuts,
    so parts read by different processes name their shots alike)."""
    from dragedit.pipeline.imaging.faces import NoFaceError, find_faces

    found: Faces = {}
    shots = V.Shots()
    for i, _, rgb in V.frames(path, rotation):
        if i > last:
            break
        shot = shots.see(i, rgb)
        if i >= first:
            try:
                found[i] = [{**f, "shot": shot} for f in find_faces(rgb)]
            except NoFaceError:
                found[i] = []
            on_frame(len(found))
    return found


def follow_face(found: Faces, start: int, box: list[float], reach: float, min_px: int,
                taken: Container[int] = ()) -> dict[int, dict[str, Any]]:
    """index -> the face (box, landmarks) followed from `box` on frame `start`, outwards frame by frame: the face
    whose box centre is nearest the last one found, within `reach` of its size and of a like size, in the same
    shot (after a cut, another person may stand where the face was: who it is decides there, `find_again`). Faces
    narrower than `min_px` are followed but not kept; a frame in `taken` (another stretch's) stops the walk."""
    linked: dict[int, dict[str, Any]] = {}
    shot = _nearest(found.get(start, []), box, {}).get("shot")
    for step in (1, -1):
        last = list(box)
        i = start
        while i in found and i not in taken:
            cx, cy = (last[0] + last[2]) / 2, (last[1] + last[3]) / 2
            side = max(last[2] - last[0], last[3] - last[1])
            best, dist = None, reach * side
            for f in found[i]:
                if f.get("shot") != shot:
                    continue
                b = f["box"]
                d = math.hypot((b[0] + b[2]) / 2 - cx, (b[1] + b[3]) / 2 - cy)
                ratio = max(b[2] - b[0], 1e-6) / max(last[2] - last[0], 1e-6)
                if d <= dist and 0.6 <= ratio <= 1.6:
                    best, dist = f, d
            if best is not None:
                last = list(best["box"])
                if _width(best) >= min_px:
                    linked[i] = best
            i += step
    return linked


def find_again(found: Faces, linked: dict[int, dict[str, Any]],
               describe: Callable[[Faces], dict[int, list[np.ndarray]]], reach: float, min_px: int,
               same_person: float, every: int) -> dict[int, dict[str, Any]]:
    """`linked` with the frames where the face was lost searched for it by who it is. On every `every`-th of them,
    a face at least `min_px` wide whose dlib descriptor lies within `same_person` of the followed face's (the mean
    over up to 8 frames spread over `linked`) is that face again, and is followed by position from there, both
    ways, up to the frames already linked; that stretch is kept when its face is within `same_person` on the
    median of the searched frames it holds (one near look is not enough). Position alone cannot do it: after a
    cut the face is elsewhere and of another size. `describe` gives the descriptors of the faces asked for, frame
    by frame (one pass over the clip); it is not called when nothing was lost."""
    lost = [i for i in sorted(found) if i not in linked and i % every == 0
            and any(_width(f) >= min_px for f in found[i])]
    if not lost or not linked or same_person <= 0:
        return linked
    known = sorted(linked)
    refs = sorted({known[round(k * (len(known) - 1) / 7)] for k in range(8)})
    ask: Faces = {i: [linked[i]] for i in refs}
    ask.update({i: [f for f in found[i] if _width(f) >= min_px] for i in lost})
    got = describe(ask)
    reference = np.mean([got[i][0] for i in refs], axis=0)
    dist = {i: [float(np.linalg.norm(d - reference)) for d in got[i]] for i in lost}
    refused: set[tuple[int, int]] = set()
    linked = dict(linked)
    for i in lost:
        if i in linked:  # reached by a stretch found again before it
            continue
        near = [k for k in range(len(dist[i])) if (i, k) not in refused and dist[i][k] <= same_person]
        if not near:
            continue
        k = min(near, key=lambda k: dist[i][k])
        stretch = follow_face(found, i, ask[i][k]["box"], reach, min_px, taken=linked)
        # the stretch's face on every searched frame it holds: a stranger who came near once is not kept
        held = {j: next(n for n, f in enumerate(ask[j]) if f is stretch[j]) for j in lost if j in stretch}
        if float(np.median([dist[j][n] for j, n in held.items()])) <= same_person:
            linked.update(stretch)
        else:
            refused.update(held.items())
    return linked


def _descriptors(plan: VideoPlan, ask: Faces, on_progress: ProgressHook) -> dict[int, list[np.ndarray]]:
    """dlib's descriptor of each face asked for, on its frame (the clip decoded once, up to the last one)."""
    from dragedit.pipeline.imaging.faces import face_descriptor

    got: dict[int, list[np.ndarray]] = {}
    for i, _, rgb in V.frames(plan.info.path, plan.info.rotation):
        if i > max(ask):
            break
        if i in ask:
            got[i] = [face_descriptor(rgb, f["box"], f["landmarks"]) for f in ask[i]]
            on_progress(Progress("identity", len(got), len(ask)))
    return got


def _nearest(faces: list[dict[str, Any]], box: list[float], default: dict[str, Any]) -> dict[str, Any]:
    """The face whose box centre is nearest `box`'s (`default` when there is none)."""
    def off(f):
        return math.hypot(f["box"][0] + f["box"][2] - box[0] - box[2], f["box"][1] + f["box"][3] - box[1] - box[3])

    return min(faces, key=off, default=default)


def _width(face: dict[str, Any]) -> float:
    return face["box"][2] - face["box"][0]


def smooth_crops(linked: dict[int, np.ndarray], size: int, sigma_frames: float,
                 keyframe: int | None = None, cuts: Container[int] = ()) -> dict[int, dict[str, Any]]:
    """Each frame's FFHQ crop from its landmarks, its quad's centre and axes smoothed by a Gaussian over time
    within each run of consecutive frames (a run breaks where the face is missing, and at `cuts`: the first
    frames of shots, where the face jumps). The keyframe keeps its own
    crop, the one its photo edit was made on: what smoothing moved there is put back, fading over the same
    Gaussian, so the keyframe of the clip gets the photo's edit (a crop a few pixels off changes what the
    latent offset does: on a fast-moving face it doubled the identity change)."""
    from dragedit.pipeline.imaging.align import crop_to_photo_matrix, ffhq_quad

    out: dict[int, dict[str, Any]] = {}
    runs: list[list[int]] = []
    for i in sorted(linked):
        if runs and runs[-1][-1] == i - 1 and i not in cuts:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        quads = np.stack([ffhq_quad(linked[i]) for i in run])  # T x 4 x 2 (tl, bl, br, tr)
        centre = quads.mean(axis=1)
        x_axis = (quads[:, 3] - quads[:, 0] + quads[:, 2] - quads[:, 1]) / 4
        y_axis = (quads[:, 1] - quads[:, 0] + quads[:, 2] - quads[:, 3]) / 4
        raw = (centre, x_axis, y_axis)
        centre, x_axis, y_axis = (_gaussian(a, sigma_frames) for a in raw)
        if keyframe in run and sigma_frames > 0:
            k = run.index(keyframe)
            fade = np.exp(-0.5 * ((np.arange(len(run)) - k) / sigma_frames) ** 2)[:, None]
            centre, x_axis, y_axis = (a + fade * (r[k] - a[k]) for a, r in zip((centre, x_axis, y_axis), raw))
        for t, i in enumerate(run):
            c, x, y = centre[t], x_axis[t], y_axis[t]
            quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
            out[i] = {"c2p": crop_to_photo_matrix(quad, size).tolist(), "landmarks": linked[i].tolist()}
    return out


def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian over the first axis (edges reflected); sigma 0 leaves it as it is."""
    if sigma <= 0 or len(a) < 2:
        return a
    r = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([a[r:0:-1], a, a[-2:-r - 2:-1]]) if len(a) > r else np.pad(a, [(r, r)] + [(0, 0)] *
                                                                                           (a.ndim - 1), mode="edge")
    return np.stack([np.tensordot(k, padded[t:t + 2 * r + 1], axes=(0, 0)) for t in range(len(a))])
