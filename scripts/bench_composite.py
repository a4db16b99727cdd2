"""Motion-transfer compositing: time on a 12 MP photo, and which flow recovers a known motion best.

1. Time: a 4000x3000 photo whose face (about 1,400 px wide) maps to an R x R crop; the "edit" moves a
   region of the crop by a known smooth field; `warp_paste` (flow both ways, field, photo-space warp)
   is timed for R = 128 and 512, against the old generated paste.
2. Accuracy: the same known fields on the test photo's aligned face (and a textured pattern), recovered
   by each flow method; end-point error in crop px inside the moved region and outside it.

    python scripts/bench_composite.py [--photo tests/fixtures/photos/astronaut.png] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np


def _field(size: int, t: tuple[float, float], sigma_frac: float = 0.11) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2
    w = np.clip(1.6 * np.exp(-((xs - c) ** 2 + (ys - c) ** 2) / (2 * (sigma_frac * size) ** 2)), 0, 1)
    return np.stack([t[0] * w, t[1] * w], -1)  # forward motion of each pixel, crop px


def _move(img: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    size = img.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return cv2.remap(img, xs - fwd[..., 0], ys - fwd[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def _timeit(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/photos/astronaut.png"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from PIL import Image

    from dragedit.pipeline.imaging.paste import CompositeConfig, blend_mask, composite, warp_paste
    from dragedit.pipeline.imaging.motion import MotionConfig, backward_field

    src = np.asarray(Image.open(args.photo).convert("RGB"))
    photo = cv2.resize(src, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    photo = np.ascontiguousarray(cv2.copyMakeBorder(photo, 0, 0, 500, 500, cv2.BORDER_REFLECT))
    print(f"photo {photo.shape[1]}x{photo.shape[0]} ({photo.shape[0] * photo.shape[1] / 1e6:.0f} MP), "
          f"threads {cv2.getNumThreads()}")
    print("\n| crop | warp paste ms | generated paste ms | changed pixels |")
    print("| --- | --- | --- | --- |")
    for size in (128, 512):
        scale = size / 2800  # the face square, 2,800 photo px, onto the crop
        photo_to_crop = np.array([[scale, 0, -600 * scale], [0, scale, -100 * scale], [0, 0, 1.0]])
        crop = cv2.warpAffine(photo, photo_to_crop[:2], (size, size), flags=cv2.INTER_AREA)
        edited = _move(crop, _field(size, (0.03 * size, -0.02 * size)))
        region = np.ones((size, size), np.float32)
        cfg = CompositeConfig()
        res = warp_paste(photo, crop, crop, edited, region, photo_to_crop, config=cfg)
        t_warp = _timeit(lambda: warp_paste(photo, crop, crop, edited, region, photo_to_crop, config=cfg), args.repeats)
        lm = np.array([[0.3 * size, 0.3 * size], [0.7 * size, 0.3 * size], [0.5 * size, 0.8 * size]] * 23)[:68]
        inside = np.ones((size, size), np.float32)
        t_gen = _timeit(lambda: composite(photo, edited, blend_mask(edited, crop, inside, lm, cfg), photo_to_crop),
                        args.repeats)
        print(f"| {size} | {t_warp:.0f} | {t_gen:.0f} | {res.stats['changed_pixels']} |")

    print("\n| image | method | EPE moved region (crop px) | EPE elsewhere | ms per field |")
    print("| --- | --- | --- | --- | --- |")
    rng = np.random.RandomState(0)
    size = 128
    face = cv2.resize(src[60:360, 100:400], (size, size), interpolation=cv2.INTER_AREA)
    pattern = cv2.GaussianBlur((rng.rand(size, size, 3) * 255).astype(np.uint8), (0, 0), 1.2)
    for name, img in (("face", face), ("pattern", pattern)):
        fwd = _field(size, (3.0, -2.0))
        edited = _move(img, fwd)
        # The backward field at x is -fwd at the pre-image of x; fwd is smooth, so -fwd(x) is within 0.1 px.
        want = -fwd
        moved = np.linalg.norm(fwd, axis=2) > 0.5
        for method in ("dis", "farneback"):
            cfg = MotionConfig(method=method)
            b, _ = backward_field(img, edited, np.ones((size, size), np.float32), [], cfg)
            ms = _timeit(lambda: backward_field(img, edited, np.ones((size, size), np.float32), [], cfg), args.repeats)
            err = np.linalg.norm(b - want, axis=2)
            print(f"| {name} | {method} | {err[moved].mean():.3f} | {err[~moved].mean():.3f} | {ms:.0f} |")


if __name__ == "__main__":
    main()
