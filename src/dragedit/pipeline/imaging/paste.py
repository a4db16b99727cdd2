"""Putting an edit back into the full-resolution photo, in one of two ways.

`warp` (the default) moves the photo's own pixels along the motion the generator made
(`motion.backward_field`, reconstruction -> edited render), mapped through the exact crop <-> photo
transform, so sharpness and identity stay the photo's. Generated pixels come in only where the edit
reveals content: a large residual that the motion cannot explain, where the field stretches (a
disocclusion: the lips part, the teeth appear), next to the handles' paths, inside the movable region;
colour-matched and feathered. A change of colour where nothing moved is the generator repainting, not
the edit, and is left out (the stats count it).

`generated` pastes the edited crop itself where it differs from the reconstruction (the older paste:
the face takes the generator's resolution and look).

Both touch only a face region around the landmarks and crop pixels that came from inside the photo;
every other photo pixel is copied bit for bit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from dragedit.common.errors import FieldError, check_finite

from .geometry import map_points
from .motion import MotionConfig, backward_field, warp_image

PASTE_MODES = ("warp", "generated")


@dataclass
class CompositeConfig:
    paste: str = "warp"  # 'warp': move the photo's pixels; 'generated': paste the edited crop
    change_threshold: float = 6.0  # generated: mean |edited - reconstructed| in 8-bit levels that counts as a change
    grow: float = 0.03  # generated: dilate the changed area by this fraction of the crop size
    feather: float = 0.03  # Gaussian feather (sigma) as a fraction of the crop size
    face_margin: float = 0.12  # face region = landmark hull grown by this fraction of the crop size
    motion: MotionConfig = field(default_factory=MotionConfig)
    residual_threshold: float = 32.0  # warp: 8-bit levels left after warping that the motion cannot explain
    residual_ramp: float = 16.0  # warp: generated weight goes 0 -> 1 over this many levels above the threshold
    colour_sigma: float = 0.03  # warp: low-pass (fraction of the crop size) for colour-matching generated pixels
    # warp: without a mask, an edit reaches this far around its handles and targets (Gaussian sigma, fraction of
    # the crop size); with a mask, the mask says where. The generator also jitters the rest of the face a little
    # (a 128 px model re-renders everything); that is not the edit, and moving the photo there would only blur it.
    reach: float = 0.12
    # warp: a drag that lost a handle repainted rather than moved somewhere; its generated pixels are then not
    # trusted anywhere (a repainted mouth became a dark hole in the photo), and only the motion is used
    generated_when_lost: bool = False
    # warp: generated pixels only where the field stretches (content revealed): 1 - det(I + grad b) above this
    # (an area of the edit at most half the area it came from) ... A colour change where nothing moved apart is
    # a repaint (the generator's flow noise stretches ~0.2 there), and a repainted dark blob at a mouth corner
    # that did move stretched ~0.8 over a few pixels: weighted by the stretch alone it is a faint shade there
    reveal_threshold: float = 0.5
    reveal_ramp: float = 0.3  # ... ramps their weight 0 -> 1 over this much more stretch
    reveal_grow: float = 0.0  # ... grown by this fraction of the crop size (0: exactly where it stretched)

    def __post_init__(self) -> None:
        if self.paste not in PASTE_MODES:
            raise FieldError("paste", self.paste, f"use one of {', '.join(PASTE_MODES)}")
        if isinstance(self.motion, dict):
            self.motion = MotionConfig(**self.motion)
        check_finite(self)

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


def paste_generated(photo: np.ndarray, edited_crop: np.ndarray, mask_crop: np.ndarray, photo_to_crop: np.ndarray
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


def warp_region(landmarks_crop: np.ndarray, inside: np.ndarray, cfg: CompositeConfig,
                edits: list[tuple[list[list[float]], np.ndarray | None]]) -> np.ndarray:
    """Crop-space weight of the motion field, zero outside the photo: the union over the edits (a chain from the
    pivot) of each one's movable mask, feathered, or else of Gaussians around its handles and targets inside the
    feathered face region."""
    size = inside.shape[0]
    feather = max(cfg.feather * size, 0.5)
    face = cv2.GaussianBlur(face_region(landmarks_crop, size, cfg.face_margin), (0, 0), feather)
    sigma = max(cfg.reach * size, 1.0)
    m = np.zeros((size, size), np.float32)
    for points, mask in edits:
        if mask is not None:
            part = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), feather)
        else:
            part = np.clip(1.5 * _near(points, size, sigma), 0, 1) * face
        m = np.maximum(m, part)
    m *= np.clip(inside, 0, 1)
    m[m < 1.0 / 256] = 0.0
    return m


def generated_weight(edited: np.ndarray, recon_warped: np.ndarray, region: np.ndarray, cfg: CompositeConfig,
                     lost: list[list[float]] | None = None) -> np.ndarray:
    """Where the warped reconstruction still misses the edit by a lot: content that motion cannot explain.

    Thin structures (flow failing along an edge) are opened away. Around handles the drag lost, the change
    is the generator repainting rather than moving the feature, so nothing is generated there (and
    `warp_paste` moves nothing there either)."""
    size = edited.shape[0]
    resid = np.abs(edited.astype(np.float32) - recon_warped.astype(np.float32)).mean(axis=2)
    resid = cv2.GaussianBlur(resid, (0, 0), 1.0)
    g = np.clip((resid - cfg.residual_threshold) / cfg.residual_ramp, 0, 1)
    k = max(3, int(round(0.04 * size)) | 1)
    g = cv2.morphologyEx(g, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    g = cv2.GaussianBlur(g, (0, 0), max(0.01 * size, 0.75))
    g *= region
    if lost:
        g *= 1 - _near(lost, size, cfg.reach * size)
    g[g < 1.0 / 256] = 0.0
    return np.clip(g, 0, 1).astype(np.float32)


def reveal_weight(b: np.ndarray, cfg: CompositeConfig) -> np.ndarray:
    """Where the backward field stretches, in [0, 1]: an area of the edit that comes from a smaller area of the
    reconstruction shows content the reconstruction did not (edited(x) = recon(x + b(x)), so the local area
    ratio is det(I + grad b))."""
    size = b.shape[0]
    dbx_dy, dbx_dx = np.gradient(b[..., 0].astype(np.float64))
    dby_dy, dby_dx = np.gradient(b[..., 1].astype(np.float64))
    det = (1 + dbx_dx) * (1 + dby_dy) - dbx_dy * dby_dx
    r = np.clip((1 - det - cfg.reveal_threshold) / cfg.reveal_ramp, 0, 1).astype(np.float32)
    if not r.any():
        return r
    if cfg.reveal_grow > 0:
        k = max(3, int(round(2 * cfg.reveal_grow * size)) | 1)
        r = cv2.dilate(r, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return cv2.GaussianBlur(r, (0, 0), max(0.01 * size, 0.75))


def _near_paths(paths: list[tuple[list[float], list[float]]], size: int, sigma: float) -> np.ndarray:
    """Max of Gaussian bumps along each handle -> target segment (crop px)."""
    points = []
    for (x0, y0), (x1, y1) in paths:
        n = max(2, int(np.ceil(np.hypot(x1 - x0, y1 - y0))) + 1)
        points += [[x0 + (x1 - x0) * t, y0 + (y1 - y0) * t] for t in np.linspace(0, 1, n)]
    return _near(points, size, sigma)


def _near(points: list[list[float]], size: int, sigma: float) -> np.ndarray:
    """Max over `points` of a Gaussian bump of width `sigma` (crop px), R x R."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((size, size), np.float32)
    for x, y in points:
        out = np.maximum(out, np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)))
    return out


def without_lost(region: np.ndarray, lost: list[list[float]] | None, cfg: CompositeConfig) -> np.ndarray:
    """`region` less the surroundings of lost handles: there the generator repainted instead of moving, so its
    flow is not motion."""
    if not lost:
        return region
    size = region.shape[0]
    region = region * (1 - _near(lost, size, cfg.reach * size))
    region[region < 1.0 / 256] = 0.0
    return region


@dataclass
class WarpPaste:
    """The result of `warp_paste` and what the session keeps of it."""

    photo: np.ndarray  # the edited photo, same shape and dtype as the input
    field: np.ndarray  # crop-space backward field (R x R x 2, crop px)
    confidence: np.ndarray  # forward-backward agreement of the flow, R x R
    generated: np.ndarray  # crop-space weight of generated pixels, R x R
    stats: dict[str, Any]


def warp_paste(photo: np.ndarray, crop: np.ndarray, recon: np.ndarray, edited: np.ndarray, region: np.ndarray,
               photo_to_crop: np.ndarray, *, anchors: list[tuple[list[float], list[float]]] = (),
               config: CompositeConfig | None = None, lost: list[list[float]] | None = None,
               drag_lost: bool = False, paths: list[tuple[list[float], list[float]]] | None = None,
               field: np.ndarray | None = None) -> WarpPaste:
    """Move the photo's own pixels along the generator's motion; generated pixels only where motion falls short.

    `crop` is the aligned photo crop, `recon` the tuned generator's render at the pivot, `edited` the
    edit's render (all R x R x 3 uint8); `lost`: crop points of handles the drag lost; `drag_lost`: the drag
    stopped because it lost a handle (no generated pixels then, see `CompositeConfig.generated_when_lost`);
    `paths`: (handle, target) crop points of the edits, near which revealed content may be generated (None:
    anywhere in `region`); `field`: the backward field to move by, when the caller has it (a clip smooths each
    frame's over its neighbours'), else measured here. Pixels with no motion and no generated weight are copied
    bit for bit.
    """
    cfg = config or CompositeConfig()
    size = recon.shape[0]
    region = without_lost(region, lost, cfg)
    if field is None:
        b, conf = backward_field(recon, edited, region, anchors, cfg.motion)
    else:
        b, conf = np.ascontiguousarray(field, np.float32), np.ones(field.shape[:2], np.float32)
    recon_w = warp_image(recon.astype(np.float32), b)
    unexplained = generated_weight(edited, recon_w, region, cfg, lost)
    revealed = reveal_weight(b, cfg)
    if paths:
        revealed *= np.clip(1.5 * _near_paths(paths, size, max(cfg.reach * size, 1.0)), 0, 1)
    g = unexplained * revealed
    g[g < 1.0 / 256] = 0.0
    if drag_lost and not cfg.generated_when_lost:
        g = np.zeros_like(g)
    out = photo.copy()
    stats: dict[str, Any] = {"changed_pixels": 0, "bbox": None, "max_motion_crop_px": float(np.abs(b).max()),
                             "generated_fraction": float((g > 0).mean()),
                             "repaint_ignored_crop_px": int(((unexplained >= 0.5) & (g < 0.5)).sum())}
    active = (np.abs(b).sum(axis=2) > 0) | (g > 0)
    if not active.any():
        return WarpPaste(out, b, conf, g, stats)
    ys, xs = np.nonzero(active)
    h, w = photo.shape[:2]
    crop_to_photo = np.linalg.inv(photo_to_crop)
    corners = map_points(crop_to_photo, [[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1],
                                         [xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]])
    x0, y0 = max(int(np.floor(corners[:, 0].min())) - 1, 0), max(int(np.floor(corners[:, 1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(corners[:, 0].max())) + 2, w), min(int(np.ceil(corners[:, 1].max())) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return WarpPaste(out, b, conf, g, stats)
    # Every photo pixel of the box in crop coordinates, the field there, and where it takes its pixel from.
    py, px = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    A = np.asarray(photo_to_crop, np.float64)
    den = A[2, 0] * px + A[2, 1] * py + A[2, 2]
    cx = ((A[0, 0] * px + A[0, 1] * py + A[0, 2]) / den).astype(np.float32)
    cy = ((A[1, 0] * px + A[1, 1] * py + A[1, 2]) / den).astype(np.float32)
    bb = cv2.remap(b, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    gg = cv2.remap(g, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    gg[gg < 1.0 / 256] = 0.0
    sx, sy = cx + bb[..., 0], cy + bb[..., 1]
    Ci = np.linalg.inv(A)
    sden = Ci[2, 0] * sx + Ci[2, 1] * sy + Ci[2, 2]
    src_x = ((Ci[0, 0] * sx + Ci[0, 1] * sy + Ci[0, 2]) / sden).astype(np.float32)
    src_y = ((Ci[1, 0] * sx + Ci[1, 1] * sy + Ci[1, 2]) / sden).astype(np.float32)
    moved = np.abs(bb).sum(axis=2) > 0
    region_px = photo[y0:y1, x0:x1]
    warped = cv2.remap(photo, src_x, src_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT_101)
    result = warped.astype(np.float32)
    if (gg > 0).any():
        # Generated content, colour-matched: the edit plus the low-frequency difference photo - generator,
        # both moved by the field, so it takes the photo's colours and light.
        crop_w = warp_image(crop.astype(np.float32), b)
        sigma = max(cfg.colour_sigma * size, 0.75)
        matched = edited.astype(np.float32) + cv2.GaussianBlur(crop_w - recon_w, (0, 0), sigma)
        gen = cv2.remap(matched, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        result = result * (1 - gg[..., None]) + gen * gg[..., None]
    info = np.iinfo(photo.dtype)
    result = np.clip(np.rint(result), info.min, info.max).astype(photo.dtype)
    touched = moved | (gg > 0)
    block = out[y0:y1, x0:x1]
    block[touched] = result[touched]
    motion_px = np.linalg.norm(np.stack([src_x - px, src_y - py], -1), axis=2)
    stats.update({"changed_pixels": int((block != region_px).any(axis=2).sum()), "bbox": [x0, y0, x1, y1],
                  "max_motion_photo_px": float(motion_px[touched].max()) if touched.any() else 0.0})
    return WarpPaste(out, b, conf, g, stats)
