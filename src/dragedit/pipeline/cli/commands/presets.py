"""`dragedit presets`: the named edits, and with `--photo P -o OUT` a picture of each on that photo's face."""
from __future__ import annotations

import argparse

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("presets", help="list the named edits (--preset NAME); with --photo, draw them on a face")
    p.add_argument("--photo", help="draw every preset's arrows (x3) and region on this photo's face (-o)")
    from dragedit.pipeline.core.presets import DEFAULT_STRENGTH

    p.add_argument("--strength", type=O.number, help=f"the strength drawn (default {DEFAULT_STRENGTH:g})")
    O.add_output(p, "with --photo: the picture to write", required=False)


def run(args: argparse.Namespace) -> int:
    from dragedit.common.errors import UserError
    from dragedit.pipeline.core.presets import presets

    rows = [{"name": p.name, "description": p.description, "drags": list(p.drags), "mask_region": p.mask_region}
            for p in presets().values()]
    if (args.photo is None) != (args.output is None):
        raise UserError("give --photo and -o together (the picture of every preset on that photo's face)")
    if args.photo:
        _picture(args)
    text = "\n".join(f"{r['name']:<12} {r['description']} (region: {r['mask_region']})" for r in rows)
    O.report(args, rows, text + (f"\nwrote {args.output}" if args.output else ""))
    return 0


def _picture(args: argparse.Namespace) -> None:
    import numpy as np

    from dragedit.common.images import check_writable, save_image
    from dragedit.pipeline.core.presets import presets
    from dragedit.pipeline.core.requests import EditRequest
    from dragedit.pipeline.imaging.faces import find_faces
    from dragedit.pipeline.imaging.drawing import drags_panel
    from dragedit.pipeline.imaging.photo import load_photo
    from dragedit.pipeline.imaging.regions import region_mask

    check_writable(args.output)
    photo = load_photo(args.photo)
    face = find_faces(photo.pixels)[0]  # the largest (a photo with no face is a one-line error)
    lm = np.asarray(face["landmarks"])
    panels = []
    for p in presets().values():
        req = EditRequest.build(preset=p.name, strength=args.strength).resolved(lm)
        mask = region_mask(req.mask_region, lm, photo.pixels.shape[:2]) if req.mask_region else None
        panels.append(drags_panel(photo.color, [list(d) for d in req.drags], face["box"], p.name, mask))
    side = max(p.shape[0] for p in panels)
    panels = [np.pad(p, ((0, side - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in panels]
    rows = [np.concatenate(panels[i:i + 4], axis=1) for i in range(0, len(panels), 4)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    save_image(np.concatenate(rows, axis=0), args.output)
