"""The invert stage: PTI of the aligned crop (a W pivot, then tuning of the generator around it).

`invert_crop` is the one PTI path: the session's stage (`run_invert`) and the standalone
`dragedit invert DIR -o OUT` (`invert_folder`, for photo tools that keep their own folders) both run it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dragedit.common.atomic import write_error
from dragedit.common.errors import UserError
from dragedit.common.images import uint8_to_tensor

from dragedit.common.threads import compute_signature

from .. import layout as L
from ..progress import Progress, ProgressHook
from ..runtime import load_base_generator, native_precision, note_if_default, resolve_generator
from ..session import Session
from .align import alignment


def load_target_image(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """The crop to invert: an align output folder's aligned.png, or a square image (resized if needed)."""
    from dragedit.pipeline.imaging.align import ALIGNED_NAME
    from dragedit.pipeline.imaging.photo import load_photo

    p = Path(path)
    if p.is_dir():
        if not (p / ALIGNED_NAME).is_file():
            raise UserError(f"{p} has no {ALIGNED_NAME}; align the photo into it first")
        p = p / ALIGNED_NAME
    pixels = load_photo(p).pixels
    h, w = pixels.shape[:2]
    if h != w:
        raise UserError(f"{p} is {w}x{h}, not square; align the photo first")
    if h != resolution:
        pixels = np.asarray(Image.fromarray(pixels).resize((resolution, resolution), Image.Resampling.LANCZOS))
    return pixels


def invert_crop(G: torch.nn.Module, info: dict[str, Any], pixels: np.ndarray, out_dir: Path, config,
                device: torch.device | str = "cpu", *, progress: bool = True, warn=None,
                extra: dict[str, Any] | None = None, step_hook=None,
                tune_with: list[np.ndarray] | None = None) -> list[Path]:
    """PTI of an aligned crop into `out_dir` (resuming a checkpoint left there); returns the artifacts written.
    `tune_with`: crops of the same face (a clip's sampled frames) the generator is tuned on too."""
    from dragedit.inversion import Companions, invert, save_inversion
    from dragedit.inversion.artifacts import ARTIFACTS

    if pixels.shape[:2] != (G.img_resolution, G.img_resolution):
        raise UserError(f"the crop is {pixels.shape[1]}x{pixels.shape[0]} but the generator makes "
                        f"{G.img_resolution}x{G.img_resolution} images; align it at {G.img_resolution} px")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from None
    note_if_default(info["path"])
    target = uint8_to_tensor(pixels, device)
    companions = None
    if tune_with:
        companions = Companions(tuple(uint8_to_tensor(p, device) for p in tune_with),
                                pivot_steps=config.companion_pivot_steps, weight=config.companion_weight)
    result = invert(G, target, config=config, work_dir=out_dir, progress=progress, base_id=info["sha256"], warn=warn,
                    step_hook=step_hook, companions=companions)
    save_inversion(result, out_dir, G, info["sha256"], target, extra={"config": config.to_dict(), **(extra or {})})
    return [out_dir / n for n in ARTIFACTS]


def invert_folder(target: str | os.PathLike, generator: str | None, out_dir: str | os.PathLike, config=None,
                  device: torch.device | str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Sessionless PTI: an align output folder (or an aligned image) -> PTI artifacts in `out_dir`, for photo
    tools that keep their own folders; resumes a checkpoint left there."""
    import json

    from dragedit.inversion import PTIConfig
    from dragedit.inversion.artifacts import METRICS
    G, info = load_base_generator(resolve_generator(generator), device)
    pixels = load_target_image(target, G.img_resolution)
    device = torch.device(device)
    cfg = native_precision((config or PTIConfig()).for_generator(G.img_resolution), device, "PTI")
    out = Path(out_dir)
    invert_crop(G, info, pixels, out, cfg, device, progress=progress,
                extra={"generator": info["path"], "device": str(device)})
    return json.loads((out / METRICS).read_text())


def run_invert(s: Session, G: torch.nn.Module, info: dict[str, Any], config, device: torch.device,
               on_progress: ProgressHook, tune_with: list[Path] | None = None) -> dict[str, Any]:
    """The session's PTI (cached; resumes its checkpoint after a kill). `tune_with`: aligned crops of the same face
    (a clip's sampled frames) the generator is tuned on beside the session's; they are part of the stage's key."""
    from dragedit.common.hashing import file_sha256

    al_entry = s.stages[L.ALIGN]
    tune_with = list(tune_with or [])
    inputs = {"aligned": al_entry["outputs"][L.ALIGNED], "generator": info["sha256"]}
    params = {**config.result_dict(), "compute": compute_signature(device)}
    if tune_with:  # (left out without them: photo sessions keep their keys)
        inputs["tune_with"] = [file_sha256(p) for p in tune_with]
        params["companions"] = {"pivot_steps": config.companion_pivot_steps, "weight": config.companion_weight}

    def hook(stage: str, step: int) -> None:
        total = config.pivot_steps if stage == "pivot" else config.tune_steps
        on_progress(Progress(f"invert ({stage})", step + 1, total))

    def compute():
        crops = [load_target_image(p, G.img_resolution) for p in tune_with]
        outputs = invert_crop(G, info, alignment(s).crop, s.path(L.INVERT), config, device, progress=False,
                              warn=s.warn, step_hook=hook, tune_with=crops)
        s.models.pop("tuned", None)
        return outputs, {"generator_path": str(info["path"]), **({"tuned_with": len(crops)} if crops else {})}

    return s.cached(L.INVERT, inputs, params, compute)


def image_cap(s: Session, G: torch.nn.Module) -> int | None:
    """The size the session's generator was tuned at, when below its own (renders stop there), else None."""
    import json

    resolution = json.loads(s.path(L.INVERT_METRICS).read_text()).get("resolution", G.img_resolution)
    return None if resolution >= G.img_resolution else int(resolution)


def tuned(s: Session, G: torch.nn.Module, info: dict[str, Any], device: torch.device):
    """(pivot w, tuned generator) of the session's inversion, loaded once per session object."""
    from dragedit.inversion import load_inversion

    if "tuned" not in s.models:
        w, Gt = load_inversion(s.path(L.INVERT), G, info["sha256"])
        s.models["tuned"] = (w.to(device), Gt.to(device))
    return s.models["tuned"]
