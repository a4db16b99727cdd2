"""`dragedit` command line: one subcommand per stage plus model management.

User errors print one line `dragedit: error: ...` and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from .errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from stylegan2 import load_generator

    from .devices import resolve_device
    from .generators import resolve_generator
    from .images import output_format, save_image, tensor_to_uint8

    output_format(args.output)
    device = resolve_device(args.device)
    G = load_generator(resolve_generator(args.generator), device=device)
    z = torch.from_numpy(np.random.RandomState(args.seed).randn(1, G.z_dim)).float().to(device)
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, truncation_psi=args.psi), noise_mode=args.noise_mode)
    save_image(tensor_to_uint8(img), args.output)
    _report(args, {"output": str(args.output), "seed": args.seed, "psi": args.psi}, f"wrote {args.output}")
    return 0


def _cmd_align(args: argparse.Namespace) -> int:
    from .align import AlignConfig, align_photo, write_alignment
    from .photo import load_photo

    photo = load_photo(args.photo)
    al = align_photo(photo, AlignConfig(size=args.size, face=args.face))
    paths = write_alignment(al, args.output)
    faces = "\n".join(f"  face {i}: box {[round(v) for v in f['box']]}{'  <- used' if i == al.face_index else ''}"
                       for i, f in enumerate(al.faces))
    _report(args, {"files": {k: str(v) for k, v in paths.items()}, "faces": al.faces, "face_index": al.face_index,
                   "photo_to_crop": al.photo_to_crop.tolist()},
            f"{len(al.faces)} face(s) found:\n{faces}\nwrote {paths['aligned']} and {paths['alignment']}")
    return 0


def _offline(args: argparse.Namespace) -> bool:
    import os

    return bool(getattr(args, "offline", False) or os.environ.get("DRAGEDIT_OFFLINE"))


def _pti_config(args: argparse.Namespace):
    from inversion import PTIConfig

    return PTIConfig(pivot_steps=args.pivot_steps, tune_steps=args.tune_steps, seed=args.seed,
                     pivot_space="w+" if args.w_plus else "w", locality=args.locality,
                     checkpoint_every=args.checkpoint_every, allow_download=not _offline(args))


def _cmd_invert(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .stages import load_target_image, run_invert_stage

    device = resolve_device(args.device)
    metrics = run_invert_stage(args.input, args.generator, args.output, _pti_config(args), device,
                               progress=not args.json)
    t, p = metrics["tuned"], metrics["pivot"]
    _report(args, metrics, f"pivot PSNR {p['psnr']:.2f} dB, tuned PSNR {t['psnr']:.2f} dB "
                           f"(losses: {metrics['losses_used']['pivot']}, {metrics['losses_used']['tune']}); "
                           f"wrote {args.output}")
    return 0


def _add_pti_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--pivot-steps", type=int, default=450)
    sp.add_argument("--tune-steps", type=int, default=350)
    sp.add_argument("--w-plus", action="store_true", help="W+ pivot instead of PTI's W pivot")
    sp.add_argument("--locality", action="store_true", help="PTI's locality regulariser")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--checkpoint-every", type=int, default=25)
    sp.add_argument("--offline", action="store_true", help="never download LPIPS weights (also: DRAGEDIT_OFFLINE=1)")


def _cmd_models(args: argparse.Namespace) -> int:
    from stylegan2 import zoo

    try:
        reg = zoo.load_registry(args.registry)
        cache = Path(args.cache_dir) if args.cache_dir else None
        if args.models_cmd == "list":
            rows = []
            for e in reg.values():
                p = zoo.model_path(e, cache)
                rows.append({"name": e.name, "resolution": e.resolution, "downloaded": p.exists(), "path": str(p),
                             "url": e.url, "sha256": e.sha256, "description": e.description})
            text = "\n".join(f"{r['name']:<26} {r['resolution']:>5}px  {'downloaded' if r['downloaded'] else '-':<10}"
                             f"  {r['description']}" for r in rows)
            _report(args, rows, text)
            return 0
        if args.name not in reg:
            raise UserError(f"unknown model {args.name!r}; `dragedit models list` shows the known ones")
        entry = reg[args.name]
        if args.models_cmd == "path":
            _report(args, {"name": entry.name, "path": str(zoo.model_path(entry, cache))}, str(zoo.model_path(entry, cache)))
            return 0
        path = zoo.download(entry, cache, sha256=args.sha256, progress=not args.json)
        _report(args, {"name": entry.name, "path": str(path)}, f"{entry.name}: {path}")
        return 0
    except zoo.DownloadError as exc:
        raise UserError(str(exc)) from None


def _report(args: argparse.Namespace, payload, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2))
    else:
        print(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dragedit", description="Edit portrait photos by dragging points (DragGAN + PTI).")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="render one image from a generator")
    g.add_argument("--generator", help="checkpoint (.pkl, state_dict .pt, .safetensors); default: the embedded one")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--psi", type=float, default=0.7, help="truncation psi")
    g.add_argument("--noise-mode", default="const", choices=["const", "none", "random"])
    g.add_argument("--device", default="auto")
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_cmd_generate)

    a = sub.add_parser("align", help="find the face and write its FFHQ-aligned crop and transform")
    a.add_argument("photo")
    a.add_argument("-o", "--output", required=True, help="output folder")
    a.add_argument("--size", type=int, default=512, help="crop size = the generator's resolution")
    a.add_argument("--face", type=int, default=0, help="which face, by size (0 = largest)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_cmd_align)

    i = sub.add_parser("invert", help="PTI: W pivot + generator tuning for an aligned crop (resumable)")
    i.add_argument("input", help="an align output folder or a square image at the generator's resolution")
    i.add_argument("--generator", help="checkpoint (.pkl, .pt, .safetensors); default: the embedded one")
    i.add_argument("-o", "--output", required=True, help="output folder (holds the checkpoint while running)")
    i.add_argument("--device", default="auto")
    i.add_argument("--json", action="store_true")
    _add_pti_args(i)
    i.set_defaults(func=_cmd_invert)

    m = sub.add_parser("models", help="list or download known public checkpoints")
    m.add_argument("--registry", help="JSON file adding or overriding entries (mirrors, known hashes)")
    m.add_argument("--cache-dir", help="where models live (default: $DRAGEDIT_HOME/models or ~/.cache/dragedit/models)")
    m.add_argument("--json", action="store_true")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    msub.add_parser("list")
    for name in ("download", "path"):
        sp = msub.add_parser(name)
        sp.add_argument("name")
        if name == "download":
            sp.add_argument("--sha256", help="expected SHA-256 of the file")
    m.set_defaults(func=_cmd_models, sha256=None)
    return p


def main(argv: list[str] | None = None) -> int:
    from stylegan2 import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, CheckpointError) as exc:
        print(f"dragedit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dragedit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
