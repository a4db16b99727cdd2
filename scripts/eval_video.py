"""Clips end to end, measured on the output clip with tools that are not dragedit's.

For each clip in a folder: a smile (both mouth corners out 4 % and up 8 % of the eye distance, anchored on the
keyframe's face) through `edit_video` into a lossless .mkv, and the same drag made on the keyframe as a photo
(the photo recipe on the keyframe, in a photo session of its own). Then, on every frame of the edited part where
dlib finds the face (followed from the keyframe by box overlap; where that loses it, as after a cut, the face dlib
recognises as the person, within its 0.6 rule of the followed frames' mean descriptor):

  identity   dlib face-recognition ResNet distance, edited frame vs source frame (0.6 = another person); the
             photo edit's on the keyframe beside it (the JSON's identity_edited: over the frames the edit changed;
             identity_within_target: the share of face frames within 0.03 of the photo edit's)
  TL-ID      STIT's temporal identity consistency over adjacent frames: mean similarity (1 - distance) of the
             edited clip's consecutive descriptors / the source's (1 = as consistent as the source)
  TG-ID      the same over pairs of 60 frames spread evenly (the JSON's tg_id_all_pairs: over every pair of
             face frames; over few frames the figure moves with the frames picked)
  motion     OpenCV's pyramidal Lucas-Kanade from the source frame's mouth corners (dlib 48, 54) to the
             edited frame: the edit's size in px, median over frames; its ratio to the photo edit's on the
             keyframe with each frame's motion scaled to the keyframe's face size (from dlib's landmarks)
  visible    share of face frames whose corner motion is at least 0.5 px and, so scaled, 30 % of the photo edit's
  flicker    median frame-to-frame change of the (scaled) corner motion vectors / their median size (0 = steady)
  outside    share of frames whose changed pixels all lie in the dlib face box grown by half its size
  timing     largest difference of the frames' timestamps (from the first frame's), and whether every audio
             packet is there, through PyAV
  s/frame    the whole clip edit's wall time per frame of the edited part
  like for like (--photo-frames N)
             the same drag made as a photo on N face frames spread over the edited ones, on the face followed
             there: the clip's identity on those frames beside those photo edits' (where the keyframe's face is
             small, a drag on it changes its descriptor less than the same drag on a close shot's), and TG-ID over
             those frames' pairs, the clip's beside that of the frames each edited as a photo

    python scripts/eval_video.py CLIPS_DIR [--seconds 3] [--work DIR] [--json out.json] [--figure out.jpg]
                                 [--gif out.gif] [--figure-clip NAME] [--pivot-steps N --tune-steps N --steps N]
                                 [--tune-frames N --companion-weight W] [--clip NAME] [--keyframe SECONDS]
                                 [--same-person D] [--photo-frames N] [--motion-cap C] [--keyframe-share S]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchlib import Dlib  # a sibling module (the script's folder is on the path)

SMILE = ["@mouth_left:-4%,-8%", "@mouth_right:4%,-8%"]
CORNERS = (48, 54)
IDENTITY_TARGET = 0.03  # the issue's: identity on every face frame no worse than the photo edit's + this
SAME_PERSON = 0.6  # dlib's face-recognition rule: two descriptors of one person lie within 0.6


def clips_in(folder: str) -> list[Path]:
    from dragedit.pipeline.imaging.video import is_video

    p = Path(folder)
    if not p.is_dir():
        raise SystemExit(f"eval_video.py: {folder} is not a folder; give a folder of clips")
    found = sorted(f for f in p.iterdir() if f.is_file() and is_video(f))
    if not found:
        raise SystemExit(f"eval_video.py: {folder} holds no clip")
    return found


def _rect(dlib, box):
    return dlib.rectangle(int(box[0]), int(box[1]), int(box[2]), int(box[3]))


def _box(r) -> tuple[int, int, int, int]:
    return r.left(), r.top(), r.right(), r.bottom()


def face_size(lm: np.ndarray) -> float:
    """A face's size from its 68 landmarks that a turn of the head changes little: the larger of twice the eye
    distance and 1.8 times the eyes-to-mouth distance (the FFHQ crop's measure; dlib's boxes come in steps)."""
    eyes = lm[36:42].mean(0), lm[42:48].mean(0)
    mouth = (lm[48] + lm[54]) / 2
    return float(max(2.0 * np.linalg.norm(eyes[1] - eyes[0]), 1.8 * np.linalg.norm(mouth - (eyes[0] + eyes[1]) / 2)))


def corner_motion(src: np.ndarray, out: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """LK displacement of each corner from `src` to `out` (px), NaN where LK loses it."""
    a, b = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY), cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    p0 = corners.astype(np.float32).reshape(-1, 1, 2)
    p1, status, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, winSize=(21, 21), maxLevel=3,
                                             criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 0.01))
    d = (p1 - p0).reshape(-1, 2).astype(np.float64)
    d[status.ravel() == 0] = np.nan
    return d


def measure_clip(det: Dlib, clip: Path, out: Path, keyframe: int, key_box, photo_edit: np.ndarray,
                 first: int, last: int) -> tuple[dict, dict[int, dict]]:
    """The clip's figures, and each face frame's identity and dlib box (for `photo_frames`)."""
    from dragedit.pipeline.imaging.video import frames, timestamps

    rows, prev = [], None
    # the keyframe first, to pick the face dlib sees where the pipeline's is
    src_frames = frames(clip)
    out_frames = frames(out)
    key_src = None
    for (i, _, s), (_, _, e) in zip(src_frames, out_frames):
        if not first <= i <= last:
            continue
        if i == keyframe:
            key_src = s
        rows.append((i, s, e))
    rects = {}
    for direction in (1, -1):
        prev = key_box
        order = [r for r in rows if (r[0] - keyframe) * direction >= 0]
        order.sort(key=lambda r: direction * r[0])
        for i, s, _ in order:
            best = det.match(s, _rect(det.dlib, prev))
            if best is not None:
                rects[i] = best
                prev = _box(best)
    # where overlap lost the face (a cut), the detection dlib recognises as the person (its 0.6 rule, against the
    # mean descriptor of the frames followed) is that face again
    src_desc = {i: det.descriptor(s, det.shape(s, rects[i])) for i, s, _ in rows if i in rects}
    person = np.mean(list(src_desc.values()), axis=0)
    for i, s, _ in rows:
        if i not in rects:
            seen = [(float(np.linalg.norm(det.descriptor(s, det.shape(s, r)) - person)), k, r)
                    for k, r in enumerate(det.faces(s))]
            if seen and min(seen)[0] <= SAME_PERSON:
                rects[i] = min(seen)[2]
                src_desc[i] = det.descriptor(s, det.shape(s, rects[i]))
    per_frame = []
    for i, s, e in rows:
        if i not in rects:
            continue
        r = rects[i]
        shape_s = det.shape(s, r)
        lm = det.landmarks(shape_s)
        d_s = src_desc[i]
        d_e = det.descriptor(e, det.shape(e, r))
        motion = corner_motion(s, e, lm[list(CORNERS)])
        x0, y0, x1, y1 = _box(r)
        w, h = x1 - x0, y1 - y0
        changed = (s != e).any(axis=2)
        grown = np.zeros_like(changed)
        grown[max(0, y0 - h // 2):y1 + h // 2, max(0, x0 - w // 2):x1 + w // 2] = True
        per_frame.append({"frame": i, "identity": float(np.linalg.norm(d_e - d_s)), "d_s": d_s, "d_e": d_e,
                          "motion": motion, "size": face_size(lm), "outside_ok": not (changed & ~grown).any(),
                          "changed": bool(changed.any())})
    # the photo edit on the keyframe, measured the same way
    rk = rects[keyframe]
    shape_k = det.shape(key_src, rk)
    photo_id = float(np.linalg.norm(det.descriptor(photo_edit, det.shape(photo_edit, rk)) -
                                    det.descriptor(key_src, shape_k)))
    photo_motion = corner_motion(key_src, photo_edit, det.landmarks(shape_k)[list(CORNERS)])
    photo_size = float(np.nanmean(np.linalg.norm(photo_motion, axis=1)))

    size = np.array([np.nanmean(np.linalg.norm(f["motion"], axis=1)) for f in per_frame])
    # the edit's size as if each face were the keyframe's size (after a cut the face may be twice as large, and the
    # same edit moves it twice as many pixels)
    key_size = face_size(det.landmarks(shape_k))
    scale = np.array([key_size / max(f["size"], 1e-6) for f in per_frame])
    vecs = np.stack([f["motion"] * k for f, k in zip(per_frame, scale)])  # T x 2 x 2
    change = np.nanmean(np.linalg.norm(np.diff(vecs, axis=0), axis=2), axis=1) if len(vecs) > 1 else np.array([0.0])
    ds, de = np.stack([f["d_s"] for f in per_frame]), np.stack([f["d_e"] for f in per_frame])

    def sim(a, b):
        return 1 - np.linalg.norm(a - b, axis=-1)

    tl = float(sim(de[1:], de[:-1]).mean() / sim(ds[1:], ds[:-1]).mean()) if len(ds) > 1 else 1.0
    pick = np.linspace(0, len(ds) - 1, min(len(ds), 60)).astype(int)
    ii, jj = np.triu_indices(len(pick), 1)
    tg = float(sim(de[pick][ii], de[pick][jj]).mean() / sim(ds[pick][ii], ds[pick][jj]).mean()) if len(ii) else 1.0
    ai, aj = np.triu_indices(len(ds), 1)
    tg_all = float(sim(de[ai], de[aj]).mean() / sim(ds[ai], ds[aj]).mean()) if len(ai) else 1.0
    src_t, src_a = timestamps(clip)
    out_t, out_a = timestamps(out)
    faces = {f["frame"]: {"identity": f["identity"], "box": _box(rects[f["frame"]]), "changed": f["changed"],
                          "d_s": f["d_s"], "d_e": f["d_e"]} for f in per_frame}
    return {
        "face_frames": len(per_frame), "frames": len(rows),
        "identity": float(np.mean([f["identity"] for f in per_frame])), "identity_photo": photo_id,
        # the same over the face frames the edit changed only (a frame left as it was counts 0 above)
        "identity_edited": float(np.mean([f["identity"] for f in per_frame if f["changed"]] or [np.nan])),
        # frame by frame: the share of face frames whose identity is within the target (the photo edit's + 0.03)
        "identity_within_target": float(np.mean([f["identity"] <= photo_id + IDENTITY_TARGET for f in per_frame])),
        "tl_id": tl, "tg_id": tg, "tg_id_all_pairs": tg_all,
        # TG-ID's pairs as mean descriptor distances, source and edited (where the source's pairs are far apart, as
        # across shots, a small change of distance is a large change of the ratio)
        "tg_pair_distance": [float(np.linalg.norm(ds[pick][ii] - ds[pick][jj], axis=-1).mean()) if len(ii) else 0.0,
                             float(np.linalg.norm(de[pick][ii] - de[pick][jj], axis=-1).mean()) if len(ii) else 0.0],
        "motion_px": float(np.nanmedian(size)), "motion_photo_px": photo_size,
        "motion_ratio": float(np.nanmedian(size * scale) / photo_size) if photo_size > 0 else float("nan"),
        "visible": float(np.mean((size >= 0.5) & (size * scale >= 0.3 * photo_size))),
        "flicker": float(np.nanmedian(change) / max(np.nanmedian(size * scale), 1e-6)),
        "outside": float(np.mean([f["outside_ok"] for f in per_frame])),
        "timestamps_ms": 1000 * max((abs(a - b) for a, b in zip(src_t, out_t)), default=0.0) if len(src_t) ==
        len(out_t) else float("inf"),
        "sound_kept": src_a == out_a,
    }, faces


def photo_frames(det: Dlib, clip: Path, faces: dict[int, dict], keyframe: int, count: int, work: Path,
                 settings) -> dict:
    """The same drag made as a photo on `count` face frames spread over the edited ones (the keyframe left out),
    each on the face the clip's edit followed there: identity like for like, where the keyframe's face is not
    like the others (a small face before a close shot: a drag on it changes its descriptor less)."""
    from PIL import Image

    from dragedit.pipeline.core.edit import EditJob, edit
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.imaging.video import frames

    order = sorted(i for i in faces if i != keyframe and faces[i]["changed"])
    picks = sorted({order[int(k)] for k in np.linspace(0, len(order) - 1, count + 2)[1:-1]}) if order else []
    clip_ids, photo_ids, photo_desc = [], [], []
    for i, _, rgb in frames(clip):
        if i not in picks:
            continue
        x0, y0, x1, y1 = faces[i]["box"]
        src, out = work / f"{clip.stem}_frame{i}.png", work / f"{clip.stem}_frame{i}_photo.png"
        Image.fromarray(rgb).save(src)
        edit(EditJob(work / f"{clip.stem}_frame{i}.dragedit", photo=src, requests=[edit_request(*SMILE)], output=out,
                     face_at=((x0 + x1) / 2, (y0 + y1) / 2), overwrite=True), settings)
        e = np.asarray(Image.open(out).convert("RGB"))
        r = _rect(det.dlib, faces[i]["box"])
        photo_desc.append(det.descriptor(e, det.shape(e, r)))
        photo_ids.append(float(np.linalg.norm(photo_desc[-1] - det.descriptor(rgb, det.shape(rgb, r)))))
        clip_ids.append(faces[i]["identity"])
    ds = np.stack([faces[i]["d_s"] for i in picks]) if picks else np.zeros((0, 128))
    ii, jj = np.triu_indices(len(picks), 1)

    def tg(de: np.ndarray) -> float:
        """TG-ID over the picked frames' pairs (edited / source)."""
        sim = lambda a, b: 1 - np.linalg.norm(a - b, axis=-1)  # noqa: E731
        return float(sim(de[ii], de[jj]).mean() / sim(ds[ii], ds[jj]).mean()) if len(ii) else float("nan")

    return {"photo_frames": picks, "identity_on_photo_frames": [float(np.mean(clip_ids)) if clip_ids else float("nan"),
                                                                 float(np.mean(photo_ids)) if photo_ids else float("nan")],
            # TG-ID over those frames' pairs: the clip's, and that of the frames each edited as a photo
            "tg_id_on_photo_frames": [tg(np.stack([faces[i]["d_e"] for i in picks])) if picks else float("nan"),
                                      tg(np.stack(photo_desc)) if photo_desc else float("nan")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips")
    ap.add_argument("--seconds", type=float, help="edit the first this many seconds of each clip (default: all)")
    ap.add_argument("--work", help="keep sessions and outputs here (default: a temporary folder)")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--figure", help="a before | after strip of four frames of the first clip (JPEG)")
    ap.add_argument("--gif", help="a short animated before | after preview of the first clip")
    ap.add_argument("--figure-clip", help="the clip (file name) --figure and --gif show (default: the first)")
    ap.add_argument("--generator")
    ap.add_argument("--pivot-steps", type=int)
    ap.add_argument("--tune-steps", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--tune-frames", type=int, help="VideoConfig.tune_frames (sampled frames the tuning fits)")
    ap.add_argument("--companion-weight", type=float, help="PTIConfig.companion_weight (a sampled frame's loss)")
    ap.add_argument("--workers", type=int, help="VideoConfig.workers (processes fitting the frames, in runs)")
    ap.add_argument("--run-seconds", type=float, help="VideoConfig.run_seconds (runs started afresh this often)")
    ap.add_argument("--crop-smoothing", type=float, help="VideoConfig.crop_smoothing_s (the crop's Gaussian, s)")
    ap.add_argument("--motion-cap", type=float, help="VideoConfig.motion_cap (a frame's motion at most this times "
                                                      "the keyframe's at the same place of the face; 0: no limit)")
    ap.add_argument("--keyframe-share", type=float, help="VideoConfig.keyframe_share (each frame's motion this share "
                                                          "the keyframe's, carried to its face; 0: its own)")
    ap.add_argument("--field-window", type=int, help="VideoConfig.field_window (neighbours' fields averaged each side)")
    ap.add_argument("--same-person", type=float, help="VideoConfig.same_person (0: a face lost is never found again)")
    ap.add_argument("--clip", action="append", help="only this clip of the folder (file name; repeatable)")
    ap.add_argument("--photo-frames", type=int, default=0,
                    help="also make the drag as a photo on this many face frames besides the keyframe, and compare "
                         "the clip's identity there with those photo edits' (about a minute each)")
    ap.add_argument("--keyframe", type=float, help="the keyframe's time in seconds (default: the first frame with "
                                                   "a face, the recipe's default)")
    a = ap.parse_args()

    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig
    from dragedit.pipeline.core.edit import EditJob, edit
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.core.video import VideoConfig, VideoJob, check_video, run_video

    clips = [c for c in clips_in(a.clips) if not a.clip or c.name in a.clip]
    pti = PTIConfig(**{k: v for k, v in (("pivot_steps", a.pivot_steps), ("tune_steps", a.tune_steps),
                                         ("companion_weight", a.companion_weight)) if v is not None})
    settings = EditSettings(generator=a.generator, device="cpu", offline=True, pti=pti,
                            drag=DragConfig(**({"max_steps": a.steps} if a.steps else {})))
    config = VideoConfig(**{k: v for k, v in (("tune_frames", a.tune_frames), ("workers", a.workers),
                                                 ("run_seconds", a.run_seconds),
                                                 ("crop_smoothing_s", a.crop_smoothing),
                                                 ("same_person", a.same_person), ("field_window", a.field_window),
                                                 ("motion_cap", a.motion_cap),
                                                 ("keyframe_share", a.keyframe_share))
                            if v is not None})
    det = Dlib()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            out, session = work / f"{clip.stem}.mkv", work / f"{clip.stem}.dragedit"
            job = VideoJob(clip, requests=[edit_request(*SMILE)], output=out, session=session, end=a.seconds,
                           keyframe=a.keyframe, overwrite=True)
            t0 = time.perf_counter()
            try:
                plan = check_video(job, settings, config)
                res = run_video(plan)
            except Exception as exc:  # noqa: BLE001 - one clip's failure is a row, the others go on
                rows.append({"clip": clip.name, "error": str(exc).splitlines()[0]})
                print(f"{clip.name}: {rows[-1]['error']}", flush=True)
                continue
            seconds = time.perf_counter() - t0
            # the same drag on the keyframe as a photo: the photo recipe alone, in a photo session of its own (the
            # clip's keyframe session tunes the generator on sampled frames too)
            photo = work / f"{clip.stem}_keyframe_photo.png"
            edit(EditJob(work / f"{clip.stem}_keyframe_photo.dragedit", photo=session / "video" / "keyframe.png",
                         requests=[edit_request(*SMILE)], output=photo, overwrite=True), settings)
            from PIL import Image

            photo_edit = np.asarray(Image.open(photo).convert("RGB"))
            from dragedit.pipeline.core.session import Session

            with Session(session / "keyframe", read_only=True) as ks:
                key_box = ks.faces()[ks.face]["box"]
            m, faces = measure_clip(det, clip, out, res.keyframe, key_box, photo_edit, plan.first, plan.last)
            row = {"clip": clip.name, "s_per_frame": seconds / (plan.last - plan.first + 1),
                   "edited_frames": res.edited, "untouched": res.untouched, **m}
            if a.photo_frames > 0:
                row.update(photo_frames(det, clip, faces, res.keyframe, a.photo_frames, work, settings))
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
            shown = clip.name == a.figure_clip if a.figure_clip else len(rows) == 1
            if a.figure and shown:
                strip(det, clip, out, plan.first, plan.last, a.figure, key_box)
            if a.gif and shown:
                preview_gif(det, clip, out, plan.first, min(plan.last, plan.first + 60), a.gif, key_box)
    _table(rows)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


def _face_window(box, shape, scale: float = 1.0):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(w, h) * scale
    return (int(max(0, cx - half)), int(max(0, cy - half)), int(min(shape[1], cx + half)),
            int(min(shape[0], cy + half)))


def _follow(det: Dlib, rgb: np.ndarray, box):
    """The face dlib finds nearest `box` in this frame (else `box`): the window follows the face."""
    best = det.match(rgb, _rect(det.dlib, box))
    return _box(best) if best is not None else box


def strip(det: Dlib, clip: Path, out: Path, first: int, last: int, path: str, box) -> None:
    """Four frames across the edited part: source above, edited below, each around the face in that frame."""
    from PIL import Image

    from dragedit.pipeline.imaging.video import frames

    picks = set(np.linspace(first, last, 4).astype(int).tolist())
    tiles = {}
    for (i, _, s), (_, _, e) in zip(frames(clip), frames(out)):
        if first <= i <= last:
            box = _follow(det, s, box)
        if i in picks:
            x0, y0, x1, y1 = _face_window(box, s.shape)
            tiles[i] = [Image.fromarray(t[y0:y1, x0:x1]).resize((256, 256), Image.Resampling.LANCZOS) for t in (s, e)]
    img = Image.new("RGB", (256 * len(tiles) + 4 * (len(tiles) - 1), 516), "white")
    for k, i in enumerate(sorted(tiles)):
        img.paste(tiles[i][0], (k * 260, 0))
        img.paste(tiles[i][1], (k * 260, 260))
    img.save(path, quality=90)


def preview_gif(det: Dlib, clip: Path, out: Path, first: int, last: int, path: str, box) -> None:
    """Source | edited windows around the face side by side, every second frame, as an animated GIF."""
    from PIL import Image

    from dragedit.pipeline.imaging.video import frames

    shots = []
    for (i, _, s), (_, _, e) in zip(frames(clip), frames(out)):
        if first <= i <= last and (i - first) % 2 == 0:
            box = _follow(det, s, box)
            x0, y0, x1, y1 = _face_window(box, s.shape)
            pair = Image.new("RGB", (388, 192), "white")
            pair.paste(Image.fromarray(s[y0:y1, x0:x1]).resize((192, 192), Image.Resampling.LANCZOS), (0, 0))
            pair.paste(Image.fromarray(e[y0:y1, x0:x1]).resize((192, 192), Image.Resampling.LANCZOS), (196, 0))
            shots.append(pair.quantize(128))
    shots[0].save(path, save_all=True, append_images=shots[1:], duration=66, loop=0)


def _table(rows: list[dict]) -> None:
    print("\n| clip | face frames | identity (photo) | TL-ID | TG-ID | motion px (photo) | ratio | visible | flicker "
          "| outside | timestamps ms | sound | s/frame |\n|" + " --- |" * 13)
    for r in rows:
        if "error" in r:
            print(f"| {r['clip']} | {r['error']} |" + " |" * 11)
            continue
        print(f"| {r['clip']} | {r['face_frames']}/{r['frames']} | {r['identity']:.3f} ({r['identity_photo']:.3f}) "
              f"| {r['tl_id']:.3f} | {r['tg_id']:.3f} | {r['motion_px']:.2f} ({r['motion_photo_px']:.2f}) "
              f"| {r['motion_ratio']:.2f} | {100 * r['visible']:.0f} % | {r['flicker']:.2f} "
              f"| {100 * r['outside']:.0f} % | {r['timestamps_ms']:.2f} | {'kept' if r['sound_kept'] else 'LOST'} "
              f"| {r['s_per_frame']:.2f} |")
    for r in rows:
        if r.get("photo_frames"):
            c, p = r["identity_on_photo_frames"]
            tc, tp = r["tg_id_on_photo_frames"]
            print(f"{r['clip']}: like for like on frames {r['photo_frames']}: identity the clip {c:.3f}, the same drag "
                  f"as a photo on each {p:.3f}; TG-ID over those frames the clip {tc:.3f}, the photo edits {tp:.3f}")


if __name__ == "__main__":
    main()
