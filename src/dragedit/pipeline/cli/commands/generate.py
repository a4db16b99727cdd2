"""`dragedit generate`: one image sampled from a generator (to check a checkpoint)."""
from __future__ import annotations

import argparse
import math

from dragedit.common.errors import UserError

from .. import options as O


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="render one image from a generator")
    p.add_argument("--seed", type=int, default=0, help="the sampling seed (default 0)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation psi (default 0.7; 1 = no truncation)")
    p.add_argument("--noise-mode", default="const", choices=["const", "none", "random"])
    O.add_output(p, "the image to write")
    O.add_compute(p, "checkpoint (.pkl, .pt, .safetensors); default: the embedded one")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from dragedit.common.images import check_writable, save_image, tensor_to_uint8
    from dragedit.common.threads import fair_share_threads, use_threads
    from dragedit.pipeline.core.runtime import load_base_generator, note_if_default, resolve_device, resolve_generator

    check_writable(args.output)
    if not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed {args.seed} is out of range; use a whole number from 0 to {2 ** 32 - 1}")
    if not math.isfinite(args.psi):
        raise UserError(f"--psi {args.psi} is not a finite number; use a value such as 0.7 (1 = no truncation)")
    settings = O.settings_from(args)
    use_threads(settings.threads or fair_share_threads())
    device = resolve_device(settings.device)
    path = resolve_generator(settings.generator)
    G, _ = load_base_generator(path, device)
    note_if_default(path)
    z = torch.from_numpy(np.random.RandomState(args.seed).randn(1, G.z_dim)).float().to(device)
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, truncation_psi=args.psi), noise_mode=args.noise_mode)
    save_image(tensor_to_uint8(img), args.output)
    O.report(args, {"output": str(args.output), "seed": args.seed, "psi": args.psi}, f"wrote {args.output}")
    return 0
