"""Alignment time on a large photo: read, detect (downscaled copy), landmarks, FFHQ crop.

Builds a 4000x3000 (12 MP) JPEG from the test photo, then times `load_photo` and `align_photo`.

    python scripts/bench_align.py [--photo PATH] [--size 512] [--repeats 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/photos/astronaut.png"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from dragedit.pipeline.imaging.align import AlignConfig, align_photo
    from dragedit.pipeline.imaging.photo import load_photo

    src = np.asarray(Image.open(args.photo).convert("RGB"))
    big = cv2.resize(src, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 0, 0, 500, 500, cv2.BORDER_REFLECT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jpg"
        Image.fromarray(big).save(path, quality=92)
        align_photo(load_photo(args.photo), AlignConfig(size=args.size))  # load dlib models once
        loads, aligns = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            photo = load_photo(path)
            t1 = time.perf_counter()
            al = align_photo(photo, AlignConfig(size=args.size))
            t2 = time.perf_counter()
            loads.append(t1 - t0)
            aligns.append(t2 - t1)
    print(f"12 MP photo ({photo.size[0]}x{photo.size[1]}), crop {args.size}px, face box {[round(v) for v in al.face_box]}")
    print(f"read + decode: {1000 * min(loads):.0f} ms   detect + landmarks + crop: {1000 * min(aligns):.0f} ms "
          f"(best of {args.repeats})")


if __name__ == "__main__":
    main()
