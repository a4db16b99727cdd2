"""The align stage: the chosen face's FFHQ crop and the exact photo <-> crop transform, in the session."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from dragedit.pipeline.imaging.align import AlignConfig, Alignment, align_photo, read_alignment, write_alignment
from dragedit.pipeline.imaging.photo import Photo

from .. import layout as L
from ..session import Session


def face_spec(face: int | None, face_at: tuple[float, float] | None) -> dict[str, Any]:
    """How the face was asked for, as the align stage's parameters record it."""
    return {"face_at": [float(v) for v in face_at]} if face_at is not None else {"face": face or 0}


def run_align(s: Session, photo: Photo, photo_sha: str, config: AlignConfig) -> Alignment:
    """Align `photo` (cached) and record the session's identity (its photo and face) the first time."""

    def compute():
        paths = write_alignment(align_photo(photo, config), s.path(L.ALIGN))
        return list(paths.values()), {"photo_path": str(Path(photo.path).resolve())}

    s.cached(L.ALIGN, {"photo": photo_sha}, config.to_dict(), compute)
    al = alignment(s)
    if s.manifest.data.get("identity") is None:
        s.record_identity(photo_sha, Path(photo.path), al.face_index,
                          face_spec(config.face, config.face_at))
    return al


def alignment(s: Session) -> Alignment:
    if "alignment" not in s.models:
        s.models["alignment"] = read_alignment(s.path(L.ALIGN))
    return s.models["alignment"]


def align_config(base: AlignConfig, size: int, face: int | None, face_at: tuple[float, float] | None) -> AlignConfig:
    return replace(base, size=size, face=face or 0, face_at=face_at)
