"""`dragedit generate`: one image sampled from a generator (to check a checkpoint)."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from dragedit.common.errors import FieldError, UserError

from .. import options as O

NOISE_MODES = ("const", "none", "random")


@dataclass
class GenerateConfig:
    """One sample from a generator: its seed, truncation and noise."""

    seed: int = 0
    psi: float = 0.7  # truncation psi; 1 = no truncation
    noise_mode: str = "const"

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2 ** 32:
            raise FieldError("seed", self.seed, f"out of range; use a whole number from 0 to {2 ** 32 - 1}")
        if not math.isfinite(self.psi):
            raise FieldError("psi", self.psi, "not a finite number; use a value such as 0.7 (1 = no truncation)")
        if self.noise_mode not in NOISE_MODES:
            raise FieldError("noise_mode", self.noise_mode, f"use one of {', '.join(NOISE_MODES)}")


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="render one image from a generator")
    p.add_argument("--seed", type=O.whole, help=f"the sampling seed (default {O.default(GenerateConfig, 'seed')})")
    p.add_argument("--psi", type=O.number, help=f"truncation psi (default {O.default(GenerateConfig, 'psi')}; 1 = no "
                                             "truncation)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, help=f"default {O.default(GenerateConfig, 'noise_mode')}")
    O.add_output(p, "the image to write")
    O.add_compute(p, "checkpoint (.pkl, .pt, .safetensors); default: the embedded one")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from dragedit.common.images import check_writable, save_image, tensor_to_uint8
    from dragedit.common.threads import fair_share_threads, use_threads
    from dragedit.pipeline.core.runtime import load_base_generator, note_if_default, resolve_device, resolve_generator

    check_writable(args.output)
    try:  # here --seed is the sampling seed (elsewhere `seed` is PTI's, --pti-seed)
        cfg = GenerateConfig(**O.given(seed=args.seed, psi=args.psi, noise_mode=args.noise_mode))
    except FieldError as exc:
        raise UserError(exc.worded("--" + exc.field.replace("_", "-"))) from None
    settings = O.settings_from(args)
    use_threads(settings.threads or fair_share_threads())
    device = resolve_device(settings.device)
    path = resolve_generator(settings.generator)
    G, _ = load_base_generator(path, device)
    note_if_default(path)
    z = torch.from_numpy(np.random.RandomState(cfg.seed).randn(1, G.z_dim)).float().to(device)
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, truncation_psi=cfg.psi), noise_mode=cfg.noise_mode)
    save_image(tensor_to_uint8(img), args.output)
    O.report(args, {"output": str(args.output), "seed": cfg.seed, "psi": cfg.psi}, f"wrote {args.output}")
    return 0
