"""`dragedit drag SESSION`: more edits on a session's photo and face (inverting first if it has not yet)."""
from __future__ import annotations

import argparse

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("drag", help="add drag edit(s) to a session")
    p.add_argument("session")
    O.add_json(p)
    O.add_points(p)
    O.add_compute(p, "checkpoint; default: the session's")
    O.add_drag(p)
    O.add_pti(p)


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.core.edit import EditJob, check_edit, run_edit

    from ..progress import Bars
    from .edit import edit_lines

    job = EditJob(args.session, requests=O.requests_from(args), from_spec=args.from_spec, until="drag")
    plan = check_edit(job, O.settings_from(args))
    with Bars(not args.json) as bars:
        result = run_edit(plan, bars)
    O.report(args, {"edits": result.edits, "reused": result.reused, "history": [h.to_dict() for h in result.history]},
             "\n".join(edit_lines(result)))
    return 0
