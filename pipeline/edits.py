"""Edit requests: parsing `--drag` specs and edit files, mapping points and masks photo -> crop."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from .align import map_points
from .errors import UserError

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_DRAG_RE = re.compile(rf"^{_NUM},{_NUM}:{_NUM},{_NUM}$")


@dataclass
class EditRequest:
    """One drag edit on the photo: (x1, y1) -> (x2, y2) pairs in original-photo pixels, optional mask file."""

    drags: list[tuple[float, float, float, float]]
    mask: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"drags": [list(d) for d in self.drags], "mask": self.mask}


def parse_drag(spec: str) -> tuple[float, float, float, float]:
    m = _DRAG_RE.match(spec)
    if not m:
        raise UserError(f"malformed --drag {spec!r}; write it as X1,Y1:X2,Y2 (photo pixels), e.g. 210,330:215,318")
    return tuple(float(v) for v in m.groups())  # type: ignore[return-value]


def load_edit_file(path: str | os.PathLike) -> list[EditRequest]:
    """{"edits": [{"drags": ["X1,Y1:X2,Y2" or [x1, y1, x2, y2], ...], "mask": "m.png"}, ...]}; paths relative to the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        out = []
        for e in data["edits"]:
            drags = [parse_drag(d) if isinstance(d, str) else tuple(float(v) for v in d) for d in e["drags"]]
            if not drags or any(len(d) != 4 for d in drags):
                raise ValueError("each edit needs drags of 4 numbers")
            mask = e.get("mask")
            out.append(EditRequest(drags, str((p.parent / mask).resolve()) if mask else None))
        if not out:
            raise ValueError("no edits")
        return out
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read edit file {p}: {exc}; expected "
                        '{"edits": [{"drags": ["X1,Y1:X2,Y2"], "mask": "optional.png"}]}') from None


def points_to_crop(drags: list[tuple[float, float, float, float]], photo_size: tuple[int, int],
                   photo_to_crop: np.ndarray, crop_size: int) -> tuple[list[list[float]], list[list[float]]]:
    """Handles and targets in crop pixels; points outside the photo or the face crop are user errors."""
    w, h = photo_size
    handles, targets = [], []
    for x1, y1, x2, y2 in drags:
        for x, y in ((x1, y1), (x2, y2)):
            if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
                raise UserError(f"point ({x:g}, {y:g}) is outside the {w}x{h} photo; give photo pixel coordinates")
        c = map_points(photo_to_crop, [[x1, y1], [x2, y2]])
        for (x, y), (cx, cy) in zip(((x1, y1), (x2, y2)), c):
            if not (0 <= cx <= crop_size - 1 and 0 <= cy <= crop_size - 1):
                raise UserError(f"point ({x:g}, {y:g}) lies outside the aligned face crop; choose points on the face")
        handles.append(c[0].tolist())
        targets.append(c[1].tolist())
    return handles, targets


def mask_to_crop(path: str | os.PathLike, photo_size: tuple[int, int], crop_to_photo: np.ndarray,
                 crop_size: int) -> np.ndarray:
    """A movable-region mask drawn on the photo (white = may move) -> binary crop mask."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read mask {path}: {exc}") from None
    if (arr.shape[1], arr.shape[0]) != tuple(photo_size):
        raise UserError(f"mask {path} is {arr.shape[1]}x{arr.shape[0]} but the photo is "
                        f"{photo_size[0]}x{photo_size[1]}; draw the mask at the photo's size")
    m = cv2.warpAffine(arr, crop_to_photo[:2], (crop_size, crop_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    m = (m > 0.5).astype(np.float32)
    if m.sum() == 0:
        raise UserError(f"mask {path} marks nothing inside the face crop; paint the region that may move in white")
    return m
