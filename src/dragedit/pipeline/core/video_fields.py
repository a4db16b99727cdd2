"""A clip's per-frame stages, in this process or across worker processes: `video/fields/NNNNNN` (each followed
frame's pivot, its renders at the pivot and at the pivot plus the keyframe's offset, and the motion between
them) and `video/frames/NNNNNN` (the frame's own pixels moved by its field, averaged with its neighbours', drawn
towards the keyframe's motion carried to the frame's face and held to it, the changed patch kept).

A frame's pivot is fitted from its neighbour's (a short fit: a face moves little from one frame to the next).
Followed so over a long clip it drifts (on a 9 s clip where the head turns, TG-ID fell to 0.972 of the
source's), so the followed frames are cut into runs of consecutive frames, at most `VideoConfig.run_seconds`
long and at least one per worker, each fitted in order; a run never spans a frame where the face was lost (a
cut, a turn away: the pose after it may be anything), and the keyframe starts one. A run starts from the
keyframe's pivot: on the keyframe itself in `pivot_steps` (its pivot fits it already), on any other frame in
`run_start_steps` (its pose may be far from the keyframe's). With one worker (the default) the runs are fitted
in this process, in one pass over the clip; with `workers` N, each of N processes takes a share of consecutive
runs.

Worker processes each take cores/workers threads, look up what is committed, and write each frame's artifacts
atomically; the parent, which holds the session's lock, commits each frame's manifest entry as its worker
reports it, so a kill loses only the frames being fitted. A frame's key holds where its pivot started (the
keyframe, or the previous frame's pivot by content) and the threads it was computed with, so a clip fitted
with another `workers` is recomputed, never mixed.

Patches need every field of their neighbours, so with N workers they are made after the fields, by the same
workers (no process started, no model loaded again), each a part of consecutive frames; the clip is then
written in order from them (decoding and encoding stay in one process). This module imports no torch at load
time: a worker sets its thread limits first.
"""
from __future__ import annotations

import bisect
import functools
import math
import queue as queue_module
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Container

import numpy as np

from dragedit.common import atomic
from dragedit.common.environment import log
from dragedit.common.errors import UserError
from dragedit.common.hashing import file_sha256

from . import layout as L
from .progress import Progress, ProgressHook
from .session import Session
from .video_keyframe import Keyframe, crop_frame, crop_landmarks, frame_inputs, frame_region
from .video_types import VideoPlan

Cached = Callable[[str, dict, dict, Callable[[], tuple[list[Path], dict]]], dict]


def cut_runs(frames: list[int], count: int) -> list[list[int]]:
    """The frames (in order) cut into `count` runs of consecutive ones, of lengths within one of each other
    (fewer runs than asked when there are fewer frames; never an empty run)."""
    count = max(1, min(count, len(frames)))
    bounds = [round(k * len(frames) / count) for k in range(count + 1)]
    return [frames[bounds[k]:bounds[k + 1]] for k in range(count) if bounds[k] < bounds[k + 1]]


def shot_of(i: int, cuts: list[int]) -> int:
    """How many of the track's `cuts` (sorted) lie at or before frame `i`: frames of one shot share it."""
    return bisect.bisect_right(cuts, i)


def worker_count(cfg) -> int:
    """The processes to start: `workers`, but no more local ones than this machine's cores (each takes a core
    at least: more would only fight over them, and each holds its own models in memory); said once when cut."""
    from dragedit.common.threads import available_cores

    if cfg.backend == "ray" or cfg.workers <= available_cores():
        return cfg.workers
    _say_cut(cfg.workers, available_cores())
    return available_cores()


@functools.lru_cache(maxsize=None)
def _say_cut(asked: int, cores: int) -> None:
    log.warning(f"note: {asked} workers asked for on {cores} cores; {cores} processes run (more would only fight "
                "over the cores)")


def plan_runs(followed: list[int], keyframe: int, fps: float, run_seconds: float, workers: int,
              cuts: Container[int] = ()) -> list[list[int]]:
    """The followed frames (in order) cut into the runs whose pivots are fitted in a chain. A run never spans a
    frame where the face was lost (a cut, or the face gone: the pose after it may be anything) or a cut (`cuts`:
    the first frames of shots), and the keyframe starts one (its pivot fits it already, and the frames after it
    are best fitted from it). Each piece between those is cut into runs of like length, none longer than
    `run_seconds` (0: no limit), and into more where that makes at least one run per worker (the longest runs
    cut first)."""
    pieces: list[list[int]] = []
    for i in followed:
        if pieces and i == pieces[-1][-1] + 1 and i != keyframe and i not in cuts:
            pieces[-1].append(i)
        else:
            pieces.append([i])
    longest = max(1.0, run_seconds * fps) if run_seconds > 0 else math.inf
    counts = [1 if math.isinf(longest) else math.ceil(len(p) / longest) for p in pieces]
    while sum(counts) < workers:
        more = [k for k in range(len(pieces)) if counts[k] < len(pieces[k])]
        if not more:
            break
        k = max(more, key=lambda k: len(pieces[k]) / counts[k])
        counts[k] += 1
    return [run for piece, n in zip(pieces, counts) for run in cut_runs(piece, n)]


def fit_fields(s: Session, plan: VideoPlan, track: dict, key: Keyframe, edit_name: str,
               on_progress: ProgressHook) -> None:
    """Every followed frame's field stage, computed or reused, in runs: in this process with one worker, else in
    `workers` processes (`edit_name`: the keyframe session's edit whose offset is carried)."""
    import torch

    cfg = plan.config
    followed = sorted(track["frames"])
    workers = worker_count(cfg)
    runs = plan_runs(followed, plan.keyframe, plan.info.fps, cfg.run_seconds, workers, track.get("cuts", ()))
    total, done, patched = len(followed), 0, 0
    if not runs:  # the face is followed on no frame (too small everywhere): nothing to fit
        return

    def counted(name: str = "") -> None:
        nonlocal done, patched
        if name.startswith(L.VIDEO + "/frames/"):
            patched += 1
            on_progress(Progress("patches", patched, total))
        else:
            done += 1
            on_progress(Progress("fields", done, total))

    if workers == 1 or len(runs) == 1:
        fit_runs(s, plan, track, key, runs, s.cached, counted)
        return
    # each process a share of the runs (consecutive ones) and of the cores: an explicit thread count is per
    # worker (as for a batch), else the session's split between them
    shares = [[runs[k] for k in ks] for ks in cut_runs(list(range(len(runs))), workers)]
    threads = plan.settings.threads or max(1, torch.get_num_threads() // len(shares))

    def lookup_all() -> None:
        fit_runs(s, plan, track, key, runs, _lookup_only(s), counted, threads)

    if not _all_committed(lookup_all):  # else nothing to start a worker for: the same command again
        done = 0  # the workers report every frame, the looked-up ones too
        # once every field is in, the same workers make the patches (a part of consecutive frames each), so no
        # process is started and no model loaded again for them
        parts = cut_runs(followed, len(shares))
        _fan_out(s, _jobs(s, plan, track, edit_name, shares, threads, "fields", parts), counted)


def fit_runs(s: Session, plan: VideoPlan, track: dict, key: Keyframe, runs: list[list[int]], cached: Cached,
             on_frame: Callable[[], None] = lambda: None, threads: int | None = None) -> None:
    """Runs of frames (in order, in one pass over the clip), each frame fitted from the previous one's pivot and
    each run's first from the keyframe's, each through `cached` (the session's own, or a worker's that reports
    to the parent). `threads`: the count the frames are keyed with, where not this process's (a look-up only,
    made by the parent for its workers: the clip is then not decoded)."""
    import torch
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import load_file, save_file

    from dragedit.common.images import save_image, tensor_to_uint8, uint8_to_tensor
    from dragedit.common.threads import compute_signature
    from dragedit.inversion.follow import follow_pivot
    from dragedit.inversion.losses import perceptual_loss
    from dragedit.pipeline.imaging import video as V
    from dragedit.pipeline.imaging.motion import backward_field
    from dragedit.pipeline.imaging.paste import without_lost

    settings, cfg, info = plan.settings.with_composite_of(None), plan.config, plan.info
    composite = settings.composite
    pti = settings.with_pti_of(None).pti
    device = key.offset.device
    frames = track["frames"]
    base = frame_inputs(s, plan, key)
    params = {"pivot_steps": cfg.pivot_steps, "pivot_lr": cfg.pivot_lr, "motion": composite.motion.to_dict(),
              "composite": composite.to_dict(), "compute": compute_signature(device, threads)}  # results depend on it
    render_size = key.cap or key.Gt.img_resolution
    fit_cap = key.Gt.synthesis.resolution_at(min(cfg.pivot_resolution, render_size))
    fit_size = fit_cap or key.Gt.img_resolution
    if fit_size < render_size:
        params["pivot_resolution"] = fit_size  # (left out at the generator's own size: keys as before)
    loss = None
    w_prev, prev_sha = key.w_pivot, "keyframe"
    starts, wanted = {run[0] for run in runs}, {i for run in runs for i in run}
    decoded = V.frames(info.path, info.rotation) if threads is None else ((i, None, None) for i in sorted(wanted))
    for i, _, rgb in decoded:
        if i > runs[-1][-1]:
            break
        if i not in wanted:
            continue
        if i in starts:
            w_prev, prev_sha = key.w_pivot, "keyframe"
        name = L.video_field_stage(i)
        out = s.path(name)
        steps = cfg.pivot_steps if prev_sha != "keyframe" or i == plan.keyframe else cfg.run_start_steps

        def compute(i=i, rgb=rgb, w_start=w_prev, steps=steps):
            nonlocal loss
            if loss is None:
                loss = perceptual_loss("vgg", pti.allow_download and not settings.offline).to(device)
            crop, inside, p2c = crop_frame(rgb, frames[i], key.size)
            target = uint8_to_tensor(np.asarray(_resize(crop, fit_size)), device)
            w = follow_pivot(key.Gt, target, w_start, steps=steps, lr=cfg.pivot_lr,
                             distance=loss.against(target), max_resolution=fit_cap)
            with torch.no_grad():
                recon = tensor_to_uint8(key.Gt.synthesis(w, noise_mode="const", max_resolution=key.cap))
                edited = tensor_to_uint8(key.Gt.synthesis(w + key.offset, noise_mode="const",
                                                          max_resolution=key.cap))
            recon, edited = _resize(recon, key.size), _resize(edited, key.size)
            anchors, lost = key.at_frame(crop_landmarks(frames[i], p2c))
            region = without_lost(frame_region(frames[i], p2c, inside, key, composite), lost, composite)
            b, _ = backward_field(recon, edited, region, anchors, composite.motion)
            out.mkdir(parents=True, exist_ok=True)
            paths = [out / "field.safetensors", out / "recon.png", out / "edited.png", out / "w.safetensors"]
            atomic.write_with(paths[0], lambda tmp: save_numpy({"field": np.ascontiguousarray(b, np.float32),
                                                                "region": region}, str(tmp)))
            save_image(recon, paths[1])
            save_image(edited, paths[2])
            atomic.write_with(paths[3], lambda tmp: save_file({"w": w.detach().cpu().contiguous()}, str(tmp)))
            return paths, {}

        frame_params = params if steps == cfg.pivot_steps else {**params, "pivot_steps": steps}
        entry = cached(name, {**base, "frame": i, "start": prev_sha}, frame_params, compute)
        prev_sha = entry["outputs"][f"{name}/w.safetensors"]
        w_prev = load_file(str(out / "w.safetensors"))["w"].to(device)
        on_frame()


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


# ---- each frame's patch -------------------------------------------------------------------------------------
def make_patches(s: Session, plan: VideoPlan, track: dict, key: Keyframe, edit_name: str,
                 on_progress: ProgressHook) -> None:
    """With `workers` N, every followed frame's patch made first in N processes (each a part of consecutive
    frames), so the clip is then written from them in order; with one worker the writing makes each as it goes."""
    import torch

    parts = cut_runs(sorted(track["frames"]), worker_count(plan.config))
    if len(parts) < 2:
        return
    total, done = sum(map(len, parts)), 0

    def counted(_name: str = "") -> None:
        nonlocal done
        done += 1
        on_progress(Progress("patches", done, total))

    def lookup_all() -> None:
        for i in sorted(track["frames"]):
            frame_patch(s, plan, track, key, i, None, _lookup_only(s))
            counted()

    if not _all_committed(lookup_all):
        threads = plan.settings.threads or max(1, torch.get_num_threads() // len(parts))
        done = 0
        _fan_out(s, _jobs(s, plan, track, edit_name, [[part] for part in parts], threads, "patches"), counted)


def frame_patch(s: Session, plan: VideoPlan, track: dict, key: Keyframe, i: int, rgb: np.ndarray | None,
                cached: Cached) -> dict:
    """Frame i's `video/frames/NNNNNN` stage: its own pixels moved by its field averaged with its neighbours'
    (1-2-1, no flicker), mixed with the keyframe's motion carried to this frame's face (`carry_motion`) and held to
    it (`cap_motion`), the changed patch kept; the entry's `bbox` says where it goes (None: nothing moved).
    `rgb` (the frame) is only read to compute it: a look-up passes None."""
    from PIL import Image

    from dragedit.common.images import save_image
    from dragedit.pipeline.imaging.paste import warp_paste

    settings, cfg = plan.settings.with_composite_of(None), plan.config
    frames = track["frames"]
    name = L.video_frame_stage(i)
    cuts = track.get("cuts", [])
    window = [j for j in range(i - cfg.field_window, i + cfg.field_window + 1)
              if j in frames and shot_of(j, cuts) == shot_of(i, cuts)]  # never a field from another shot
    inputs = {**frame_inputs(s, plan, key), "frame": i,
              "fields": {str(j): s.stages[L.video_field_stage(j)]["key"] for j in window}}
    # the keyframe's own patch is the photo edit's: only the other frames are drawn to its motion
    held = (cfg.motion_cap > 0 or cfg.keyframe_share > 0) and i != plan.keyframe and plan.keyframe in frames
    if held:
        inputs["keyframe_field"] = s.stages[L.video_field_stage(plan.keyframe)]["key"]

    def compute():
        weights = [2.0 ** -abs(j - i) for j in window]  # 1, 2, 1 for a window of one each side
        fields = [_field(s, j)[0] for j in window]
        b = sum(w * f for w, f in zip(weights, fields)) / sum(weights)
        field_dir = s.path(L.video_field_stage(i))
        region = _field(s, i)[1]
        b = b * (region > 0)[..., None]  # the smoothing never moves pixels outside this frame's region
        crop, inside, p2c = crop_frame(rgb, frames[i], key.size)
        if held:
            k = frames[plan.keyframe]
            M = face_similarity(crop_landmarks(k, np.linalg.inv(np.asarray(k["c2p"]))), crop_landmarks(frames[i], p2c))
            key_field = _field(s, plan.keyframe)[0]
            if cfg.keyframe_share > 0:
                carried = carry_motion(key_field, M) * (region > 0)[..., None]
                b = (1 - cfg.keyframe_share) * b + cfg.keyframe_share * carried
            if cfg.motion_cap > 0:
                b = cap_motion(b, key_field, M, cfg.motion_cap, cfg.motion_slack * key.size)
        recon = np.asarray(Image.open(field_dir / "recon.png").convert("RGB"))
        edited_px = np.asarray(Image.open(field_dir / "edited.png").convert("RGB"))
        _, lost = key.at_frame(crop_landmarks(frames[i], p2c))
        wp = warp_paste(rgb, crop, recon, edited_px, region, p2c, config=settings.composite, paths=key.paths,
                        field=b.astype(np.float32), lost=lost, drag_lost=key.drag_lost)
        out = s.path(name)
        out.mkdir(parents=True, exist_ok=True)
        bbox = wp.stats["bbox"]
        if bbox is None or not wp.stats["changed_pixels"]:
            return [], {"bbox": None, "changed_pixels": 0}
        x0, y0, x1, y1 = bbox
        save_image(wp.photo[y0:y1, x0:x1], out / "patch.png")
        return [out / "patch.png"], {"bbox": bbox, "changed_pixels": wp.stats["changed_pixels"]}

    params = {"composite": settings.composite.to_dict(), "window": cfg.field_window}
    if held and cfg.motion_cap > 0:
        params["cap"] = [cfg.motion_cap, cfg.motion_slack]
    if held and cfg.keyframe_share > 0:
        params["keyframe_share"] = cfg.keyframe_share
    return cached(name, inputs, params, compute)


def face_similarity(key_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The similarity (2x3) taking the keyframe crop's landmarks onto a frame crop's: where a part of the keyframe's
    face is in the frame's crop (None where it cannot be told; the crops are aligned alike, so nearly the identity)."""
    import cv2

    M, _ = cv2.estimateAffinePartial2D(np.asarray(key_landmarks, np.float32), np.asarray(landmarks, np.float32))
    return M


def carry_motion(key_field: np.ndarray, M: np.ndarray | None) -> np.ndarray:
    """The keyframe's field (crop px) where similarity `M` puts the keyframe's face in a frame's crop, its vectors
    turned and scaled with the face: the edit the user saw, on this frame's face. Its own field is the same offset
    on another pivot, which the generator may turn into another motion (less of the mouth, more of the jaw)."""
    import cv2

    if M is None:
        return key_field.astype(np.float32)
    size = key_field.shape[0]
    moved = cv2.warpAffine(np.ascontiguousarray(key_field, np.float32), M, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    return (moved @ np.asarray(M[:, :2], np.float32).T).astype(np.float32)


def cap_motion(b: np.ndarray, key_field: np.ndarray, M: np.ndarray | None, cap: float, slack: float) -> np.ndarray:
    """A frame's field (crop px) no larger anywhere than `cap` times the keyframe's motion at the same place of the
    face plus `slack`: the keyframe's motion size is carried into the frame's crop by similarity `M`
    (`face_similarity`) and widened by a few pixels, so a face part the keyframe's edit moved may move as much
    here, wherever the pose puts it."""
    import cv2

    size = b.shape[0]
    mag = np.linalg.norm(key_field, axis=2).astype(np.float32)
    if M is not None:
        mag = cv2.warpAffine(mag, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    reach = max(1, int(round(0.03 * size)))
    mag = cv2.dilate(mag, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    limit = cap * mag + slack
    have = np.linalg.norm(b, axis=2)
    return (b * np.minimum(1.0, limit / np.maximum(have, 1e-9))[..., None]).astype(np.float32)


def _patch_frames(s: Session, plan: VideoPlan, track: dict, key: Keyframe, part: list[int], cached: Cached) -> None:
    from dragedit.pipeline.imaging import video as V

    wanted = set(part)
    for i, _, rgb in V.frames(plan.info.path, plan.info.rotation):
        if i > part[-1]:
            break
        if i in wanted:
            frame_patch(s, plan, track, key, i, rgb, cached)


def _field(s: Session, i: int) -> tuple[np.ndarray, np.ndarray]:
    from safetensors.numpy import load_file

    data = load_file(str(s.path(L.video_field_stage(i), "field.safetensors")))
    return data["field"], data["region"]


# ---- runs across processes ----------------------------------------------------------------------------------
class _Missing(Exception):
    """A stage not committed yet (a look-up only pass stops at the first)."""


def _lookup_only(s: Session) -> Cached:
    def lookup(name: str, inputs: dict, params: dict, compute) -> dict:
        entry = s.lookup(name, inputs, params)
        if entry is None:
            raise _Missing(name)
        return entry

    return lookup


def _all_committed(look: Callable[[], None]) -> bool:
    """Every stage `look` looks up is committed (then nothing is left for the workers)."""
    try:
        look()
    except _Missing:
        return False
    return True


def _jobs(s: Session, plan: VideoPlan, track: dict, edit_name: str, shares: list[list[list[int]]], threads: int,
          stage: str, patches: list[list[int]] | None = None) -> list["FieldRun"]:
    from dragedit.inversion.losses import said_once

    said = said_once()
    return [FieldRun(str(s.folder), plan, track, edit_name, share, threads, k, said, stage,
                     patches[k] if patches else None) for k, share in enumerate(shares)]

@dataclass
class FieldRun:
    """One worker's share of the runs: plain data, so it travels to a spawned interpreter or a Ray task."""

    session: str
    plan: VideoPlan
    track: dict
    edit_name: str
    runs: list[list[int]]
    threads: int
    index: int  # which worker
    said: list[str]  # the notes the parent has said (the worker does not say them again)
    stage: str = "fields"  # or "patches" (each run then a part of frames whose patches it makes)
    patches: list[int] | None = None  # with "fields": the frames whose patches it makes once every field is in


def _fan_out(s: Session, jobs: list[FieldRun], counted: Callable[[str], None]) -> None:
    cfg = jobs[0].plan.config
    if cfg.backend == "ray":
        _on_ray(s, jobs, counted, cfg.address)
    else:
        _in_processes(s, jobs, counted)


def _in_processes(s: Session, jobs: list[FieldRun], counted: Callable[[str], None]) -> None:
    """One spawned process per share; each frame's entry committed here as its worker reports it."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: thread limits set before torch loads
    reports, go = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job, reports, go), daemon=True) for job in jobs]
    for p in procs:
        p.start()

    def dead(k: int) -> str | None:
        return None if procs[k].is_alive() else f"exit code {procs[k].exitcode}"

    try:
        _collect(s, jobs, reports, dead, counted, go)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
        reports.close()
        go.close()


def _on_ray(s: Session, jobs: list[FieldRun], counted: Callable[[str], None], address: str | None) -> None:
    """One Ray task per share (the session on a filesystem every node sees at the same path), each asking for
    its threads' CPUs; their reports come back through a Ray queue and are committed here."""
    from dragedit.common.cluster import connect_ray

    ray = connect_ray(address)
    from ray.util.queue import Queue

    reports, go = Queue(), Queue()
    task = ray.remote(num_cpus=jobs[0].threads, max_retries=0)(_fit_share)
    refs = [task.remote(job, reports, go) for job in jobs]

    def dead(k: int) -> str | None:
        done, _ = ray.wait([refs[k]], timeout=0)
        if not done:
            return None
        try:
            ray.get(refs[k])
        except Exception as exc:  # noqa: BLE001 - a task that died: said in one line below
            return str(exc).strip().splitlines()[-1][:200]
        return "it ended without a word"

    try:
        _collect(s, jobs, reports, dead, counted, go)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        reports.shutdown()
        go.shutdown()


def _collect(s: Session, jobs: list[FieldRun], reports, dead: Callable[[int], str | None],
             counted: Callable[[str], None], go) -> None:
    """The workers' reports, until each has said it is done: frames reused or computed (committed here, under
    the session's lock), their notes (each said once), a failure (raised, in one line). Workers that make
    patches after their fields wait on `go`, put there once all of them have said their fields are in."""
    running, fields_in = set(range(len(jobs))), set()
    warned: set[str] = set()
    while running:
        try:
            msg = reports.get(timeout=1.0)
        except queue_module.Empty:
            for k in list(running):
                why = dead(k)
                if why is not None:
                    raise RuntimeError(f"the worker fitting frames {jobs[k].runs[0][0]}-{jobs[k].runs[-1][-1]} died "
                                       f"({why}); run the edit again to resume")
            continue
        kind = msg[0]
        if kind == "warn":
            if msg[1] not in warned:  # each worker's notes, said once
                warned.add(msg[1])
                log.warning(msg[1])
        elif kind == "reused":
            s.mark_reused(msg[1])
            counted(msg[1])
        elif kind == "computed":
            _, name, inputs, params, paths, extra = msg
            s.commit(name, inputs, params, [Path(p) for p in paths], extra)
            counted(name)
        elif kind == "fields in":  # every field a worker fitted is committed (reported in order, before this)
            fields_in.add(msg[1])
            if len(fields_in) == len(jobs):
                for _ in jobs:
                    go.put(True)
        elif kind == "done":
            running.discard(msg[1])
        else:  # "failed": its one-line reason
            _, _, text, user_error = msg
            raise (UserError if user_error else RuntimeError)(text)


def _worker(job: FieldRun, reports, go) -> None:
    """A spawned worker process: its thread limits before torch loads, death with its parent, then its share."""
    from dragedit.common.threads import start_worker

    start_worker(job.threads)
    _fit_share(job, reports, go)


def _reporting(s: Session, reports) -> Cached:
    """A worker's `cached`: a stage the parent committed is reused, else computed, written and reported."""
    def cached(name: str, inputs: dict, params: dict, compute) -> dict:
        entry = s.lookup(name, inputs, params)
        if entry:
            reports.put(("reused", name))
            return entry
        paths, extra = compute()
        reports.put(("computed", name, inputs, params, [str(p) for p in paths], extra))
        return {"outputs": {str(p.relative_to(s.folder)): file_sha256(p) for p in paths}, **extra}

    return cached


def _fit_share(job: FieldRun, reports, go) -> None:
    """A worker's runs: each frame looked up in what the parent committed, else fitted, written and reported;
    its notes go to the parent too (in a worker process or a Ray task alike)."""
    import logging

    from dragedit.common.threads import use_threads

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            reports.put(("warn", record.getMessage()))

    forward, propagate = Forward(), log.propagate
    log.addHandler(forward)
    log.propagate = False
    try:
        use_threads(job.threads)
        from dragedit.inversion.losses import already_said

        already_said(job.said)
        with Session(job.session, read_only=True) as s:
            key = Keyframe.load(s.path(L.KEYFRAME), job.edit_name, job.plan.settings)
            if job.stage == "patches":
                _patch_frames(s, job.plan, job.track, key, job.runs[0], _reporting(s, reports))
            else:
                fit_runs(s, job.plan, job.track, key, job.runs, _reporting(s, reports))
        if job.patches:  # then the patches, once every worker's fields are committed (a patch needs its
            reports.put(("fields in", job.index))  # neighbours'), read from the manifest as it is now
            go.get()
            with Session(job.session, read_only=True) as s:
                _patch_frames(s, job.plan, job.track, key, job.patches, _reporting(s, reports))
        reports.put(("done", job.index))
    except BaseException as exc:  # noqa: BLE001 - the parent says it, in one line
        user = isinstance(exc, UserError)
        reports.put(("failed", job.index, str(exc) if user else f"{type(exc).__name__}: {exc}".splitlines()[0], user))
    finally:
        log.removeHandler(forward)
        log.propagate = propagate
