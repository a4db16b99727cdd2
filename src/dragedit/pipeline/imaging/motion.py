"""What the generator did, as motion: a dense field from the reconstruction to an edited render.

The edit is transferred to the photo by moving the photo's own pixels along this field
(`composite.warp_paste`), so its sharpness, skin and identity stay the photo's. The field comes from
optical flow between the two renders (both generator outputs, so their appearance matches), computed on
upsampled copies, kept where forward and backward flows agree, smoothed by normalised convolution
(trusted vectors fill in the rest), pinned to the handle motions measured independently after the drag,
and tapered to zero outside the face. A render identical to the reconstruction gives a zero field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np


@dataclass
class MotionConfig:
    method: str = "dis"  # 'dis' (OpenCV DIS, medium preset + variational refinement) or 'farneback'
    min_side: int = 512  # renders are upsampled to at least this size before flow
    fb_tolerance: float = 0.5  # crop px: forward-backward disagreement beyond this is not trusted
    smooth: float = 0.015  # normalised-convolution sigma as a fraction of the crop size
    shrink: float = 0.15  # crop px: motion below this is noise and is soft-thresholded away
    anchor_radius: float = 0.06  # handle-motion pins spread over this fraction of the crop size (Gaussian sigma)

    def __post_init__(self) -> None:
        if self.method not in ("dis", "farneback"):
            raise ValueError("motion method must be 'dis' or 'farneback'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gray_up(img: np.ndarray, up: int) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return g if up == 1 else cv2.resize(g, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)


def _flow(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Flow f on a's grid with a(x) ~ b(x + f(x))."""
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 21, 5, 7, 1.5, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None)


def sample_field(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear values of an HxWx2 field at float pixel positions (edges replicated)."""
    return cv2.remap(field, x.astype(np.float32), y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def backward_field(recon: np.ndarray, edited: np.ndarray, region: np.ndarray, anchors: list[tuple[list[float], list[float]]],
                   cfg: MotionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Field b on the edited render's grid, crop pixels: edited(x) ~ recon(x + b(x)); zero where `region` is 0.

    `anchors`: (start in recon, end in edited) of handles whose motion was measured independently; the
    field is corrected to carry exactly those motions near them. Returns (b, confidence in [0, 1]).
    """
    size = recon.shape[0]
    if np.array_equal(recon, edited):
        return np.zeros((size, size, 2), np.float32), np.ones((size, size), np.float32)
    up = max(1, int(np.ceil(cfg.min_side / size)))
    ge, gr = _gray_up(edited, up), _gray_up(recon, up)
    back = _flow(ge, gr, cfg.method)  # on the edited grid, towards recon
    fwd = _flow(gr, ge, cfg.method)
    hh, ww = back.shape[:2]
    ys, xs = np.mgrid[0:hh, 0:ww].astype(np.float32)
    fwd_at = sample_field(fwd, xs + back[..., 0], ys + back[..., 1])
    err = np.linalg.norm(back + fwd_at, axis=2) / up
    conf = np.exp(-np.square(err / cfg.fb_tolerance)).astype(np.float32)
    sigma = max(cfg.smooth * size * up, 0.5)
    num = cv2.GaussianBlur(back * conf[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(conf, (0, 0), sigma)[..., None]
    smooth = num / np.maximum(den, 1e-6)
    # Back to crop resolution (pixel centres: x_crop = (x_up + 0.5) / up - 0.5) and crop-pixel units.
    b = cv2.resize(smooth, (size, size), interpolation=cv2.INTER_AREA) / up
    conf_c = cv2.resize(conf, (size, size), interpolation=cv2.INTER_AREA)
    b = _pin_anchors(b, anchors, cfg.anchor_radius * size)
    mag = np.linalg.norm(b, axis=2, keepdims=True)
    b = b * np.clip(1 - cfg.shrink / np.maximum(mag, 1e-9), 0, None)  # soft threshold: continuous, zero below
    b *= region[..., None]
    return b.astype(np.float32), conf_c.astype(np.float32)


def _pin_anchors(b: np.ndarray, anchors: list[tuple[list[float], list[float]]], sigma: float) -> np.ndarray:
    """Add a smooth correction so that b(end) = start - end at each anchor (Gaussian RBF interpolation)."""
    if not anchors:
        return b
    size = b.shape[0]
    ends = np.array([e for _, e in anchors], np.float64)
    want = np.array([s for s, _ in anchors], np.float64) - ends
    have = sample_field(b, ends[:, 0:1].T, ends[:, 1:2].T)[0].astype(np.float64)
    resid = want - have
    d2 = ((ends[:, None, :] - ends[None, :, :]) ** 2).sum(-1)
    K = np.exp(-d2 / (2 * sigma ** 2)) + 1e-6 * np.eye(len(ends))
    coef = np.linalg.solve(K, resid)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    out = b.astype(np.float64).copy()
    for (ex, ey), c in zip(ends, coef):
        g = np.exp(-((xs - ex) ** 2 + (ys - ey) ** 2) / (2 * sigma ** 2))
        out += g[..., None] * c
    return out.astype(np.float32)


def warp_image(img: np.ndarray, b: np.ndarray) -> np.ndarray:
    """img(x + b(x)) on the same grid (bilinear, edges replicated)."""
    size = b.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return cv2.remap(img, xs + b[..., 0], ys + b[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
