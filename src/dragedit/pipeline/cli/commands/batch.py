"""`dragedit batch INPUT... --edits F -o OUT`: one edit file over many photos, one resumable session each."""
from __future__ import annotations

import argparse

from .. import options as O


def add_parser(sub) -> None:
    from dragedit.pipeline.batch.photo import BACKENDS, BatchConfig

    def d(name: str):
        return O.default(BatchConfig, name)

    p = sub.add_parser("batch", help="apply an edit file to many photos: one resumable session per photo")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="photos, folders or globs")
    p.add_argument("--edits", required=True, help="JSON edit file; anchored drags (@mouth_left:-4%%,-8%%) fit any face")
    O.add_output(p, "output folder: sessions, edited photos, batch.json/.csv")
    g = p.add_argument_group("batch")
    g.add_argument("--face", help=f"face number (0 = largest) or 'all': one session and output per face (default "
                                  f"{d('face')})")
    g.add_argument("--workers", type=O.whole, help=f"photos at once, each with cores/workers threads (default {d('workers')})")
    g.add_argument("--backend", choices=BACKENDS, help=f"local processes or a Ray cluster (default {d('backend')})")
    g.add_argument("--address", help="Ray cluster address (default: a running or new local instance)")
    g.add_argument("--gpus-per-photo", type=O.number, help=f"Ray: GPUs each photo's task asks for (default "
                                                         f"{d('gpus_per_photo'):g})")
    O.add_paste(p)
    O.add_compute(p)
    O.add_drag(p)
    O.add_pti(p)


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.batch.run import BatchConfig, run_batch
    from dragedit.pipeline.core.requests import load_edit_file

    cfg = BatchConfig(**O.given(workers=args.workers, backend=args.backend, address=args.address,
                                gpus_per_photo=args.gpus_per_photo, face=O.face(args, every=True)))
    settings = O.settings_from(args)
    requests = load_edit_file(args.edits)

    def say(row) -> None:
        if not args.json and row.status != "done":
            from tqdm import tqdm

            tqdm.write(f"{row.status}: {row.photo}" + (f" (face {row.face})" if row.face is not None else "")
                       + f": {row.reason}")

    res = run_batch(args.inputs, requests, args.output, config=cfg, settings=settings, progress=not args.json,
                    on_row=say)
    c = res.counts()
    O.report(args, res.to_dict(), f"{c['done']} done, {c['skipped']} skipped, {c['failed']} failed in "
                                  f"{res.seconds:.0f} s; summary {res.summary_json} and {res.summary_csv}")
    return 1 if c["failed"] else 0
