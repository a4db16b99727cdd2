"""`dragedit models list|download|path`: known public checkpoints and where they live."""
from __future__ import annotations

import argparse
from pathlib import Path

from dragedit.common.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list or download known public checkpoints")
    p.add_argument("--registry", help="JSON file adding or overriding entries (mirrors, known hashes)")
    p.add_argument("--cache-dir", help="where models live (default: $DRAGEDIT_HOME/models or "
                                       "~/.cache/dragedit/models)")
    O.add_json(p)
    msub = p.add_subparsers(dest="models_cmd", required=True)
    lst = msub.add_parser("list")
    path = msub.add_parser("path")
    path.add_argument("name")
    d = msub.add_parser("download", help="a checkpoint by name, or 'lpips': PTI's perceptual-loss weights")
    d.add_argument("name")
    d.add_argument("--sha256", help="expected SHA-256 of the file")
    for each in (lst, path, d):  # `models list --json` as well as `models --json list`, as every other command
        each.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
    p.set_defaults(sha256=None)


def run(args: argparse.Namespace) -> int:
    from dragedit.stylegan2 import zoo

    if args.models_cmd == "download" and args.name == "lpips":
        return _lpips(args)
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


def _lpips(args: argparse.Namespace) -> int:
    """Fetch LPIPS's backbones (torchvision's VGG16 and AlexNet weights) into the torch hub cache now."""
    import torch

    from dragedit.inversion.losses import BACKBONE_FILES, backbone_cached, fetch_failed_marker, fetch_lpips

    fetch_failed_marker().unlink(missing_ok=True)
    for net in BACKBONE_FILES:
        if not backbone_cached(net):
            try:
                fetch_lpips(net)
            except Exception as exc:  # noqa: BLE001 - every failed download is the same one line to the user
                raise UserError(f"could not fetch the LPIPS {net} weights ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}); check the network") from None
    where = Path(torch.hub.get_dir()) / "checkpoints"
    O.report(args, {"name": "lpips", "path": str(where)}, f"lpips: {where}")
    return 0
