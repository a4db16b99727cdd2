"""Library entry points for photo tools: whole edits, align + invert as preprocessing, and batches.

They return dataclasses (`EditResult`, `Preprocessed`, `BatchResult`); options are keyword-only, and every
default lives in the config dataclasses (`AlignConfig`, `PTIConfig`, `DragConfig`, `CompositeConfig`,
`BatchConfig`). Drags may be anchored on the face: `edit_request("@mouth_left:-4%,-8%")`.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .align import AlignConfig
from .composite import CompositeConfig
from .edit_record import HistoryEntry
from .batch import BatchConfig, BatchResult, PhotoRow, run_batch
from .edits import EditRequest, parse_drag

__all__ = ["BatchConfig", "BatchResult", "EditRequest", "EditResult", "PhotoRow", "Preprocessed", "edit_photo",
           "edit_request", "preprocess", "run_batch"]
from .session import CompositeResult, Session


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
        """The PTI-tuned generator (base checkpoint + delta), as the session's own stages load it."""
        with Session(self.session, generator=self.base_generator_path, device=device, read_only=True) as s:
            return s.tuned()[1]


@dataclass
class EditResult:
    """What `edit_photo` did: the edits it made or reused, each stage's fate, and the output."""

    session: str
    edits: list[str]
    output: str
    stages: dict[str, str]  # stage -> 'computed' | 'reused'
    history: list[HistoryEntry]
    composite: CompositeResult

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "edits": self.edits, "output": self.output, "stages": self.stages,
                "history": [h.to_dict() for h in self.history], "composite": self.composite.to_dict()}


def edit_request(*drags: str, mask: str | os.PathLike | None = None) -> EditRequest:
    """One edit from `--drag` strings: "X1,Y1:X2,Y2" (photo pixels) or "@mouth_left:-4%,-8%" (anchored)."""
    return EditRequest([parse_drag(d) for d in drags], str(mask) if mask else None)


def preprocess(photo: str | os.PathLike, session: str | os.PathLike, *, generator: str | os.PathLike | None = None,
               pti_config=None, align_config: AlignConfig | None = None, device: str | torch.device = "cpu",
               progress: bool = False) -> Preprocessed:
    """Align and invert `photo` into `session` (cached: a second call returns at once)."""
    from . import layout as L

    with Session(session, generator=generator, device=device, progress=progress) as s:
        G, info = s.load_base_generator()
        s.align(photo, align_config or AlignConfig(size=G.img_resolution))
        s.invert(config=pti_config)
        w, _ = s.tuned()
        folder = Path(session)
        return Preprocessed(folder, w, folder / L.INVERT_PIVOT, folder / L.INVERT_DELTA, Path(info["path"]),
                            json.loads((folder / L.INVERT_METRICS).read_text()))


def edit_photo(photo: str | os.PathLike, edits: list[EditRequest], output: str | os.PathLike,
               session: str | os.PathLike, *, generator: str | os.PathLike | None = None, pti_config=None,
               drag_config=None, from_spec: str | int | None = None, composite_config: CompositeConfig | None = None,
               device: str | torch.device = "cpu", progress: bool = False, face: int = 0,
               face_at: tuple[float, float] | None = None, overwrite: bool = False,
               seconds: dict[str, float] | None = None) -> EditResult:
    """Every stage that is needed, from photo to edited photo, in order.

    `edits` may hold drags anchored on landmarks (`@mouth_left:-4%,-8%`); they resolve on the chosen face
    (`face`, a position in `align.FACE_ORDER`, or `face_at`, a photo point on it). `output` may not be
    `photo` itself unless `overwrite` (the original is then kept as PHOTO.orig). `seconds`, when given,
    receives each stage's wall time."""
    from fileio.images import check_writable

    from .originals import guard_original

    check_writable(output)
    if not overwrite:
        guard_original(output, photo)  # the one-line refusal, before any work
    timer = _StageTimer(seconds if seconds is not None else {})
    with Session(session, generator=generator, device=device, progress=progress) as s:
        with timer("load"):
            G, _ = s.load_base_generator()  # 1. which generator (its resolution sets the crop)
        with timer("align"):
            s.align(photo, AlignConfig(size=G.img_resolution, face=face, face_at=face_at))  # 2. face -> crop
        s.check_requests(edits)  # 3. points and masks fit the face, before any long work
        with timer("invert"):
            s.invert(config=pti_config)  # 4. PTI
        with timer("drag"):
            names = s.drag(edits, config=drag_config, from_spec=from_spec)  # 5. the drags
        with timer("composite"):
            comp = s.composite(names[-1], output, config=composite_config, photo_path=photo, overwrite=overwrite)
        return EditResult(str(session), names, str(output), dict(s.report), s.history(names), comp)


class _StageTimer:
    """`with timer("stage"):` adds the block's wall time to `seconds["stage"]`."""

    def __init__(self, seconds: dict[str, float]):
        self.seconds = seconds

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - t0, 3)
