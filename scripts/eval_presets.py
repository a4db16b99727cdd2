"""Every preset on every face photo of a folder, measured on the output photo with dlib's landmarks (tools that
are not dragedit's): does each dragged landmark move the way the preset says, where the drag arrived?

For each photo (largest face) one session; each preset is an edit from the pivot (PTI runs once per photo).
Per preset: the edits whose drag arrived (stopped by distance), and of their dragged landmarks how many dlib
finds moved the intended way, against it, or less than its 1 px resolution, with the mean movement along the
drag (% of the eye distance).

    python scripts/eval_presets.py PHOTOS_DIR [--presets smile frown] [--work DIR] [--json out.json]
                                   [--figure astronaut.png --figure-photo astronaut.png]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchlib import photos_in
from eval_photos import Dlib, _face_strip  # a sibling script (its folder is on the path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", help="folder of photos")
    ap.add_argument("--presets", nargs="+", help="default: all")
    ap.add_argument("--generator", help="checkpoint; default: the embedded one")
    ap.add_argument("--work", help="sessions and outputs (default: a temporary folder)")
    ap.add_argument("--json", help="write every row here")
    ap.add_argument("--figure", help="original and every preset's output on one face, in a grid")
    ap.add_argument("--figure-photo", help="which photo's face the figure shows (default: the first)")
    args = ap.parse_args()

    from dragedit.common.errors import UserError
    from dragedit.pipeline.api import EditRequest, EditSettings, edit_photo
    from dragedit.pipeline.core.presets import presets
    from dragedit.pipeline.imaging.anchors import AnchoredDrag
    from dragedit.pipeline.imaging.photo import load_photo

    names = args.presets or list(presets())
    photos = photos_in(args.photos)
    work = Path(args.work or tempfile.mkdtemp(prefix="dragedit-presets-"))
    work.mkdir(parents=True, exist_ok=True)
    det, rows, tiles = Dlib(), [], {}
    settings = EditSettings(generator=args.generator, device="cpu")
    for path in photos:
        original = load_photo(path).pixels
        rects = det.faces(original)
        if not rects:
            print(f"{path.name}: no face, skipped", flush=True)
            continue
        lm0 = det.landmarks(det.shape(original, rects[0]))
        iod = float(np.linalg.norm(lm0[42:48].mean(0) - lm0[36:42].mean(0)))
        for name in names:
            req = EditRequest.from_preset(name)
            out = work / f"{path.stem}-{name}.png"
            try:
                res = edit_photo(path, [req], out, work / f"{path.stem}.dragedit", settings=settings, from_spec="pivot")
            except UserError as exc:
                print(f"{path.name} {name}: failed: {exc}", flush=True)
                continue
            edited = load_photo(out).pixels
            found = det.match(edited, rects[0])
            lm1 = det.landmarks(det.shape(edited, found)) if found is not None else None
            resolved = req.resolved(lm0)  # the intended directions, on dlib's own landmarks of the original
            moves = []
            for spec, (x1, y1, x2, y2) in zip(req.drags, resolved.drags):
                want = np.array([x2 - x1, y2 - y1])
                unit = want / max(np.linalg.norm(want), 1e-9)
                i = spec.index if isinstance(spec, AnchoredDrag) else None
                moved = None if lm1 is None or i is None else float(np.dot(lm1[i] - lm0[i], unit))
                moves.append(moved)
            h = res.history[-1]
            arrived = h.stopped_by == "distance"
            rows.append({"photo": path.name, "preset": name, "arrived": arrived, "stopped_by": h.stopped_by,
                         "moves_px": moves, "iod_px": iod, "lk_crop_px": h.measured_distances})
            shown = ", ".join("n/a" if m is None else f"{100 * m / iod:+.1f}%" for m in moves)
            print(f"{path.name} {name}: {h.stopped_by}, dlib landmark moves along the drag {shown}", flush=True)
            if args.figure and (args.figure_photo or photos[0].name) == path.name:
                tiles.setdefault("original", _face_strip(original, original, rects[0], [])[:, :256])
                tiles[name] = _face_strip(original, edited, rects[0], [])[:, 256:]
    _summary(rows, names)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.figure and tiles:
        _figure(tiles, Path(args.figure))
    print(f"sessions and outputs in {work}")


def _summary(rows: list[dict], names: list[str]) -> None:
    print("\n| preset | photos | drag arrived | dragged landmarks (arrived): the intended way / against it / "
          "under dlib's 1 px | mean move, % of eye distance |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        rs = [r for r in rows if r["preset"] == name]
        arrived = [r for r in rs if r["arrived"]]
        moves = [(m, r["iod_px"]) for r in arrived for m in r["moves_px"] if m is not None]
        right, wrong = sum(m >= 0.5 for m, _ in moves), sum(m <= -0.5 for m, _ in moves)
        mean = f"{100 * np.mean([m / iod for m, iod in moves]):+.2f}" if moves else "n/a"
        print(f"| {name} | {len(rs)} | {len(arrived)} | {right} / {wrong} / {len(moves) - right - wrong} | {mean} |")


def _figure(tiles: dict, path: Path) -> None:
    import cv2

    from dragedit.common.images import save_image

    panels = []
    for name, tile in tiles.items():
        t = np.full((tile.shape[0] + 28, tile.shape[1], 3), 255, np.uint8)
        t[28:] = tile
        cv2.putText(t, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(t)
    while len(panels) % 3:
        panels.append(np.full_like(panels[0], 255))
    rows = [np.concatenate(panels[i:i + 3], axis=1) for i in range(0, len(panels), 3)]
    save_image(np.concatenate(rows, axis=0), path)


if __name__ == "__main__":
    main()
