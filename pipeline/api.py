"""Library entry points for photo tools: whole edits, or align + invert as preprocessing."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .align import AlignConfig
from .composite import CompositeConfig
from .edits import EditRequest
from .session import Session


@dataclass
class Preprocessed:
    """What align + invert leave for a photo tool: the pivot and where the tuned generator lives."""

    session: Path
    w: torch.Tensor  # [1, num_ws, w_dim]
    pivot_path: Path
    generator_delta_path: Path  # tuned - base, fp16; needs the base generator below
    base_generator_path: Path
    metrics: dict[str, Any]

    def load_generator(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        from inversion import load_inversion
        from stylegan2 import load_generator

        G, info = load_generator(self.base_generator_path, device=device, with_info=True)
        return load_inversion(self.session / "invert", G, info["sha256"])[1].to(device)


def preprocess(photo: str | os.PathLike, session: str | os.PathLike, generator: str | None = None, pti_config=None,
               align_config: AlignConfig | None = None, device: str | torch.device = "cpu",
               progress: bool = False) -> Preprocessed:
    """Align and invert `photo` into `session` (cached: a second call returns at once)."""
    import json

    with Session(session, progress=progress) as s:
        G, info = s.load_base_generator(generator, device)
        s.align(photo, align_config or AlignConfig(size=G.img_resolution))
        s.invert(generator, pti_config, device)
        w, _ = s.tuned(generator, device)
        inv = Path(session) / "invert"
        return Preprocessed(Path(session), w, inv / "pivot.safetensors", inv / "generator_delta.safetensors",
                            Path(info["path"]), json.loads((inv / "metrics.json").read_text()))


def edit_photo(photo: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike,
               session: str | os.PathLike, generator: str | None = None, pti_config=None, drag_config=None,
               from_spec: str | int | None = None, composite_config: CompositeConfig | None = None,
               device: str | torch.device = "cpu", progress: bool = False, face: int = 0,
               overwrite: bool = False) -> dict[str, Any]:
    """Every stage that is needed, from photo to edited photo; returns what ran and where things are.

    `output` may not be `photo` itself unless `overwrite` (the original is then kept as PHOTO.orig)."""
    from fileio.images import check_writable
    from .originals import guard_original

    check_writable(output)
    if not overwrite:
        guard_original(output, photo)  # the one-line refusal, before any work
    with Session(session, progress=progress) as s:
        G, _ = s.load_base_generator(generator, device)
        s.align(photo, AlignConfig(size=G.img_resolution, face=face))
        s.check_requests(edits)
        s.invert(generator, pti_config, device)
        names = s.drag(edits, drag_config, generator, from_spec, device)
        comp = s.composite(names[-1], output, composite_config, photo_path=photo, overwrite=overwrite)
        return {"session": str(session), "edits": names, "output": str(output), "stages": dict(s.report),
                "history": [h for h in s.history() if f"edits/{h['edit']:03d}" in names],
                "composite": {k: comp.get(k) for k in ("changed_pixels", "bbox", "original_backup")}}
