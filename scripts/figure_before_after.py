"""Before | after figure of a session's edit, cropped to the face at the photo's full resolution.

Panels: the original with the drags drawn (handle -> target, and where LK measured each handle after the
drag), the `warp` composite, and the `generated` composite (both made through the session, cached).

    python scripts/figure_before_after.py SESSION -o docs/first_command.png [--edit N] [--size 360]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--edit", default=None)
    ap.add_argument("--size", type=int, default=360, help="panel size in pixels")
    args = ap.parse_args()

    from dragedit.common.images import save_image
    from dragedit.pipeline.api import EditJob, EditSettings, Session, edit
    from dragedit.pipeline.core.stages.align import alignment
    from dragedit.pipeline.imaging.geometry import map_points
    from dragedit.pipeline.imaging.paste import CompositeConfig
    from dragedit.pipeline.imaging.photo import load_photo

    panels = {}
    with tempfile.TemporaryDirectory() as tmp:
        for paste in ("warp", "generated"):
            res = edit(EditJob(args.session, output=Path(tmp) / f"{paste}.png", composite_edit=args.edit or "latest"),
                       EditSettings(composite=CompositeConfig(paste=paste))).composite
            panels[paste] = load_photo(Path(tmp) / f"{paste}.png").color
    name = res.edit
    with Session(args.session, read_only=True) as s:
        info = s.edit_info(name)
        al = alignment(s)
        photo = s.photo().color
    x0, y0, x1, y1 = al.face_box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * max(x1 - x0, y1 - y0)
    h, w = photo.shape[:2]
    bx0, by0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    bx1, by1 = int(min(cx + half, w)), int(min(cy + half, h))
    scale = args.size / max(bx1 - bx0, by1 - by0)

    def panel(img: np.ndarray) -> np.ndarray:
        crop = np.ascontiguousarray(img[by0:by1, bx0:bx1])
        return cv2.resize(crop, (round((bx1 - bx0) * scale), round((by1 - by0) * scale)), interpolation=cv2.INTER_AREA)

    def at(p) -> tuple[int, int]:
        return int(round((p[0] - bx0) * scale)), int(round((p[1] - by0) * scale))

    before = panel(photo).copy()
    for x1_, y1_, x2_, y2_ in info["drags_photo"]:
        cv2.arrowedLine(before, at((x1_, y1_)), at((x2_, y2_)), (255, 60, 60), 2, cv2.LINE_AA, tipLength=0.3)
    for hnd in info.get("handles", []):
        if hnd.get("measured") is not None:
            p = map_points(al.crop_to_photo, [hnd["measured"]])[0]
            cv2.circle(before, at(p), 4, (60, 220, 60) if not hnd.get("lost") else (255, 200, 0), 2, cv2.LINE_AA)
    gap = np.full((before.shape[0], 6, 3), 255, np.uint8)
    save_image(np.concatenate([before, gap, panel(panels["warp"]), gap, panel(panels["generated"])], axis=1),
               args.output)
    print(f"wrote {args.output}: original with drags (red) and LK-measured handles (green; yellow = lost) | warp | "
          f"generated ({name}, stopped by {info['stopped_by']})")


if __name__ == "__main__":
    main()
