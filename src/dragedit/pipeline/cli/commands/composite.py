"""`dragedit composite SESSION -o OUT`: a session's edit pasted into the full-resolution photo."""
from __future__ import annotations

import argparse

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("composite", help="paste a session's edit into the full-resolution photo")
    p.add_argument("session")
    O.add_output(p, "the edited photo", overwrite=True)
    p.add_argument("--edit", help="edit number (default: the latest)")
    p.add_argument("--photo", help="the original photo, if it moved since the session was made")
    O.add_paste(p)


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.core.edit import EditJob, edit

    job = EditJob(args.session, photo=args.photo, output=args.output, composite_edit=args.edit or "latest",
                  overwrite=args.overwrite)
    res = edit(job, O.settings_from(args)).composite
    O.report(args, res.to_dict(), f"wrote {args.output} ({res.edit})")
    return 0
