"""`dragedit models list|download|path`: known public checkpoints and where they live."""
from __future__ import annotations

import argparse
from pathlib import Path

from dragedit.fileio.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list or download known public checkpoints")
    p.add_argument("--registry", help="JSON file adding or overriding entries (mirrors, known hashes)")
    p.add_argument("--cache-dir", help="where models live (default: $DRAGEDIT_HOME/models or "
                                       "~/.cache/dragedit/models)")
    O.add_json(p)
    msub = p.add_subparsers(dest="models_cmd", required=True)
    msub.add_parser("list")
    msub.add_parser("path").add_argument("name")
    d = msub.add_parser("download")
    d.add_argument("name")
    d.add_argument("--sha256", help="expected SHA-256 of the file")
    p.set_defaults(sha256=None)


def run(args: argparse.Namespace) -> int:
    from dragedit.stylegan2 import zoo

    try:
        reg = zoo.load_registry(args.registry)
        cache = Path(args.cache_dir) if args.cache_dir else None
        if args.models_cmd == "list":
            rows = [{"name": e.name, "resolution": e.resolution, "downloaded": zoo.model_path(e, cache).exists(),
                     "path": str(zoo.model_path(e, cache)), "url": e.url, "sha256": e.sha256,
                     "description": e.description} for e in reg.values()]
            O.report(args, rows, "\n".join(f"{r['name']:<26} {r['resolution']:>5}px  "
                                           f"{'downloaded' if r['downloaded'] else '-':<10}  {r['description']}"
                                           for r in rows))
            return 0
        if args.name not in reg:
            raise UserError(f"unknown model {args.name!r}; `dragedit models list` shows the known ones")
        entry = reg[args.name]
        if args.models_cmd == "path":
            path = zoo.model_path(entry, cache)
            O.report(args, {"name": entry.name, "path": str(path)}, str(path))
            return 0
        path = zoo.download(entry, cache, sha256=args.sha256, progress=not args.json)
        O.report(args, {"name": entry.name, "path": str(path)}, f"{entry.name}: {path}")
        return 0
    except zoo.DownloadError as exc:
        raise UserError(str(exc)) from None
