"""Pasting an edited crop back into the full-resolution photo.

The paste is limited to where the edit changed something (edited vs reconstructed crop), inside a
face region around the landmarks, and to crop pixels that came from inside the photo; it is
feathered there and exactly zero elsewhere, so every other photo pixel is copied bit for bit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from .align import map_points


@dataclass
class CompositeConfig:
    change_threshold: float = 6.0  # mean |edited - reconstructed| in 8-bit levels that counts as a change
    grow: float = 0.03  # dilate the changed area by this fraction of the crop size
    feather: float = 0.03  # Gaussian feather (sigma) as a fraction of the crop size
    face_margin: float = 0.12  # face region = landmark hull grown by this fraction of the crop size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def face_region(landmarks_crop: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Filled convex hull of the landmarks (brows raised to cover the forehead), grown by `margin`."""
    pts = landmarks_crop.copy()
    brow = pts[17:27].copy()
    eye_to_chin = pts[8, 1] - pts[36:48, 1].mean()
    brow[:, 1] -= 0.35 * eye_to_chin
    hull = cv2.convexHull(np.concatenate([pts, brow]).astype(np.float32))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, np.rint(hull).astype(np.int32), 255)
    k = max(int(round(margin * size)), 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return mask.astype(np.float32) / 255.0


def blend_mask(edited: np.ndarray, reconstructed: np.ndarray, inside: np.ndarray, landmarks_crop: np.ndarray,
               cfg: CompositeConfig) -> np.ndarray:
    """Crop-space weight in [0, 1] of the edited pixels."""
    size = edited.shape[0]
    diff = np.abs(edited.astype(np.float32) - reconstructed.astype(np.float32)).mean(axis=2)
    changed = (diff > cfg.change_threshold).astype(np.uint8) * 255
    k = max(int(round(cfg.grow * size)), 1)
    changed = cv2.dilate(changed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    m = changed.astype(np.float32) / 255.0
    m *= face_region(landmarks_crop, size, cfg.face_margin)
    sigma = max(cfg.feather * size, 0.5)
    m = cv2.GaussianBlur(m, (0, 0), sigma)
    m *= np.clip(inside, 0, 1)
    m[m < 1.0 / 512] = 0.0
    return np.clip(m, 0, 1)


def composite(photo: np.ndarray, edited_crop: np.ndarray, mask_crop: np.ndarray, photo_to_crop: np.ndarray
              ) -> tuple[np.ndarray, dict[str, Any]]:
    """Warp the crop and its mask into the photo (only over the crop's footprint) and blend."""
    h, w = photo.shape[:2]
    crop_to_photo = np.linalg.inv(photo_to_crop)
    ys, xs = np.nonzero(mask_crop > 0)
    out = photo.copy()
    if len(xs) == 0:
        return out, {"changed_pixels": 0, "bbox": None}
    corners = map_points(crop_to_photo, [[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1],
                                         [xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]])
    x0, y0 = max(int(np.floor(corners[:, 0].min())) - 1, 0), max(int(np.floor(corners[:, 1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(corners[:, 0].max())) + 2, w), min(int(np.ceil(corners[:, 1].max())) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return out, {"changed_pixels": 0, "bbox": None}
    # photo pixel (x, y) in the box -> crop coordinates: photo_to_crop after shifting the box origin.
    m = (photo_to_crop @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1.0]]))[:2]
    bw, bh = x1 - x0, y1 - y0
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    crop_w = cv2.warpAffine(edited_crop.astype(np.float32), m, (bw, bh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    mask_w = cv2.warpAffine(mask_crop.astype(np.float32), m, (bw, bh), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    mask_w[mask_w < 1.0 / 512] = 0.0
    region = photo[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1 - mask_w[..., None]) + crop_w * mask_w[..., None]
    blended = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    touched = mask_w > 0
    out[y0:y1, x0:x1][touched] = blended[touched]
    return out, {"changed_pixels": int(touched.sum()), "bbox": [x0, y0, x1, y1]}
