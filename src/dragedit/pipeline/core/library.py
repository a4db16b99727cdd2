"""The library's calls for photo tools, each a thin use of the one recipe (`edit.py`): a whole edit, and
alignment + inversion as preprocessing. Options are keyword-only; defaults live in `EditSettings`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from . import layout as L
from .edit import EditJob, EditResult, edit
from .progress import ProgressHook, ignore
from .requests import EditRequest, request_list
from .session import Session
from .settings import EditSettings


def edit_request(*drags: str, mask: str | os.PathLike | None = None, mask_region: str | None = None,
                 preset: str | None = None, strength: float = 1.0) -> EditRequest:
    """One edit from drag strings, "X1,Y1:X2,Y2" (photo pixels) or "@mouth_left:-4%,-8%" (anchored), or a named
    edit (`preset="smile", strength=0.7`); `mask_region` ("mouth", "eyes", ...) instead of a mask file."""
    return EditRequest.build(drags=list(drags) or None, mask=mask, mask_region=mask_region, preset=preset,
                             strength=None if preset is None and strength == 1.0 else strength)


def edit_photo(photo: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike,
               session: str | os.PathLike, *, settings: EditSettings | None = None, face: int | None = None,
               face_at: tuple[float, float] | None = None, from_spec: str | int | None = None,
               overwrite: bool = False, on_progress: ProgressHook = ignore) -> EditResult:
    """Every stage that is needed, from photo to edited photo (cached in `session`, resumable).

    `edits` may hold drags anchored on landmarks (`@mouth_left:-4%,-8%`); they resolve on the chosen face
    (`face`, a position in `FACE_ORDER`, or `face_at`, a photo point on it). `output` may not be `photo`
    itself unless `overwrite` (the original is then kept as PHOTO.orig)."""
    job = EditJob(session, requests=edits, photo=photo, face=face, face_at=face_at, from_spec=from_spec,
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


@dataclass
class FaceEdit:
    """One face's part of an every-face edit: its index, session and output (None: only merged), and result."""

    face: int
    session: Path
    output: Path | None
    result: EditResult


def edit_every_face(photo: str | os.PathLike, edits: list[EditRequest], sessions: Callable[[int], Path], *,
                    output: str | os.PathLike | None = None, face_outputs: Callable[[int], Path] | None = None,
                    settings: EditSettings | None = None, from_spec: str | int | None = None,
                    overwrite: bool = False, on_progress: ProgressHook = ignore) -> list[FaceEdit]:
    """The edit on every face of the photo, one session each (`sessions(i)`; a session is one face for life):
    written as one photo holding all of them (`output`: each face's composite pasted where it changed the
    photo; where two overlap, the later face's wins), and/or one photo per face (`face_outputs(i)`).

    Nothing is half done: every face is checked, then aligned and its points checked against its crop, before
    any face is inverted or dragged, so a request that fails on one face commits no edit on another. Drags in
    photo pixels fit one face, so on a photo of several faces they are refused: use anchored drags or a preset."""
    from dragedit.common.images import check_writable
    from dragedit.pipeline.imaging.anchors import AnchoredDrag
    from dragedit.pipeline.imaging.faces import find_faces
    from dragedit.pipeline.imaging.photo import load_photo

    from .edit import check_edit, run_edit
    from .errors import RequestError
    from .originals import guard_original

    edits = request_list(edits)
    if output is None and face_outputs is None:
        raise RequestError("output", None, "give the merged output, per-face outputs, or both")
    original = load_photo(photo)
    if output is not None:
        check_writable(output)
        if not overwrite:
            guard_original(output, photo)  # the one-line refusal, before any work
    faces = find_faces(original.pixels)  # no face: a one-line NoFaceError
    if len(faces) > 1 and any(not isinstance(d, AnchoredDrag) for r in edits for d in r.drags):
        raise RequestError("drags", None, f"points in photo pixels fit one face, and this photo has {len(faces)}; "
                           "for every face use anchored drags (@mouth_left:-4%,-8%) or a preset")
    jobs = [EditJob(sessions(i), requests=list(edits), photo=photo, face=i, from_spec=from_spec,
                    output=face_outputs(i) if face_outputs else None, overwrite=overwrite) for i in range(len(faces))]
    noop = not any(r.moves for r in edits)
    if noop:  # nothing moves (strength 0): every output is the photo itself, as for one face
        jobs = [replace(j, output=j.output or output) for j in jobs]
    plans = [check_edit(j, settings) for j in jobs]  # 1. every face's checks
    if not noop:
        for j in jobs:  # 2. every face aligned (cached) and its points checked against its crop
            run_edit(check_edit(replace(j, until="align", output=None), settings), on_progress)
    done = [FaceEdit(i, Path(j.session), Path(j.output) if j.output else None, run_edit(p, on_progress))
            for i, (j, p) in enumerate(zip(jobs, plans))]  # 3. the work
    if output is not None and not noop:
        _merge(original, done, output, overwrite)
    return done


def _merge(original: Any, done: list[FaceEdit], output: str | os.PathLike, overwrite: bool) -> None:
    import numpy as np
    from PIL import Image

    from dragedit.common.environment import log

    from .stages.composite import save_edited_photo

    unedited = original.output_pixels()
    merged = unedited.copy()
    for fe in done:
        with Session(fe.session, read_only=True) as s:
            made = s.composite_photo(fe.result.composite.edit) if fe.result.composite else None
        if made is None:
            continue
        with Image.open(made) as img:
            edited = np.asarray(img)
        changed = (edited != unedited).any(axis=-1)
        merged[changed] = edited[changed]
    save_edited_photo(merged, original, output, overwrite, log.warning)
