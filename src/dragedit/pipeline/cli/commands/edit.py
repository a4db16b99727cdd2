"""`dragedit edit PHOTO`: photo -> edited photo, every stage that is needed (cached in a session, resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path

from dragedit.common.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("edit", help="photo (or clip) -> edited photo (or clip): every stage that is needed (cached, "
                                    "resumable)")
    p.add_argument("photo", help="a photo, or a clip (recognised by its content): the drag is made on its "
                                 "keyframe and carried to every frame")
    p.add_argument("--session", help="session folder (default: OUTPUT_DIR/PHOTO_STEM.dragedit)")
    O.add_output(p, "edited photo (.jpg, .png, .webp, .tif, .avif; default: PHOTO_edited beside the photo, in "
                    "its format where dragedit writes it, else JPEG for HEIC and PNG for others)", overwrite=True,
                 required=False)
    O.add_face(p, every=True)
    O.add_points(p)
    O.add_paste(p)
    O.add_compute(p)
    O.add_drag(p)
    O.add_pti(p)
    _add_video(p)


def _add_video(p) -> None:
    from dragedit.pipeline.core.video import VideoConfig

    g = p.add_argument_group("clip (when PHOTO is a video)")
    g.add_argument("--keyframe", type=O.number, metavar="SECONDS", help="the frame the points refer to (default: "
                   "the first frame where the face is found)")
    g.add_argument("--start", type=O.number, metavar="SECONDS", help="edit from here (default: the start)")
    g.add_argument("--end", type=O.number, metavar="SECONDS", help="edit up to here (default: the end); the rest "
                   "of the clip is copied as it is")
    g.add_argument("--crf", type=O.whole, help=f"H.264 quality for .mp4/.mov, 0-51 (default "
                   f"{O.default(VideoConfig, 'crf')}; .mkv and frame folders are lossless)")
    g.add_argument("--tune-frames", type=O.whole, metavar="N", help="frames sampled over the clip that the "
                   f"generator is tuned on beside the keyframe (default {O.default(VideoConfig, 'tune_frames')}; "
                   "0: the keyframe alone)")
    g.add_argument("--same-person", type=O.number, metavar="DISTANCE", help="where the face was lost (a cut, the "
                   "person gone), a face within this dlib face-descriptor distance of it is taken as the same person "
                   f"and edited (default {O.default(VideoConfig, 'same_person')}; dlib's own rule is 0.6; 0: never)")
    g.add_argument("--workers", type=O.whole, metavar="N", help="processes detecting the faces and fitting the "
                   "clip's frames, each a part of consecutive frames with cores/N threads (default "
                   f"{O.default(VideoConfig, 'workers')}: all in this process)")
    g.add_argument("--backend", choices=("local", "ray"), help="where the --workers fit the frames: local processes "
                   "or Ray tasks on a cluster that sees the session's folder at the same path (default local)")
    g.add_argument("--address", help="the Ray cluster's address (default: a running local instance, else a new one)")


VIDEO_OPTIONS = ("keyframe", "start", "end", "crf", "tune_frames", "same_person", "workers", "backend", "address")


def session_dir(args: argparse.Namespace) -> Path:
    return Path(args.session) if args.session else Path(args.output).parent / f"{Path(args.photo).stem}.dragedit"


def default_output(args: argparse.Namespace) -> None:
    """-o left out: PHOTO_edited beside the photo, in a format dragedit writes (said when it is another)."""
    from dragedit.common.environment import log
    from dragedit.common.images import edited_suffix

    photo = Path(args.photo)
    args.output = str(photo.with_name(f"{photo.stem}_edited{edited_suffix(photo.suffix)}"))
    if Path(args.output).exists() and not args.overwrite:
        raise UserError(f"{args.output} exists (the default output, -o left out); pass --overwrite to replace it, "
                        "or -o to name another file")
    if Path(args.output).suffix != photo.suffix.lower():
        log.warning(f"note: {photo.name} is written as {Path(args.output).name} (dragedit writes JPEG, PNG, WebP, "
                    "TIFF or AVIF; -o names another)")


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.core.edit import EditJob, check_edit, run_edit

    from ..progress import Bars

    from dragedit.pipeline.imaging.video import is_video

    if is_video(args.photo):
        return _video(args)
    if Path(args.photo).suffix.lower() in (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"):
        raise UserError(f"{args.photo} is not a video FFmpeg can read (truncated, corrupt, or a codec it lacks); "
                        "pass a whole clip")
    given = [f"--{n.replace('_', '-')}" for n in VIDEO_OPTIONS if getattr(args, n) is not None]
    if given:
        raise UserError(f"{' and '.join(given)} go with a clip; {Path(args.photo).name} is a photo")
    if args.output is None:
        default_output(args)
    face = O.face(args, every=True)
    if face == "all":
        return _every_face(args)
    job = EditJob(session_dir(args), requests=O.requests_from(args), photo=args.photo, face=face,
                  face_at=O.face_at(args.face_at), from_spec=args.from_spec, output=args.output, overwrite=args.overwrite)
    plan = check_edit(job, O.settings_from(args))
    with Bars(not args.json) as bars:
        result = run_edit(plan, bars)
    stages = ", ".join(f"{k} {v}" for k, v in result.stages.items())
    if not result.edits:  # nothing moves (strength 0): the photo itself, no session
        text = f"no drag moves anything: wrote {args.output}, the photo unchanged"
    else:
        text = "\n".join(edit_lines(result) + [f"stages: {stages}", f"wrote {args.output} (session {result.session})"])
    O.report(args, result.to_dict(), text)
    return 0


def edit_lines(result) -> list[str]:
    """One line per edit: the handle distances measured independently (LK on the renders), not the tracker's."""
    lines = []
    for name, h in zip(result.edits, result.history):
        where = ", ".join(f"{d:.1f}" if d is not None else "?" for d in h.measured_distances)
        lost = sum(h.lost)
        lines.append(f"{name}: {h.steps} steps, stopped by {h.stopped_by}; handles {where or '?'} crop px from their "
                     f"targets (measured on the renders)" + (f"; {lost} handle(s) lost by the tracker" if lost else "")
                     + (" (reused: the same request was made before)"
                        if result.reused and result.stages.get(name) == "reused" else ""))
    return lines


def _every_face(args: argparse.Namespace) -> int:
    """--face all: the edit on every face, one session each (SESSION_faceN), one output photo."""
    from dragedit.pipeline.core.library import edit_every_face

    from ..progress import Bars

    if args.face_at is not None or args.session is not None:
        raise UserError("--face all makes one session per face next to the output; leave out --face-at and --session")
    base = Path(args.output).parent / Path(args.photo).stem
    with Bars(not args.json) as bars:
        done = edit_every_face(args.photo, O.requests_from(args), lambda i: Path(f"{base}_face{i}.dragedit"),
                               output=args.output, settings=O.settings_from(args), from_spec=args.from_spec,
                               overwrite=args.overwrite, on_progress=bars)
    lines = [f"face {fe.face}: " + ("; ".join(edit_lines(fe.result)) or "nothing moves") for fe in done]
    O.report(args, {"output": str(args.output), "faces": [fe.result.to_dict() for fe in done]},
             "\n".join(lines + [f"wrote {args.output} ({len(done)} faces, sessions {base}_faceN.dragedit)"]))
    return 0


def _video(args: argparse.Namespace) -> int:
    """A clip: the drag on its keyframe, the same edit on every frame where the face is."""
    from dragedit.pipeline.core.video import VideoConfig, VideoJob, check_video, run_video

    from ..progress import Bars

    if args.from_spec is not None:
        raise UserError("--from goes with photos; a clip's edit is always made from the keyframe's pivot")
    face = O.face(args)
    config = O.config_of(VideoConfig, crf=args.crf, tune_frames=args.tune_frames, same_person=args.same_person,
                         workers=args.workers, backend=args.backend, address=args.address)
    job = VideoJob(args.photo, requests=O.requests_from(args), output=args.output, session=args.session, face=face,
                   face_at=O.face_at(args.face_at), keyframe=args.keyframe, start=args.start, end=args.end,
                   overwrite=args.overwrite)
    plan = check_video(job, O.settings_from(args), config)
    with Bars(not args.json) as bars:
        result = run_video(plan, bars)
    again = (f"{result.found_again} of them where the face was found again after it was lost; "
             if result.found_again else "")
    text = (f"keyframe {result.keyframe} ({result.keyframe_seconds:.2f} s); edited {result.edited} of "
            f"{result.frames} frames ({again}{result.untouched} in the edited part without the face, left as they "
            "were)\n"
            f"wrote {result.output} (session {result.session})")
    O.report(args, result.to_dict(), text)
    return 0
