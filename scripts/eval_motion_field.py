"""The warp paste's motion field from renders below the crop's size: end-point error on a known motion.

PTI's resolution cap (`PTIConfig.max_resolution`, 256 px by default) has a 512 or 1024 generator render the
reconstruction and the edit at 256 px; the composite brings both up to the crop's size and reads the motion
between them (`imaging.motion.backward_field`). This measures what that costs the field, on real faces:

  1. each photo's largest face is aligned at --size (the FFHQ crop, standing in for the full-size render);
  2. a known smooth motion moves its mouth corners, chin and brows (Gaussian bumps of --shift px at 512,
     scaled with --size), giving the "edited" image;
  3. the field is estimated from the full-size pair (the full path) and from the pair area-downsampled to --cap
     and brought back up as the composite does (the motion-only path);
  4. each field's end-point error against the known one, mean over the face (FFHQ crop's central region) and
     over the pixels that moved more than 0.5 px.

    python scripts/eval_motion_field.py PHOTOS_DIR [--size 512] [--cap 256] [--shift 6] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from benchlib import photos_in  # a sibling module (the script's folder is on the path)

BUMPS = {48: (-0.5, -1.0), 54: (0.5, -1.0), 8: (0.0, 0.8), 19: (0.0, -0.7), 24: (0.0, -0.7)}  # landmark -> motion


def known_field(landmarks: np.ndarray, size: int, shift: float) -> np.ndarray:
    """A backward field b (edited(x) = recon(x + b(x))): the content at each bumped landmark moves by its vector."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    b = np.zeros((size, size, 2))
    sigma = 0.05 * size
    for idx, (dx, dy) in BUMPS.items():
        x0, y0 = landmarks[idx]
        g = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma ** 2))
        b[..., 0] -= g * dx * shift  # content moved by +v is fetched from x - v
        b[..., 1] -= g * dy * shift
    return b.astype(np.float32)


def through(img: np.ndarray, cap: int) -> np.ndarray:
    """What the composite sees of a render made at `cap` px: the image at that size, brought up bicubically."""
    from PIL import Image

    size = img.shape[0]
    small = cv2.resize(img, (cap, cap), interpolation=cv2.INTER_AREA)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def evaluate(photo: Path, size: int, cap: int, shift: float) -> dict | None:
    from dragedit.common.errors import UserError
    from dragedit.pipeline.imaging.align import AlignConfig, align_photo
    from dragedit.pipeline.imaging.geometry import map_points
    from dragedit.pipeline.imaging.motion import MotionConfig, backward_field, warp_image
    from dragedit.pipeline.imaging.photo import load_photo

    try:
        al = align_photo(load_photo(photo), AlignConfig(size=size))
    except UserError:
        return None  # no face
    recon = al.crop
    lm = map_points(al.photo_to_crop, al.landmarks)
    truth = known_field(lm, size, shift * size / 512)
    edited = warp_image(recon, truth)
    region = np.zeros((size, size), np.float32)
    region[size // 8: size * 7 // 8, size // 8: size * 7 // 8] = 1
    cfg = MotionConfig()
    full, _ = backward_field(recon, edited, region, [], cfg)
    low, _ = backward_field(through(recon, cap), through(edited, cap), region, [], cfg)
    moved = (np.linalg.norm(truth, axis=2) > 0.5) & (region > 0)
    inside = region > 0

    def epe(b: np.ndarray, where: np.ndarray) -> float:
        return float(np.linalg.norm(b - truth, axis=2)[where].mean())

    return {"photo": photo.name, "max_motion_px": float(np.linalg.norm(truth, axis=2).max()),
            "epe_full_face": epe(full, inside), "epe_cap_face": epe(low, inside),
            "epe_full_moved": epe(full, moved), "epe_cap_moved": epe(low, moved)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", help="folder of photos")
    ap.add_argument("--size", type=int, default=512, help="the generator's (crop's) size")
    ap.add_argument("--cap", type=int, default=256, help="the size the renders are made at")
    ap.add_argument("--shift", type=float, default=6.0, help="largest known motion, px at 512")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    rows = [r for p in photos_in(args.photos) for r in [evaluate(p, args.size, args.cap, args.shift)] if r]
    print(f"field end-point error, px at {args.size}: full-size renders vs renders at {args.cap} px")
    print("| photo | largest motion | face: full | face: capped | moved: full | moved: capped | capped - full |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows + ([{"photo": "**mean**", **{k: float(np.mean([x[k] for x in rows])) for k in rows[0]
                                              if k != "photo"}}] if rows else []):
        print(f"| {r['photo']} | {r['max_motion_px']:.1f} | {r['epe_full_face']:.3f} | {r['epe_cap_face']:.3f} | "
              f"{r['epe_full_moved']:.3f} | {r['epe_cap_moved']:.3f} | {r['epe_cap_moved'] - r['epe_full_moved']:+.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
