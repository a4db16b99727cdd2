"""`dragedit edit PHOTO`: photo -> edited photo, every stage that is needed (cached in a session, resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("edit", help="photo -> edited photo: every stage that is needed (cached, resumable)")
    p.add_argument("photo")
    p.add_argument("--session", help="session folder (default: OUTPUT_DIR/PHOTO_STEM.dragedit)")
    O.add_output(p, "edited photo (.jpg, .png, .webp, .tif)", overwrite=True)
    O.add_face(p)
    O.add_points(p)
    O.add_paste(p)
    O.add_compute(p)
    O.add_drag(p)
    O.add_pti(p)


def session_dir(args: argparse.Namespace) -> Path:
    return Path(args.session) if args.session else Path(args.output).parent / f"{Path(args.photo).stem}.dragedit"


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.core.edit import EditJob, check_edit, run_edit

    from ..progress import Bars

    job = EditJob(session_dir(args), O.requests_from(args), args.photo, args.face, O.face_at(args.face_at),
                  args.from_spec, "composite", args.output, overwrite=args.overwrite)
    plan = check_edit(job, O.settings_from(args))
    with Bars(not args.json) as bars:
        result = run_edit(plan, bars)
    stages = ", ".join(f"{k} {v}" for k, v in result.stages.items())
    O.report(args, result.to_dict(), "\n".join(edit_lines(result) + [f"stages: {stages}",
                                                                    f"wrote {args.output} (session {result.session})"]))
    return 0


def edit_lines(result) -> list[str]:
    """One line per edit: the handle distances measured independently (LK on the renders), not the tracker's."""
    lines = []
    for name, h in zip(result.edits, result.history):
        where = ", ".join(f"{d:.1f}" if d is not None else "?" for d in h.measured_distances)
        lost = sum(h.lost)
        lines.append(f"{name}: {h.steps} steps, stopped by {h.stopped_by}; handles {where or '?'} crop px from their "
                     f"targets (measured on the renders)" + (f"; {lost} handle(s) lost by the tracker" if lost else "")
                     + (" (reused: the same request was made before)" if result.reused else ""))
    return lines
