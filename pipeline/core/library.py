"""The library's calls for photo tools, each a thin use of the one recipe (`edit.py`): a whole edit, and
alignment + inversion as preprocessing. Options are keyword-only; defaults live in `EditSettings`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout as L
from .edit import EditJob, EditResult, edit
from .progress import ProgressHook, ignore
from .requests import EditRequest, parse_drag
from .session import Session
from .settings import EditSettings


def edit_request(*drags: str, mask: str | os.PathLike | None = None) -> EditRequest:
    """One edit from drag strings: "X1,Y1:X2,Y2" (photo pixels) or "@mouth_left:-4%,-8%" (anchored)."""
    return EditRequest([parse_drag(d) for d in drags], str(mask) if mask else None)


def edit_photo(photo: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike,
               session: str | os.PathLike, *, settings: EditSettings | None = None, face: int | None = None,
               face_at: tuple[float, float] | None = None, from_spec: str | int | None = None,
               overwrite: bool = False, on_progress: ProgressHook = ignore) -> EditResult:
    """Every stage that is needed, from photo to edited photo (cached in `session`, resumable).

    `edits` may hold drags anchored on landmarks (`@mouth_left:-4%,-8%`); they resolve on the chosen face
    (`face`, a position in `FACE_ORDER`, or `face_at`, a photo point on it). `output` may not be `photo`
    itself unless `overwrite` (the original is then kept as PHOTO.orig)."""
    job = EditJob(session, list(edits), photo, face, face_at, from_spec, "composite", output, overwrite=overwrite)
    return edit(job, settings, on_progress)


@dataclass
class Preprocessed:
    """What align + invert leave for a photo tool: the pivot and where the tuned generator lives."""

    session: Path
    w: Any  # torch.Tensor [1, num_ws, w_dim]
    pivot_path: Path
    generator_delta_path: Path  # tuned - base, fp16; needs the base generator below
    base_generator_path: Path
    metrics: dict[str, Any]

    def load_generator(self, device: str = "cpu") -> Any:
        """The PTI-tuned generator (base checkpoint + delta), as the session's own stages load it."""
        from dragedit.inversion import load_inversion
        from dragedit.stylegan2 import load_generator

        G, info = load_generator(self.base_generator_path, device=device, with_info=True)
        return load_inversion(self.session / L.INVERT, G, info["sha256"])[1]


def preprocess(photo: str | os.PathLike, session: str | os.PathLike, *, settings: EditSettings | None = None,
               face: int | None = None, face_at: tuple[float, float] | None = None,
               on_progress: ProgressHook = ignore) -> Preprocessed:
    """Align and invert `photo` into `session` (cached: a second call returns at once)."""
    from safetensors.torch import load_file

    edit(EditJob(session, [], photo, face, face_at, until="invert"), settings, on_progress)
    folder = Path(session)
    with Session(folder, read_only=True) as s:
        generator = s.stages[L.INVERT]["generator_path"]
    return Preprocessed(folder, load_file(str(folder / L.INVERT_PIVOT))["w"], folder / L.INVERT_PIVOT,
                        folder / L.INVERT_DELTA, Path(generator), json.loads((folder / L.INVERT_METRICS).read_text()))
