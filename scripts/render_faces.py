"""Write procedural portraits (`dragedit.stylegan2.portraits`, the embedded generator's training data) to files.

    python scripts/render_faces.py --out DIR --count 64 --size 128 --seed 0 [--grid grid.png]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from dragedit.stylegan2.portraits import grid, render_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for PNG files")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", help="also write a grid image here")
    args = ap.parse_args()
    from PIL import Image

    imgs = render_batch(range(args.seed, args.seed + args.count), args.size)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(imgs):
            Image.fromarray(im).save(Path(args.out) / f"face_{args.seed + i:07d}.png")
    if args.grid:
        Image.fromarray(grid(imgs, int(math.ceil(math.sqrt(len(imgs)))))).save(args.grid)


if __name__ == "__main__":
    main()
