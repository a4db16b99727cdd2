"""End to end on real photos, measured on the output photo with tools that are not dragedit's.

For each photo in a folder: dlib's 68 landmarks of the largest face give the drags (kinds below), the
whole pipeline runs through the library (`pipeline.api.edit_photo`), and the output photo is measured:

  landmarks  dlib (detector + 68-point predictor) run afresh on the output: mean distance of the dragged
             landmarks to their targets, photo px and % of the inter-ocular distance, beside "no edit"
             (the original's landmarks; DragGAN Table 1's protocol)
  identity   dlib face-recognition ResNet distance, original vs output (0.6 = another person)
  detail     Laplacian variance in the face box, output / original (1.0 = as sharp)
  outside    fraction of bit-identical pixels outside the face (the dlib box grown by half its size on
             every side)
  unexplained  fraction of the face box's pixels that the output changed to a colour no pixel of the
             original within 12 % of the eye distance has (within 40 levels on every channel): a warp of
             the photo's own pixels scores ~0, pasted or repainted content more (`unexplained_fraction`)
  time       seconds for the whole edit

Kinds: smile (mouth corners 48, 54 up 8 % and out 4 % of the inter-ocular distance), jaw (chin 7-9 down
9 %), brows (19, 24 up 8 %). Each --paste mode reuses the session (alignment, PTI, drag) of the first.

    python scripts/eval_photos.py PHOTOS_DIR [--generator G] [--kinds smile] [--paste warp generated]
                                  [--work DIR] [--json out.json] [--figure out.png] [--pivot-steps N ...]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchlib import Dlib, photos_in  # a sibling module (the script's folder is on the path)

KINDS = {  # landmark -> (out, up) in units of the inter-ocular distance; "out" is away from the face centre
    "smile": {48: (0.04, 0.08), 54: (0.04, 0.08)},
    "jaw": {7: (0.0, -0.09), 8: (0.0, -0.09), 9: (0.0, -0.09)},
    "brows": {19: (0.0, 0.08), 24: (0.0, 0.08)},
}


def drags_for(lm: np.ndarray, kind: str) -> tuple[list[int], np.ndarray, float]:
    """(landmark indices, targets, inter-ocular distance) in photo pixels, in the face's own frame."""
    el, er = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(er - el))
    x = (er - el) / iod
    up = np.array([x[1], -x[0]])  # image y grows downwards: "up" is x rotated by -90 degrees
    centre = lm[27:36].mean(0)
    idx = list(KINDS[kind])
    targets = []
    for i in idx:
        out, u = KINDS[kind][i]
        side = np.sign(np.dot(lm[i] - centre, x)) or 1.0
        targets.append(lm[i] + iod * (out * side * x + u * up))
    return idx, np.array(targets), iod


def laplacian_var(rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    g = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(g, cv2.CV_64F).var())


def unexplained_fraction(original: np.ndarray, output: np.ndarray, box: tuple[int, int, int, int], iod: float,
                         radius_iod: float = 0.12, levels: int = 40) -> float:
    """Of the face box's pixels, the fraction the output changed to a colour that no original pixel within
    `radius_iod` x the eye distance matches within `levels` on every channel."""
    x0, y0, x1, y1 = box
    changed = (output[y0:y1, x0:x1] != original[y0:y1, x0:x1]).any(axis=2)
    if not changed.any():
        return 0.0
    r = max(1, int(round(radius_iod * iod)))
    h, w = original.shape[:2]
    # the original around the box, padded so that every shift stays in range
    px0, py0, px1, py1 = max(x0 - r, 0), max(y0 - r, 0), min(x1 + r, w), min(y1 + r, h)
    src = np.pad(original[py0:py1, px0:px1].astype(np.int16),
                 ((r - (y0 - py0), r - (py1 - y1)), (r - (x0 - px0), r - (px1 - x1)), (0, 0)), constant_values=-999)
    out = output[y0:y1, x0:x1].astype(np.int16)
    ys, xs = np.nonzero(changed)
    want = out[ys, xs]  # [N, 3]
    explained = np.zeros(len(ys), bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy > r * r:
                continue
            cand = src[ys + r + dy, xs + r + dx]
            explained |= (np.abs(cand - want) <= levels).all(axis=1)
            if explained.all():
                return 0.0
    return float((~explained).sum()) / changed.size


def measure(det: Dlib, original: np.ndarray, output: np.ndarray, rect, idx: list[int], targets: np.ndarray,
            iod: float, lm0: np.ndarray, desc0: np.ndarray) -> dict:
    h, w = original.shape[:2]
    box = (max(rect.left(), 0), max(rect.top(), 0), min(rect.right() + 1, w), min(rect.bottom() + 1, h))
    bw, bh = box[2] - box[0], box[3] - box[1]
    grown = np.zeros((h, w), bool)
    grown[max(box[1] - bh // 2, 0):box[3] + bh // 2, max(box[0] - bw // 2, 0):box[2] + bw // 2] = True
    row = {"detail_ratio": laplacian_var(output, box) / max(laplacian_var(original, box), 1e-9),
           "outside_identical": float((output == original).all(axis=2)[~grown].mean()) if (~grown).any() else 1.0,
           "no_edit_px": float(np.linalg.norm(lm0[idx] - targets, axis=1).mean()),
           "unexplained_fraction": unexplained_fraction(original, output, box, iod)}
    found = det.match(output, rect)
    if found is None:
        row.update({"face_found": False, "landmark_px": None, "identity": None})
        return row
    shape = det.shape(output, found)
    lm = det.landmarks(shape)
    row.update({"face_found": True, "landmark_px": float(np.linalg.norm(lm[idx] - targets, axis=1).mean()),
                "identity": float(np.linalg.norm(det.descriptor(output, shape) - desc0))})
    row["landmark_ratio"] = row["landmark_px"] / max(row["no_edit_px"], 1e-9)
    row["landmark_pct_iod"] = 100 * row["landmark_px"] / iod
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", help="folder of photos")
    ap.add_argument("--generator", help="checkpoint; default: the embedded one")
    ap.add_argument("--kinds", nargs="+", default=["smile"], choices=sorted(KINDS))
    ap.add_argument("--paste", nargs="+", default=["warp", "generated"], choices=["warp", "generated"])
    ap.add_argument("--work", help="where sessions and outputs go (default: a temporary folder)")
    ap.add_argument("--json", help="write every row here")
    ap.add_argument("--figure", help="before | after crops of every face, one row per photo (first kind, paste)")
    ap.add_argument("--pti-schedule", choices=["default", "official"], default="default",
                    help="PTI schedule: dragedit's default or the official 450 + 350 steps (PTIConfig.official())")
    ap.add_argument("--pivot-steps", type=int)
    ap.add_argument("--tune-steps", type=int)
    ap.add_argument("--steps", type=int, help="maximum drag steps")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="PTI's and the drag's generator forward (bf16: autocast, where the CPU has it)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from dragedit.inversion import PTIConfig
    from dragedit.draggan import DragConfig
    from dragedit.pipeline.api import EditSettings, edit_photo
    from dragedit.pipeline.imaging.paste import CompositeConfig
    from dragedit.pipeline.core.requests import EditRequest
    from dragedit.common.errors import UserError
    from dragedit.pipeline.imaging.photo import load_photo

    photos = photos_in(args.photos)
    work = Path(args.work or tempfile.mkdtemp(prefix="dragedit-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = {k: v for k, v in (("pivot_steps", args.pivot_steps), ("tune_steps", args.tune_steps)) if v is not None}
    pti = (PTIConfig.official if args.pti_schedule == "official" else PTIConfig)(allow_download=False,
                                                                                precision=args.precision, **steps)
    drag_cfg = DragConfig(precision=args.precision, **({"max_steps": args.steps} if args.steps else {}))
    det = Dlib()
    rows, figure_rows = [], []
    for path in photos:
        original = load_photo(path).pixels
        rects = det.faces(original)
        if not rects:
            rows.append({"photo": path.name, "status": "no face"})
            print(f"{path.name}: no face, skipped", flush=True)
            continue
        rect = rects[0]
        shape0 = det.shape(original, rect)
        lm0, desc0 = det.landmarks(shape0), det.descriptor(original, shape0)
        for kind in args.kinds:
            idx, targets, iod = drags_for(lm0, kind)
            drags = [(*lm0[i], *t) for i, t in zip(idx, targets)]
            session = work / f"{path.stem}-{kind}.dragedit"
            for paste in args.paste:
                out = work / f"{path.stem}-{kind}-{paste}.png"
                t0 = time.perf_counter()
                try:
                    settings = EditSettings(generator=args.generator, device=args.device, pti=pti, drag=drag_cfg,
                                            composite=CompositeConfig(paste=paste))
                    res = edit_photo(path, [EditRequest(drags)], out, session, settings=settings, from_spec="pivot")
                except UserError as exc:
                    rows.append({"photo": path.name, "kind": kind, "paste": paste, "status": f"failed: {exc}"})
                    print(f"{path.name} {kind} {paste}: failed: {exc}", flush=True)
                    continue
                seconds = time.perf_counter() - t0
                output = load_photo(out).pixels
                hist = res.history[-1]
                row = {"photo": path.name, "kind": kind, "paste": paste, "status": "done", "seconds": seconds,
                       "iod_px": iod, "drag_steps": hist.steps, "stopped_by": hist.stopped_by,
                       "lk_crop_px": hist.measured_distances,
                       **measure(det, original, output, rect, idx, targets, iod, lm0, desc0)}
                rows.append(row)
                print(f"{path.name} {kind} {paste}: landmarks {_f(row.get('landmark_px'))} px "
                      f"(no edit {row['no_edit_px']:.2f}), identity {_f(row.get('identity'))}, "
                      f"detail {row['detail_ratio']:.2f}, outside {row['outside_identical']:.4f}, "
                      f"unexplained {100 * row['unexplained_fraction']:.4f} %, "
                      f"{seconds:.0f} s", flush=True)
                if args.figure and kind == args.kinds[0] and paste == args.paste[0]:
                    figure_rows.append(_face_strip(original, output, rect, [load_photo(work / f"{path.stem}-{kind}-{p}.png").pixels
                                                                            for p in args.paste[1:] if (work / f"{path.stem}-{kind}-{p}.png").exists()]))
    _summary(rows, args.kinds, args.paste)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.figure and figure_rows:
        from dragedit.common.images import save_image

        save_image(np.concatenate(figure_rows, axis=0), args.figure)
    print(f"sessions and outputs in {work}")


def _face_strip(original: np.ndarray, output: np.ndarray, rect, others: list[np.ndarray], size: int = 256) -> np.ndarray:
    h, w = original.shape[:2]
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    half = 0.8 * max(rect.width(), rect.height())
    x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
    tiles = [cv2.resize(np.ascontiguousarray(im[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_AREA)
             for im in [original, output, *others]]
    return np.concatenate(tiles, axis=1)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _summary(rows: list[dict], kinds: list[str], pastes: list[str]) -> None:
    print("\n| kind | paste | photos | landmark px (no edit) | ratio | identity | detail | outside identical "
          "| unexplained % (max) | s/photo |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in kinds:
        for paste in pastes:
            done = [r for r in rows if r.get("kind") == kind and r.get("paste") == paste and r["status"] == "done"]
            found = [r for r in done if r.get("face_found")]
            if not done:
                continue

            def mean(key, rs=found):
                vals = [r[key] for r in rs if r.get(key) is not None]
                return float(np.mean(vals)) if vals else float("nan")

            print(f"| {kind} | {paste} | {len(done)} ({len(found)} faces found) | {mean('landmark_px'):.2f} "
                  f"({mean('no_edit_px'):.2f}) | {mean('landmark_ratio'):.2f} | {mean('identity'):.3f} | "
                  f"{mean('detail_ratio', done):.2f} | {mean('outside_identical', done):.4f} | "
                  f"{100 * mean('unexplained_fraction', done):.4f} ({100 * max(r['unexplained_fraction'] for r in done):.4f}) | "
                  f"{mean('seconds', done):.0f} |")


if __name__ == "__main__":
    main()
