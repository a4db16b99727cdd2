"""Procedural, face-like portraits for training the embedded generator.

Each image is a head with structured, independently varying parts: head shape, roll and yaw, skin
and background colours, lighting direction, hair (colour, volume, fringe), brows (height, angle),
eyes (spacing, openness, iris colour), nose, and a mouth that opens and widens. Faces are centred
like FFHQ crops (eyes at about 0.47 of the height, mouth at about 0.74). Deterministic per seed.
The embedded demo generator was trained on these (`scripts/train_generator.py`); `scripts/render_faces.py`
writes them to files.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

SS = 2  # supersampling factor


def _rot(pts: np.ndarray, centre: tuple[float, float], angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    d = pts - np.asarray(centre)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], 1) + np.asarray(centre)


def _ellipse(img, centre, axes, angle_deg, color, thickness=-1):
    cv2.ellipse(img, (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
                (max(int(round(axes[0] * 16)), 1), max(int(round(axes[1] * 16)), 1)), angle_deg, 0, 360,
                color, thickness, cv2.LINE_AA, 4)


def _poly(img, pts, color, closed=True, thickness=-1):
    p = np.rint(np.asarray(pts) * 16).astype(np.int32).reshape(-1, 1, 2)
    if thickness < 0:
        cv2.fillPoly(img, [p], color, cv2.LINE_AA, 4)
    else:
        cv2.polylines(img, [p], closed, color, thickness, cv2.LINE_AA, 4)


def _col(rgb) -> tuple[float, float, float]:
    return tuple(float(v) for v in rgb)


def render_face(seed: int, size: int = 128) -> np.ndarray:
    """One portrait, size x size x 3 uint8."""
    rng = np.random.RandomState(seed)
    S = size * SS
    u = S / 128.0  # layout unit: designed on a 128 canvas

    # Background: vertical gradient between two random colours.
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    t = np.linspace(0, 1, S)[:, None, None]
    img = np.ascontiguousarray(np.broadcast_to(top * (1 - t) + bottom * t, (S, S, 3))).astype(np.float32)

    roll = math.radians(rng.uniform(-8, 8))
    yaw = rng.uniform(-1, 1)  # shifts features sideways within the head
    cx, cy = 64 * u + rng.uniform(-2, 2) * u, 66 * u + rng.uniform(-2, 2) * u
    head_w, head_h = rng.uniform(30, 38) * u, rng.uniform(40, 47) * u
    skin = np.array([rng.uniform(120, 245), 0, 0])
    skin[1] = skin[0] * rng.uniform(0.68, 0.85)
    skin[2] = skin[1] * rng.uniform(0.7, 0.9)
    hair = rng.uniform(10, 200, 3) * (rng.uniform(0.3, 1.0) if rng.rand() < 0.7 else 1.0)
    deg = math.degrees(roll)

    # Neck and shoulders.
    _poly(img, _rot(np.array([[cx - 14 * u, cy + 30 * u], [cx + 14 * u, cy + 30 * u], [cx + 16 * u, S],
                              [cx - 16 * u, S]]), (cx, cy), roll), _col(skin * 0.85))
    cloth = rng.uniform(20, 230, 3)
    _ellipse(img, (cx, S + 12 * u), (48 * u, 30 * u), 0, _col(cloth))
    # Hair volume behind the head.
    hv = rng.uniform(1.0, 1.25)
    long_hair = rng.rand() < 0.5
    if long_hair:
        _poly(img, _rot(np.array([[cx - head_w * hv, cy - 10 * u], [cx + head_w * hv, cy - 10 * u],
                                  [cx + head_w * hv * 1.05, cy + rng.uniform(30, 55) * u],
                                  [cx - head_w * hv * 1.05, cy + rng.uniform(30, 55) * u]]), (cx, cy), roll),
              _col(hair * 0.8))
    _ellipse(img, (cx, cy - 6 * u), (head_w * hv + 2 * u, head_h * 0.9 * hv), deg, _col(hair * 0.85))
    # Ears and head.
    for side in (-1, 1):
        e = _rot(np.array([[cx + side * head_w * 0.98 - yaw * 3 * u, cy + 2 * u]]), (cx, cy), roll)[0]
        _ellipse(img, e, (5 * u, 9 * u), deg, _col(skin * 0.92))
    _ellipse(img, (cx, cy), (head_w, head_h), deg, _col(skin))
    # Fringe / hairline.
    fringe = rng.uniform(0.35, 0.75)
    pts = []
    for a in np.linspace(math.pi, 2 * math.pi, 24):
        pts.append([cx + math.cos(a) * (head_w + 1.5 * u), cy - 4 * u + math.sin(a) * (head_h * 0.95)])
    jag = rng.uniform(-3, 3, 5) * u
    for k, xx in enumerate(np.linspace(cx + head_w, cx - head_w, 5)):
        pts.append([xx, cy - head_h * fringe + jag[k] + (8 * u if k in (0, 4) else 0)])
    _poly(img, _rot(np.array(pts), (cx, cy), roll), _col(hair))

    # Facial layout (before roll): eyes, brows, nose, mouth.
    fx = cx + yaw * 4 * u
    eye_y = cy - rng.uniform(3, 6) * u
    eye_dx = rng.uniform(12, 16) * u
    eye_w, openness = rng.uniform(5, 7) * u, rng.uniform(0.05, 1.0)
    iris = rng.uniform(20, 160, 3)
    for side in (-1, 1):
        ex = fx + side * eye_dx + (yaw * 1.5 * u if side > 0 else yaw * 1.0 * u)
        centre = _rot(np.array([[ex, eye_y]]), (cx, cy), roll)[0]
        h = max(eye_w * 0.55 * openness, 0.6 * u)
        _ellipse(img, centre, (eye_w, h), deg, (245, 245, 240))
        if openness > 0.15:
            _ellipse(img, centre, (min(h, eye_w * 0.5), min(h, eye_w * 0.5)), deg, _col(iris))
            _ellipse(img, centre, (min(h, eye_w * 0.22), min(h, eye_w * 0.22)), deg, (15, 15, 20))
        _ellipse(img, centre, (eye_w, h), deg, _col(skin * 0.45), max(int(u * 0.8), 1))
        # Brow.
        bh = rng.uniform(6, 10) * u
        tilt = rng.uniform(-0.25, 0.25) * side
        b = np.array([[ex - side * eye_w * 1.1, eye_y - bh + tilt * 4 * u],
                      [ex + side * eye_w * 1.1, eye_y - bh - tilt * 4 * u]])
        cv2.line(img, tuple(np.rint(_rot(b, (cx, cy), roll)[0] * 16).astype(int)),
                 tuple(np.rint(_rot(b, (cx, cy), roll)[1] * 16).astype(int)), _col(hair * 0.7),
                 max(int(rng.uniform(1.5, 3) * u), 1), cv2.LINE_AA, 4)
    # Nose.
    nose_len = rng.uniform(12, 17) * u
    nw = rng.uniform(3, 5) * u
    nose = np.array([[fx + yaw * 2 * u, eye_y + 2 * u], [fx - nw + yaw * 3 * u, eye_y + nose_len],
                     [fx + nw + yaw * 3 * u, eye_y + nose_len]])
    _poly(img, _rot(nose, (cx, cy), roll), _col(skin * 0.78))
    # Mouth: width and opening vary.
    my = eye_y + rng.uniform(24, 28) * u
    mw = rng.uniform(7, 13) * u
    mo = rng.uniform(0.0, 1.0) ** 1.5 * 7 * u
    smile = rng.uniform(-2, 3) * u
    mouth_c = _rot(np.array([[fx + yaw * 3 * u, my]]), (cx, cy), roll)[0]
    lips = skin * np.array([0.85, 0.5, 0.5]) * rng.uniform(0.8, 1.05)
    if mo > 1 * u:
        _ellipse(img, mouth_c, (mw, mo + 1.5 * u), deg, _col(lips))
        _ellipse(img, mouth_c, (mw * 0.85, mo), deg, (40, 20, 25))
        if mo > 3 * u:
            _ellipse(img, mouth_c - np.array([0, mo * 0.55]), (mw * 0.6, mo * 0.3), deg, (235, 235, 225))
    else:
        arc = np.array([[fx + yaw * 3 * u + x, my - smile * (1 - (x / mw) ** 2)] for x in np.linspace(-mw, mw, 12)])
        _poly(img, _rot(arc, (cx, cy), roll), _col(lips * 0.8), closed=False, thickness=max(int(2.2 * u), 1))

    # Lighting: a soft directional gradient over the whole portrait.
    ang = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S - 0.5
    light = 1 + rng.uniform(0.05, 0.3) * (math.cos(ang) * xx + math.sin(ang) * yy) * 2
    img = img * light[..., None]
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_batch(seeds, size: int = 128) -> np.ndarray:
    return np.stack([render_face(int(s), size) for s in seeds])


def grid(images: np.ndarray, cols: int) -> np.ndarray:
    n, h, w, c = images.shape
    rows = math.ceil(n / cols)
    out = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, im in enumerate(images):
        out[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = im
    return out
