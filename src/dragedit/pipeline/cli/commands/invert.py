"""`dragedit invert`: PTI (a W pivot, then tuning of the generator), in a session (`--session`) or from a plain
align folder or square crop to a plain output folder (`INPUT -o DIR`). Both resume after a kill."""
from __future__ import annotations

import argparse

from dragedit.common.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("invert", help="PTI: W pivot + generator tuning (resumable)")
    p.add_argument("input", nargs="?", help="with -o: an align output folder or a square image at the "
                                            "generator's resolution")
    where = p.add_argument_group("where (one of)")
    where.add_argument("--session", help="a session folder: its photo is aligned (if needed) and inverted")
    where.add_argument("-o", "--output", help="a plain output folder (holds the checkpoint while running)")
    O.add_json(p)
    O.add_compute(p)
    O.add_pti(p)


def run(args: argparse.Namespace) -> int:
    from ..progress import Bars

    if (args.session is None) == (args.output is None) or (args.output is not None) != (args.input is not None):
        raise UserError("give either --session DIR, or INPUT -o DIR")
    settings = O.settings_from(args)
    if args.session:
        from dragedit.pipeline.core.edit import EditJob, check_edit, run_edit

        plan = check_edit(EditJob(args.session, until="invert"), settings)
        with Bars(not args.json) as bars:
            res = run_edit(plan, bars)
        O.report(args, res.to_dict(), f"inverted session {args.session} "
                                      f"({', '.join(f'{k} {v}' for k, v in res.stages.items())})")
        return 0
    from dragedit.common.threads import fair_share_threads, use_threads
    from dragedit.pipeline.core.runtime import resolve_device
    from dragedit.pipeline.core.stages.invert import invert_folder

    from dragedit.inversion.pti import checkpoint_threads

    use_threads(settings.threads or checkpoint_threads(args.output) or fair_share_threads())  # a resume: its count
    metrics = invert_folder(args.input, settings.generator, args.output, settings.with_pti_of(None).pti,
                               resolve_device(settings.device), progress=not args.json)
    t, p = metrics["tuned"], metrics["pivot"]
    O.report(args, metrics, f"pivot PSNR {p['psnr']:.2f} dB, tuned PSNR {t['psnr']:.2f} dB "
                            f"(losses: {metrics['losses_used']['pivot']}, {metrics['losses_used']['tune']}); "
                            f"wrote {args.output}")
    return 0
