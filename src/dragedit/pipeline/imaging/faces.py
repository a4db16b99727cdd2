"""Faces in a photo: dlib's frontal detector (boxes, in one documented order) and its 68 landmarks.

The dlib models ship in the `face_recognition_models` package. `align.py` crops one of these faces the FFHQ way.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dragedit.common.errors import FieldError, UserError

FACE_ORDER = "largest box area on the full-resolution photo first, equal areas left to right"


def landmark_model_path() -> Path:
    """The 68-point model inside the face_recognition_models package."""
    return face_model_path("shape_predictor_68_face_landmarks.dat")


def face_model_path(filename: str) -> Path:
    """A dlib model file shipped in face_recognition_models, found without importing the package (its
    import needs pkg_resources, which current setuptools no longer provides)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the face_recognition_models package is missing; pip install face_recognition_models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise UserError(f"dlib model {filename} not found at {path}; reinstall face_recognition_models")
    return path


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


def detect_faces(pixels: np.ndarray, detect_max_side: int = 1600, min_score: float = 0.3) -> list[dict[str, Any]]:
    """All frontal faces in `FACE_ORDER`, boxes in full-resolution photo pixels."""
    detector, _ = _dlib_models()
    h, w = pixels.shape[:2]
    scale = min(1.0, detect_max_side / max(h, w))
    small = pixels if scale == 1.0 else cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                   interpolation=cv2.INTER_AREA)
    sx, sy = w / small.shape[1], h / small.shape[0]
    # HOG finds faces from about 80 px; small photos are searched at 2x as well.
    rects, scores = [], []
    for upsample in ((1,) if max(small.shape[:2]) <= 1024 else (0, 1)):
        rects, scores, _ = detector.run(np.ascontiguousarray(small), upsample, 0.0)
        if len(rects):
            break
    faces = [{"box": [r.left() * sx, r.top() * sy, (r.right() + 1) * sx, (r.bottom() + 1) * sy], "score": float(s)}
             for r, s in zip(rects, scores)]
    strong = [f for f in faces if f["score"] >= min_score]
    faces = strong or faces
    return order_faces(faces)


def order_faces(faces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`FACE_ORDER`: largest box area first, equal areas left to right (what `--face N` counts)."""
    return sorted(faces, key=lambda f: (-round((f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]), 6),
                                        f["box"][0]))


@functools.lru_cache(maxsize=1)
def _recognizer():
    import dlib

    return dlib.face_recognition_model_v1(str(face_model_path("dlib_face_recognition_resnet_model_v1.dat")))


def face_descriptor(pixels: np.ndarray, box: list[float], landmarks: np.ndarray | list) -> np.ndarray:
    """dlib's 128-d face-recognition descriptor of the face at `box` with its 68 `landmarks`: two faces of one
    person lie within about 0.6 of each other (Euclidean), which is how a clip finds its face again after a cut."""
    import dlib

    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
    shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
    return np.asarray(_recognizer().compute_face_descriptor(np.ascontiguousarray(pixels), shape), np.float64)


def landmarks_68(pixels: np.ndarray, box: list[float]) -> np.ndarray:
    import dlib

    _, predictor = _dlib_models()
    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
    shape = predictor(pixels, rect)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)


class NoFaceError(UserError):
    """The photo has no face dlib can find (a batch skips such photos rather than failing them)."""


class FaceChoiceError(FieldError):
    """The face asked for is not there (`face` past the last face, `face_at` on no face)."""


EVERY_FACE = "all"


def face_number(value: Any, face_at: Any = None, *, every: bool = False) -> int | str | None:
    """The one rule for how a face is asked for, whichever door it came through: a whole number from 0 (the
    largest; ASCII digits in text, so '²' or '١' are refused), `EVERY_FACE` where `every` is allowed, or None;
    never together with a point on the face. How many faces there are is `choose_face`'s check."""
    if value is not None and face_at is not None:
        raise FaceChoiceError("face", value, "give either a face number or a point on the face, not both")
    if value is None or (every and value == EVERY_FACE):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        shown = repr(value) if isinstance(value, str) else value
        raise FaceChoiceError("face", shown, "faces are numbered from 0 (the largest); use 0 or more"
                              + (f", or '{EVERY_FACE}' for every face" if every else ""))
    return value


def find_faces(pixels: np.ndarray, detect_max_side: int = 1600, min_score: float = 0.3) -> list[dict[str, Any]]:
    """Every face in `FACE_ORDER`, each with its box, score and 68 landmarks (photo pixels)."""
    faces = detect_faces(pixels, detect_max_side, min_score)
    if not faces:
        raise NoFaceError("no face found in the photo; use a photo with a clearly visible, roughly frontal face")
    for f in faces:
        f["landmarks"] = landmarks_68(pixels, f["box"]).tolist()
    return faces


def choose_face(faces: list[dict[str, Any]], face: int = 0, face_at: tuple[float, float] | None = None) -> int:
    """The index of the face asked for: `face_at` (the box holding that point, the one whose centre is nearest
    if boxes overlap), else `face` (a position in `FACE_ORDER`)."""
    if face_at is not None:
        x, y = face_at
        holding = [i for i, f in enumerate(faces) if f["box"][0] <= x <= f["box"][2] and f["box"][1] <= y <= f["box"][3]]
        if not holding:
            raise FaceChoiceError("face_at", f"{x:g},{y:g}", f"on none of the {len(faces)} face(s) found; "
                                  "the photo's preview shows their boxes")
        return min(holding, key=lambda i: np.hypot(x - (faces[i]["box"][0] + faces[i]["box"][2]) / 2,
                                                   y - (faces[i]["box"][1] + faces[i]["box"][3]) / 2))
    face = face_number(face)
    if not 0 <= face < len(faces):
        raise FaceChoiceError("face", face, f"only {len(faces)} face(s) found (0 = largest; "
                              "the photo's preview numbers them)")
    return face
