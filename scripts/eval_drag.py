"""Drag quality: paired image reconstruction (DragGAN Table 2, Endo 2022 protocol) on any generator.

For each sample, as Endo (2022) builds its pairs: w1 = mapping(z1) truncated to psi 0.3; on the
rows DragGAN optimises (0-5), w2 = w1 + sigma (w' - w1) with sigma 0.1 and w' an independent, untruncated
sample per row. Render I1, I2; dense optical flow I1 -> I2 (OpenCV Farneback); sample K flow vectors as
handle -> target pairs (textured, forward-backward-consistent pixels only); drag I1 for at most 100
steps; compare the result with I2. Reported per setting (1, 5, 32 points):
  MSE   on images in [0, 1], result vs I2 ("no edit": I1 vs I2)
  LPIPS AlexNet, where its weights are cached (else n/a)
  dist  mean distance from the handles to their targets, measured by OpenCV's pyramidal Lucas-Kanade
        tracking of the handle patches from I1 into the result, independent of DragGAN's own tracker
        ("no edit": the handles stay where they were; "I2": LK applied to I2, the measurement's floor)

    python scripts/eval_drag.py [--generator PATH] [--samples 16] [--seed 0] [--sigma 0.1] [--json out.json]
                                [--figure examples.png] [--set FIELD=VALUE ...]

At 128 px, sigma 0.1 moves handles by about 1 px; --sigma 0.5 gives motions of 2-3 px (8-12 px at 512,
the scale of the paper's Table 1), a harder test.
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from dragedit.draggan.evaluation import evaluate


def example_figure(examples: list[dict], scale: int = 3) -> np.ndarray:
    """Rows of (I1 with handle -> target arrows, drag result with DragGAN's final points, I2), upscaled."""
    def up(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST).copy()

    def pt(p) -> tuple[int, int]:
        return int(round((p[0] + 0.5) * scale - 0.5)), int(round((p[1] + 0.5) * scale - 0.5))

    rows = []
    for ex in examples:
        a, b, c = up(ex["i1"]), up(ex["result"]), up(ex["i2"])
        for h, t, f in zip(ex["handles"], ex["targets"], ex["final"]):
            cv2.arrowedLine(a, pt(h), pt(t), (255, 40, 40), 1, cv2.LINE_AA, tipLength=0.3)
            cv2.circle(a, pt(h), 2, (255, 40, 40), -1, cv2.LINE_AA)
            cv2.circle(b, pt(t), 3, (40, 90, 255), 1, cv2.LINE_AA)
            cv2.circle(b, pt(f), 2, (255, 40, 40), -1, cv2.LINE_AA)
            cv2.circle(c, pt(t), 3, (40, 90, 255), 1, cv2.LINE_AA)
        gap = np.full((a.shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([a, gap, b, gap, c], 1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], 0)


def _drag_overrides(items: list[str]) -> dict:
    """'field=value' strings -> DragConfig keyword arguments, typed like the field's default."""
    from dataclasses import fields

    from dragedit.draggan import DragConfig

    kinds = {f.name: type(f.default) for f in fields(DragConfig)}
    out: dict = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in kinds or name == "max_steps":
            raise SystemExit(f"--set {item}: not a DragConfig field (or use --max-steps)")
        kind = kinds[name]
        try:
            if kind is bool:
                out[name] = value.lower() in ("1", "true", "yes")
            elif kind is type(None):  # optional number: feature_block, stop_distance
                out[name] = None if value.lower() == "none" else (int(value) if value.lstrip("-").isdigit()
                                                                  else float(value))
            else:
                out[name] = kind(value)
        except ValueError:
            raise SystemExit(f"--set {item}: {value!r} is not a valid {name}") from None
    try:
        DragConfig(**out)
    except ValueError as exc:
        raise SystemExit(f"--set: {exc}") from None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default=None, help="checkpoint; default: the embedded generator")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--points", default="1,5,32", help="settings: handle counts")
    ap.add_argument("--sigma", type=float, default=0.1, help="w2 = w1 + sigma (w' - w1) on the optimised rows (Endo 2022)")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--psi", type=float, default=0.3, help="truncation of w1 (Endo 2022: 0.3)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a DragConfig field, e.g. --set feature_block=4 --set r1=6 (repeatable)")
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--figure", help="write a PNG of the first --figure-samples samples per setting: I1 with "
                                     "handle -> target arrows, drag result (red: final points, blue: targets), I2")
    ap.add_argument("--figure-samples", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    overrides = _drag_overrides(args.set)  # bad settings fail before the generator loads

    from dragedit.inversion.losses import lpips_metric
    from dragedit.pipeline.core.runtime import resolve_generator
    from dragedit.stylegan2 import load_generator

    path = resolve_generator(args.generator)
    G = load_generator(path)
    settings = [int(p) for p in args.points.split(",")]
    t0 = time.perf_counter()
    res = evaluate(G, settings, args.samples, args.seed, args.sigma, args.max_steps, args.psi,
                   overrides, progress=not args.quiet,
                   examples=args.figure_samples if args.figure else 0, lpips=lpips_metric("alex"))
    examples = res.pop("examples")
    res["args"] = vars(args) | {"generator": str(path)}
    res["seconds"] = time.perf_counter() - t0
    print(f"\nPaired reconstruction on {path.name} ({G.img_resolution}px), {args.samples} samples, seed {args.seed}, "
          f"<= {args.max_steps} steps, sigma {args.sigma}, psi {args.psi}")
    print(f"{'points':>6} | {'MSE x1e2 edit':>13} {'no edit':>8} | {'LPIPS edit':>10} {'no edit':>8} | "
          f"{'dist px edit':>12} {'no edit':>8} {'I2':>5} | {'tracker':>7} | {'steps':>5}")
    for k, v in res["settings"].items():
        m = v["mean"]
        lpe = f"{m['lpips_edit']:.3f}" if m["lpips_edit"] is not None else "n/a"
        lpn = f"{m['lpips_none']:.3f}" if m["lpips_none"] is not None else "n/a"
        print(f"{k:>6} | {100 * m['mse_edit']:>13.3f} {100 * m['mse_none']:>8.3f} | {lpe:>10} {lpn:>8} | "
              f"{m['dist_edit']:>12.2f} {m['dist_none']:>8.2f} {m['dist_ideal']:>5.2f} | {m['dist_tracker']:>7.2f} | "
              f"{m['steps']:>5.0f}")
    print("dist: LK-measured handle -> target distance; 'I2' is the same measurement on I2 itself (its floor); "
          "'tracker' is DragGAN's own final distance")
    if args.json:
        from dragedit.common.atomic import write_json

        write_json(args.json, res)
    if args.figure:
        from dragedit.common.images import save_image

        save_image(example_figure(examples), args.figure)


if __name__ == "__main__":
    main()
