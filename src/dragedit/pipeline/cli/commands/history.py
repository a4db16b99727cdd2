"""`dragedit history SESSION`: a session's edits (reads only, so it works while another run holds the session)."""
from __future__ import annotations

import argparse

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="list a session's edits")
    p.add_argument("session")
    O.add_json(p)


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.core.errors import NotASession
    from dragedit.pipeline.core.session import Session, is_session_folder

    if not is_session_folder(args.session):
        raise NotASession(f"{args.session} is not a dragedit session")
    with Session(args.session, read_only=True) as s:
        hist = s.history()
    text = "\n".join(f"edit {h.edit:03d} from {h.parent}: drags {h.drags} -> handles "
                     f"{[[round(v, 1) for v in p] for p in (h.final_points or [])]}, {h.steps} steps "
                     f"({h.stopped_by})" for h in hist) or "no edits yet"
    O.report(args, [h.to_dict() for h in hist], text)
    return 0
