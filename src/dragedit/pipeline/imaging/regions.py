"""Masks by face region, from the chosen face's 68 landmarks, so a script keeps the rest of the face still
without painting anything: `mouth`, `eyes`, `brows`, `nose`, `jaw` or `face`.

A region is the hull of its landmarks (each eye and each brow on its own; the jaw is a band along the jaw
line), grown by a share of the inter-ocular distance: room for the features to move into.
"""
from __future__ import annotations

import cv2
import numpy as np

from dragedit.common.errors import FieldError

from .anchors import inter_ocular

# region -> (landmark groups, each filled as a hull or drawn as a line; growth in % of the eye distance)
REGIONS: dict[str, tuple[list[range], str, float]] = {
    "mouth": ([range(48, 68)], "hull", 20.0),
    "eyes": ([range(36, 42), range(42, 48)], "hull", 15.0),
    "brows": ([range(17, 22), range(22, 27)], "hull", 18.0),
    "nose": ([range(27, 36)], "hull", 15.0),
    "jaw": ([range(0, 17)], "line", 20.0),
    "face": ([range(0, 68)], "hull", 10.0),
}


def check_region(name: str) -> str:
    if name not in REGIONS:
        raise FieldError("mask_region", name, f"use one of {', '.join(REGIONS)}")
    return name


def region_mask(name: str, landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A {0, 1} float32 mask of `shape` (rows, cols) for region `name`; `landmarks` are 68 x 2 in the same pixels."""
    groups, kind, grow = REGIONS[check_region(name)]
    lm = np.asarray(landmarks, np.float64)
    mask = np.zeros(shape, np.uint8)
    for group in groups:
        pts = np.rint(lm[list(group)]).astype(np.int32)
        if kind == "hull":
            cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
        else:
            cv2.polylines(mask, [pts], False, 1, thickness=1)
    radius = max(1, int(round(grow / 100 * inter_ocular(lm))))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return mask.astype(np.float32)
