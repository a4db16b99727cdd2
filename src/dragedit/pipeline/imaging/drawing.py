"""Pictures a person reads coordinates and results from: every face with its index, landmarks and anchor
names over a pixel grid (`photo_preview`), and an edit's arrows with original | edited (`edit_preview`)."""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .anchors import LANDMARK_NAMES

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BOX, _POINT, _NAME, _ARROW, _FINAL = (255, 196, 0), (0, 230, 255), (255, 255, 255), (255, 64, 64), (64, 255, 64)


def _grid_step(extent: float) -> int:
    """A round grid spacing giving about 8-16 lines across `extent` photo pixels."""
    for step in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000):
        if extent / step <= 16:
            return step
    return 5000


def _text(img: np.ndarray, text: str, org: tuple[float, float], scale: float, color, thickness: int = 1) -> None:
    """Text with a dark outline, readable on any photo."""
    x, y = int(round(org[0])), int(round(org[1]))
    cv2.putText(img, text, (x, y), _FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), _FONT, scale, color, thickness, cv2.LINE_AA)


def _canvas(pixels: np.ndarray, min_side: int = 1024) -> tuple[np.ndarray, float]:
    """The photo enlarged so that small photos still show legible labels; the scale photo -> canvas."""
    h, w = pixels.shape[:2]
    scale = max(1.0, min_side / max(h, w))
    if scale == 1.0:
        return pixels.copy(), 1.0
    return cv2.resize(pixels, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC), scale


def _draw_grid(img: np.ndarray, scale: float, region: tuple[float, float, float, float]) -> None:
    """Light lines every `step` photo pixels inside `region` (photo pixels), labelled with their coordinate."""
    x0, y0, x1, y1 = region
    step = _grid_step(max(x1 - x0, y1 - y0))
    overlay = img.copy()
    font = 0.35 * max(1.0, img.shape[1] / 1400)
    for x in range(int(math.ceil(x0 / step)) * step, int(x1) + 1, step):
        cx = round((x - x0) * scale)
        cv2.line(overlay, (cx, 0), (cx, img.shape[0] - 1), (255, 255, 255), 1)
        _text(img, str(x), (cx + 2, 12 * font / 0.35), font, (230, 230, 230))
    for y in range(int(math.ceil(y0 / step)) * step, int(y1) + 1, step):
        cy = round((y - y0) * scale)
        cv2.line(overlay, (0, cy), (img.shape[1] - 1, cy), (255, 255, 255), 1)
        _text(img, str(y), (2, cy - 3), font, (230, 230, 230))
    cv2.addWeighted(overlay, 0.25, img, 0.75, 0, dst=img)


def photo_preview(pixels: np.ndarray, faces: list[dict[str, Any]], zooms: int = 4, zoom_side: int = 720) -> np.ndarray:
    """The photo with a coordinate grid and every face's box and `--face` index (in `FACE_ORDER`), and below
    it the first `zooms` faces enlarged: their 68 landmarks numbered, the named anchors labelled, a grid in
    photo pixels, so a person can read off what to type."""
    img, s = _canvas(pixels)
    h, w = pixels.shape[:2]
    _draw_grid(img, s, (0, 0, w, h))
    for index, face in enumerate(faces):
        x0, y0, x1, y1 = (v * s for v in face["box"])
        thick = max(1, round((x1 - x0) / 250))
        cv2.rectangle(img, (round(x0), round(y0)), (round(x1), round(y1)), _BOX, thick + 1, cv2.LINE_AA)
        _text(img, f"--face {index}", (x0, y0 - 6), max(0.45, (x1 - x0) / 400), _BOX, thick)
        for x, y in np.asarray(face["landmarks"], dtype=np.float64) * s:
            cv2.circle(img, (round(x), round(y)), max(1, round((x1 - x0) / 160)), _POINT, -1, cv2.LINE_AA)
    panels = [_face_zoom(pixels, face, index, zoom_side) for index, face in enumerate(faces[:zooms])]
    if not panels:
        return img
    cols = max(1, min(len(panels), img.shape[1] // zoom_side))
    rows = [panels[i:i + cols] for i in range(0, len(panels), cols)]
    strip = [np.concatenate(r + [np.zeros((zoom_side, zoom_side * (cols - len(r)), 3), np.uint8)] * (len(r) < cols),
                            axis=1) for r in rows]
    below = np.concatenate(strip, axis=0)
    width = max(img.shape[1], below.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)))  # noqa: E731
    return np.concatenate([pad(img), pad(below)], axis=0)


def _face_zoom(pixels: np.ndarray, face: dict[str, Any], index: int, side: int) -> np.ndarray:
    """One face enlarged to `side` px: landmarks numbered, named anchors labelled, a photo-pixel grid."""
    h, w = pixels.shape[:2]
    bx0, by0, bx1, by1 = face["box"]
    size = max(bx1 - bx0, by1 - by0) * 1.5
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2 + 0.08 * size
    x0, y0 = cx - size / 2, cy - size / 2
    s = side / size
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])
    panel = cv2.warpAffine(pixels, m, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    _draw_grid(panel, s, (x0, y0, x0 + size, y0 + size))
    names = {i: n for n, i in LANDMARK_NAMES.items()}
    for i, (x, y) in enumerate(np.asarray(face["landmarks"], dtype=np.float64)):
        px, py = (x - x0) * s, (y - y0) * s
        cv2.circle(panel, (round(px), round(py)), 3, _POINT, -1, cv2.LINE_AA)
        _text(panel, str(i), (px + 4, py - 3), 0.38, _POINT)
        if i in names:
            _text(panel, f"@{names[i]}", (px + 4, py + 12), 0.38, _NAME)
    _text(panel, f"--face {index}", (8, side - 12), 0.8, _BOX, 2)
    return panel


def _arrow(img: np.ndarray, a, b, color, thick: int) -> None:
    a, b = (round(a[0]), round(a[1])), (round(b[0]), round(b[1]))
    length = max(1.0, math.hypot(b[0] - a[0], b[1] - a[1]))
    cv2.arrowedLine(img, a, b, color, thick, cv2.LINE_AA, tipLength=min(0.5, 12 / length))


def edit_preview(photo: np.ndarray, edited: np.ndarray, drags: list[list[float]], final_points: list[list[float]],
                 face_box: list[float], margin: float = 0.6) -> np.ndarray:
    """Original | edited, cropped to the face at full resolution; handles -> targets as red arrows on the
    original, the points where the handles ended as green dots on the edited side."""
    h, w = photo.shape[:2]
    bx0, by0, bx1, by1 = face_box
    pad = margin * max(bx1 - bx0, by1 - by0)
    x0, y0 = max(0, int(bx0 - pad)), max(0, int(by0 - pad))
    x1, y1 = min(w, int(math.ceil(bx1 + pad))), min(h, int(math.ceil(by1 + pad)))
    sides = []
    for pic in (photo, edited):
        crop, s = _canvas(np.ascontiguousarray(pic[y0:y1, x0:x1]), min_side=640)
        sides.append(crop)
    s = sides[0].shape[1] / (x1 - x0)
    thick = max(2, round(sides[0].shape[1] / 300))
    for x1_, y1_, x2_, y2_ in drags:
        _arrow(sides[0], ((x1_ - x0) * s, (y1_ - y0) * s), ((x2_ - x0) * s, (y2_ - y0) * s), _ARROW, thick)
        cv2.circle(sides[1], (round((x2_ - x0) * s), round((y2_ - y0) * s)), 3 * thick, _ARROW, thick, cv2.LINE_AA)
    for x, y in final_points:
        cv2.circle(sides[1], (round((x - x0) * s), round((y - y0) * s)), 2 * thick, _FINAL, -1, cv2.LINE_AA)
    for side, label in zip(sides, ("original", "edited")):
        _text(side, label, (8, 24 * thick), 0.7 * thick, (255, 255, 255), thick)
    gap = np.full((sides[0].shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([sides[0], gap, sides[1]], axis=1)


def drags_panel(photo: np.ndarray, drags: list[list[float]], face_box: list[float], title: str,
                mask: np.ndarray | None = None, side: int = 360, margin: float = 0.35) -> np.ndarray:
    """One face at `side` px with handle -> target arrows (made longer x3 so short drags show) and, if given,
    the movable mask tinted; `title` above. For `dragedit presets` and figures of many edits."""
    h, w = photo.shape[:2]
    bx0, by0, bx1, by1 = face_box
    half = (0.5 + margin) * max(bx1 - bx0, by1 - by0)
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(math.ceil(cx + half))), min(h, int(math.ceil(cy + half)))
    panel = np.ascontiguousarray(photo[y0:y1, x0:x1]).copy()
    if mask is not None:
        m = mask[y0:y1, x0:x1] > 0.5
        panel[m] = (0.6 * panel[m] + 0.4 * np.array(_BOX)).astype(np.uint8)
    s = side / max(x1 - x0, y1 - y0)
    panel = cv2.resize(panel, (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))), interpolation=cv2.INTER_AREA)
    thick = max(2, round(side / 240))
    for hx, hy, tx, ty in drags:
        a = ((hx - x0) * s, (hy - y0) * s)
        b = (a[0] + 3 * (tx - hx) * s, a[1] + 3 * (ty - hy) * s)
        _arrow(panel, a, b, _ARROW, thick)
    out = np.full((panel.shape[0] + 30, side, 3), 255, np.uint8)
    out[30:, :panel.shape[1]] = panel
    _text(out, title, (6, 22), 0.6, (0, 0, 0), 1)
    return out
