"""The library's calls for photo tools, each a thin use of the one recipe (`edit.py`): a whole edit, and
alignment + inversion as preprocessing. Options are keyword-only; defaults live in `EditSettings`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dragedit.common.errors import UserError

from . import layout as L
from .edit import EditJob, EditResult, edit
from .progress import ProgressHook, ignore
from .requests import EditRequest, parse_drag
from .session import Session
from .settings import EditSettings


def edit_request(*drags: str, mask: str | os.PathLike | None = None, mask_region: str | None = None,
                 preset: str | None = None, strength: float = 1.0) -> EditRequest:
    """One edit from drag strings, "X1,Y1:X2,Y2" (photo pixels) or "@mouth_left:-4%,-8%" (anchored), or a named
    edit (`preset="smile", strength=0.7`); `mask_region` ("mouth", "eyes", ...) instead of a mask file."""
    if preset is not None:
        if drags or mask:
            raise UserError("a preset comes without drags or a mask file (it has its own)")
        return EditRequest.from_preset(preset, strength, mask_region)
    return EditRequest([parse_drag(d) for d in drags], str(mask) if mask else None, mask_region=mask_region)


def edit_photo(photo: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike,
               session: str | os.PathLike, *, settings: EditSettings | None = None, face: int | None = None,
               face_at: tuple[float, float] | None = None, from_spec: str | int | None = None,
               overwrite: bool = False, on_progress: ProgressHook = ignore) -> EditResult:
    """Every stage that is needed, from photo to edited photo (cached in `session`, resumable).

    `edits` may hold drags anchored on landmarks (`@mouth_left:-4%,-8%`); they resolve on the chosen face
    (`face`, a position in `FACE_ORDER`, or `face_at`, a photo point on it). `output` may not be `photo`
    itself unless `overwrite` (the original is then kept as PHOTO.orig)."""
    job = EditJob(session, requests=list(edits), photo=photo, face=face, face_at=face_at, from_spec=from_spec,
                  output=output, overwrite=overwrite)
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

    @property
    def resolution(self) -> int:
        """The size the generator was tuned at: render with `G.synthesis(w, max_resolution=this)` (PTI's
        `max_resolution` leaves the blocks past it as the base generator's)."""
        if "resolution" in self.metrics:
            return int(self.metrics["resolution"])
        from PIL import Image  # a session inverted before the cap existed: its reconstruction's size

        with Image.open(self.session / L.INVERT_RECON) as img:
            return img.size[0]

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

    edit(EditJob(session, photo=photo, face=face, face_at=face_at, until="invert"), settings, on_progress)
    folder = Path(session)
    with Session(folder, read_only=True) as s:
        generator = s.stages[L.INVERT]["generator_path"]
    return Preprocessed(folder, load_file(str(folder / L.INVERT_PIVOT))["w"], folder / L.INVERT_PIVOT,
                        folder / L.INVERT_DELTA, Path(generator), json.loads((folder / L.INVERT_METRICS).read_text()))


def edit_every_face(photo: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike,
                    sessions: str | os.PathLike, *, settings: EditSettings | None = None,
                    from_spec: str | int | None = None, overwrite: bool = False,
                    on_progress: ProgressHook = ignore) -> list[EditResult]:
    """The edit on every face of the photo, one session each (`SESSIONS_faceN.dragedit`, a session being one
    face for life), and one output holding all of them: each face's composite, pasted where it changed the
    photo (faces apart: where two changes overlap, the later face's wins)."""
    import numpy as np
    from PIL import Image

    from dragedit.common.environment import log
    from dragedit.common.images import check_writable
    from dragedit.pipeline.imaging.faces import find_faces
    from dragedit.pipeline.imaging.photo import load_photo

    from .originals import guard_original
    from .stages.composite import save_edited_photo

    check_writable(output)
    original = load_photo(photo)
    if not overwrite:
        guard_original(output, photo)  # the one-line refusal, before any work
    faces = find_faces(original.pixels)  # no face: a one-line NoFaceError
    base = Path(sessions)
    unedited = original.output_pixels()
    results, merged = [], unedited.copy()
    for i in range(len(faces)):
        folder = base.parent / f"{base.name}_face{i}.dragedit"
        res = edit(EditJob(folder, list(edits), photo, face=i, from_spec=from_spec), settings, on_progress)
        if res.composite is not None and res.composite.edit != "none":
            with Image.open(folder / L.composite_file(res.composite.edit, "edit")) as img:
                edited = np.asarray(img)
            changed = (edited != unedited).any(axis=-1)
            merged[changed] = edited[changed]
        results.append(res)
    save_edited_photo(merged, original, output, overwrite, log.warning)
    return results
