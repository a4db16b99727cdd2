"""Stage functions a photo tool can call one at a time; the CLI and sessions use the same ones."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fileio.atomic import write_error
from fileio.errors import UserError
from fileio.images import uint8_to_tensor

from .generators import resolve_generator


def load_target_image(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """The crop to invert: an align output folder's aligned.png, or a square image (resized if needed)."""
    from .align import ALIGNED_NAME
    from .photo import load_photo

    p = Path(path)
    if p.is_dir():
        if not (p / ALIGNED_NAME).is_file():
            raise UserError(f"{p} has no {ALIGNED_NAME}; run `dragedit align PHOTO -o {p}` first")
        p = p / ALIGNED_NAME
    pixels = load_photo(p).pixels
    h, w = pixels.shape[:2]
    if h != w:
        raise UserError(f"{p} is {w}x{h}, not square; align the photo first (`dragedit align`)")
    if h != resolution:
        pixels = np.asarray(Image.fromarray(pixels).resize((resolution, resolution), Image.Resampling.LANCZOS))
    return pixels


def invert_crop(G: torch.nn.Module, info: dict[str, Any], pixels: np.ndarray, out_dir: Path, config,
                device: torch.device | str = "cpu", *, progress: bool = True, warn=None,
                extra: dict[str, Any] | None = None, step_hook=None) -> list[Path]:
    """PTI of an aligned crop into `out_dir` (resuming a checkpoint left there); returns the artifacts written.

    `Session.invert` and `dragedit invert` both run this."""
    from inversion import invert, save_inversion
    from inversion.artifacts import ARTIFACTS

    from .generators import note_if_default

    if pixels.shape[:2] != (G.img_resolution, G.img_resolution):
        raise UserError(f"the crop is {pixels.shape[1]}x{pixels.shape[0]} but the generator makes "
                        f"{G.img_resolution}x{G.img_resolution} images; align with --size {G.img_resolution}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from None
    note_if_default(info["path"])
    target = uint8_to_tensor(pixels, device)
    result = invert(G, target, config, work_dir=out_dir, progress=progress, base_id=info["sha256"], warn=warn,
                    step_hook=step_hook)
    save_inversion(result, out_dir, G, info["sha256"], target, extra={"config": config.to_dict(), **(extra or {})})
    return [out_dir / n for n in ARTIFACTS]


def run_invert_stage(target: str | os.PathLike | np.ndarray, generator: str | None, out_dir: str | os.PathLike,
                     config=None, device: torch.device | str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Align-output (or image) -> PTI artifacts in `out_dir`; resumes a checkpoint left there."""
    import json

    from inversion import PTIConfig
    from inversion.artifacts import METRICS
    from stylegan2 import load_generator

    G, info = load_generator(resolve_generator(generator), device=device, with_info=True)
    pixels = target if isinstance(target, np.ndarray) else load_target_image(target, G.img_resolution)
    cfg = config or PTIConfig()
    out = Path(out_dir)
    invert_crop(G, info, pixels, out, cfg, device, progress=progress,
                extra={"generator": info["path"], "device": str(device)})
    return json.loads((out / METRICS).read_text())
