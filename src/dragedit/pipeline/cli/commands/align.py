"""`dragedit align PHOTO`: the face's FFHQ crop and transform, into a session (`--session`) or a plain folder
(`-o`, for photo tools that keep their own files)."""
from __future__ import annotations

import argparse

from dragedit.common.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("align", help="find the face and write its FFHQ-aligned crop and transform")
    p.add_argument("photo")
    where = p.add_argument_group("where (one of)")
    where.add_argument("--session", help="a session folder: the session's align stage (then `dragedit invert "
                                         "--session`, `dragedit drag`)")
    where.add_argument("-o", "--output", help="a plain output folder: aligned.png, alignment.json, inside_mask.png")
    from dragedit.pipeline.imaging.align import AlignConfig

    p.add_argument("--size", type=O.whole, help="crop size, = the generator's resolution (with -o; default "
                                            f"{O.default(AlignConfig, 'size')}; a session takes its generator's)")
    O.add_face(p)
    O.add_compute(p)
    O.add_json(p)


def run(args: argparse.Namespace) -> int:
    if (args.session is None) == (args.output is None):
        raise UserError("give either --session DIR (a session's align stage) or -o DIR (a plain folder)")
    if args.session:
        if args.size is not None:
            raise UserError("--size goes with -o; a session's crop size is its generator's resolution")
        from dragedit.pipeline.core.edit import EditJob, edit

        res = edit(EditJob(args.session, photo=args.photo, face=O.face(args), face_at=O.face_at(args.face_at),
                           until="align"), O.settings_from(args))
        O.report(args, res.to_dict(), f"aligned into session {args.session} ({', '.join(f'{k} {v}' for k, v in res.stages.items())})")
        return 0
    if args.generator or args.device or args.threads:
        raise UserError("--generator, --device and --threads go with --session; with -o give --size")
    from dragedit.pipeline.imaging.align import AlignConfig, align_photo, write_alignment
    from dragedit.pipeline.imaging.photo import load_photo

    photo = load_photo(args.photo)
    al = align_photo(photo, AlignConfig(**O.given(size=args.size, face=O.face(args), face_at=O.face_at(args.face_at))))
    paths = write_alignment(al, args.output)
    faces = "\n".join(f"  face {i}: box {[round(v) for v in f['box']]}{'  <- used' if i == al.face_index else ''}"
                      for i, f in enumerate(al.faces))
    O.report(args, {"files": {k: str(v) for k, v in paths.items()}, "faces": al.faces, "face_index": al.face_index,
                    "photo_to_crop": al.photo_to_crop.tolist()},
             f"{len(al.faces)} face(s) found:\n{faces}\nwrote {paths['aligned']} and {paths['alignment']}")
    return 0
