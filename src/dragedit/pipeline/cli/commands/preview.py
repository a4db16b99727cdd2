"""`dragedit preview PHOTO|SESSION`: a photo's faces, landmarks and grid, or an edit's before | after."""
from __future__ import annotations

import argparse
from pathlib import Path

from dragedit.common.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("preview", help="PHOTO: its faces, landmarks and a pixel grid; CLIP: the same on its "
                                       "keyframe; SESSION: an edit's arrows with original | edited")
    p.add_argument("target", help="a photo, a clip, or a session folder")
    O.add_output(p, "the picture to write (.png or .jpg)")
    p.add_argument("--edit", help="with a session: edit number (default: the latest)")
    p.add_argument("--keyframe", type=O.number, metavar="SECONDS", help="with a clip: the frame to show (default: "
                   "the first where a face is found, the frame a clip's edit uses)")


def run(args: argparse.Namespace) -> int:
    from dragedit.common.images import check_writable

    check_writable(args.output)
    target = Path(args.target)
    if target.is_dir():
        return _session(args, target)
    if args.edit is not None:
        raise UserError("--edit needs a session folder, not a photo")
    from dragedit.common.images import save_image
    from dragedit.pipeline.imaging.faces import FACE_ORDER, find_faces
    from dragedit.pipeline.imaging.drawing import photo_preview
    from dragedit.pipeline.imaging.photo import load_photo

    from dragedit.pipeline.imaging.video import is_video

    _not_the_photo(args.output, target)
    keyframe = None
    if is_video(target):
        pixels, keyframe = _keyframe(target, args.keyframe)
    elif args.keyframe is not None:
        raise UserError(f"--keyframe goes with a clip; {target.name} is a photo")
    else:
        pixels = load_photo(target).color
    faces = find_faces(pixels)
    save_image(photo_preview(pixels, faces), args.output)
    lines = [f"  --face {i}: box {[round(v) for v in f['box']]}" for i, f in enumerate(faces)]
    where = f" on the keyframe ({keyframe:.2f} s)" if keyframe is not None else ""
    O.report(args, {"output": str(args.output), "faces": faces, "order": FACE_ORDER, "keyframe_seconds": keyframe},
             f"{len(faces)} face(s){where}, {FACE_ORDER}:\n" + "\n".join(lines) + f"\nwrote {args.output}")
    return 0


def _keyframe(clip: Path, seconds: float | None):
    """(the keyframe's pixels, its time): the frame a clip's edit would use."""
    from dragedit.pipeline.core.video import VideoConfig, find_keyframe
    from dragedit.pipeline.imaging.video import frame_at, probe_video

    info = probe_video(clip)
    index = None if seconds is None else min(range(info.frames), key=lambda i: abs(info.times[i] - seconds))
    index = find_keyframe(info, 0, info.frames - 1, index, None, None, VideoConfig().keyframe_search)
    return frame_at(clip, index, info.rotation), info.times[index]


def _session(args: argparse.Namespace, target: Path) -> int:
    import numpy as np
    from PIL import Image

    from dragedit.common.images import save_image
    from dragedit.pipeline.core import layout as L
    from dragedit.pipeline.core.edit import EditJob, edit
    from dragedit.pipeline.core.session import Session, is_session_folder
    from dragedit.pipeline.core.stages.align import alignment
    from dragedit.pipeline.imaging.drawing import edit_preview

    if not is_session_folder(target):
        raise UserError(f"{target} is neither a photo nor a dragedit session folder")
    from dragedit.pipeline.core.video import is_clip_session, preview_strip

    if is_clip_session(target):  # a clip's session: source frames above, edited below
        if args.edit is not None:
            raise UserError("--edit goes with a photo's session; a clip session shows its latest edit")
        save_image(preview_strip(target), args.output)
        O.report(args, {"output": str(args.output)}, f"wrote {args.output} (source frames above, edited below)")
        return 0
    with Session(target, read_only=True) as s:
        _not_the_photo(args.output, s.photo_path())  # before the composite stage runs
    name = edit(EditJob(target, composite_edit=args.edit or "latest")).composite.edit
    with Session(target, read_only=True) as s:
        with Image.open(s.path(L.composite_file(name, "edit"))) as img:
            edited = np.asarray(img)
        info = s.edit_info(name)
        picture = edit_preview(s.photo().color, edited[..., :3], info["drags_photo"], info["final_points_photo"],
                               alignment(s).face_box)
    save_image(picture, args.output)
    O.report(args, {"output": str(args.output), "edit": name}, f"wrote {args.output} ({name}: original | edited)")
    return 0


def _not_the_photo(output, photo) -> None:
    """A preview is never written over the photo it shows."""
    from dragedit.pipeline.core.originals import same_file

    if same_file(output, photo):
        raise UserError(f"the preview {output} would replace the photo {photo}; choose another output path")
