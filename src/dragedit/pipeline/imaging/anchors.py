"""Drags anchored on the face: `@NAME:DX,DY` handles on dlib's 68 landmarks, targets as offsets.

"left" and "right" are image-left and image-right, as you see the photo (dlib's own numbering: point 48
is the mouth corner on the image's left, which is the subject's right). An offset is photo pixels, or,
with `%`, percent of the inter-ocular distance (eye centre to eye centre), along the photo's x and y axes,
so one edit file fits faces of any size.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dragedit.common.errors import UserError

LANDMARK_NAMES: dict[str, int] = {
    # jaw line (0-16)
    "jaw_left_upper": 2, "jaw_left": 4, "chin_left": 6, "chin": 8, "chin_right": 10, "jaw_right": 12,
    "jaw_right_upper": 14,
    # brows (17-26)
    "brow_left_outer": 17, "brow_left": 19, "brow_left_inner": 21,
    "brow_right_inner": 22, "brow_right": 24, "brow_right_outer": 26,
    # nose (27-35)
    "nose_bridge": 27, "nose_tip": 30, "nostril_left": 31, "nose_bottom": 33, "nostril_right": 35,
    # eyes (36-47)
    "eye_left_outer": 36, "eye_left_top": 37, "eye_left_inner": 39, "eye_left_bottom": 41,
    "eye_right_inner": 42, "eye_right_top": 44, "eye_right_outer": 45, "eye_right_bottom": 46,
    # mouth (48-67)
    "mouth_left": 48, "lip_top": 51, "mouth_right": 54, "lip_bottom": 57, "lip_top_inner": 62,
    "lip_bottom_inner": 66,
}

_NUM = r"(-?\d+(?:\.\d+)?)"
_ANCHORED_RE = re.compile(rf"^\s*@\s*([A-Za-z_]+|\d+)\s*:\s*{_NUM}\s*(%?)\s*,\s*{_NUM}\s*(%?)\s*$")
ANCHORED_SHAPE = "@NAME:DX,DY (e.g. @mouth_left:-4%,-8%; a bare number is photo pixels, % of the eye distance)"


def valid_names() -> str:
    return ", ".join(LANDMARK_NAMES)


@dataclass(frozen=True)
class AnchoredDrag:
    """A handle on landmark `index`, moved by (dx, dy): photo pixels, or percent of the eye distance."""

    spec: str
    index: int
    dx: float
    dy: float
    dx_percent: bool
    dy_percent: bool

    def resolve(self, landmarks: np.ndarray) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in photo pixels for this face's 68 landmarks."""
        eyes = inter_ocular(landmarks)
        x, y = (float(v) for v in landmarks[self.index])
        dx = self.dx * eyes / 100 if self.dx_percent else self.dx
        dy = self.dy * eyes / 100 if self.dy_percent else self.dy
        return x, y, x + dx, y + dy


def inter_ocular(landmarks: np.ndarray) -> float:
    """Eye centre to eye centre, photo pixels (the unit of `%` offsets)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))


def landmark_index(name: str) -> int:
    """`mouth_left` or `48` -> 48; anything else is a one-line error listing the valid names."""
    if name.isdigit():
        if 0 <= int(name) <= 67:
            return int(name)
        raise UserError(f"landmark @{name} does not exist; use 0-67 (dlib's 68 points) or a name: {valid_names()}")
    if name.lower() in LANDMARK_NAMES:
        return LANDMARK_NAMES[name.lower()]
    raise UserError(f"unknown landmark @{name}; use 0-67 or one of: {valid_names()}")


def is_anchored(spec: str) -> bool:
    return spec.lstrip().startswith("@")


def parse_anchored(spec: str) -> AnchoredDrag:
    m = _ANCHORED_RE.match(spec)
    if not m:
        raise UserError(f"malformed anchored drag {spec!r}; write it as {ANCHORED_SHAPE}")
    name, dx, dxp, dy, dyp = m.groups()
    return AnchoredDrag(spec.strip(), landmark_index(name), float(dx), float(dy), dxp == "%", dyp == "%")
