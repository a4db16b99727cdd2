"""An independent check of where the handles went: Lucas-Kanade tracking on the rendered images.

DragGAN's tracker is a nearest-neighbour search on generator features. On flat or repetitive
regions it can jump to a look-alike pixel and report arrival while the picture moved elsewhere.
Pyramidal LK on the RGB renders (upsampled, so a 128 px generator gets enough pixels per window)
shares no code or signal with that tracker, so the two disagreeing is a reliable sign of a lost handle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
import torch

from dragedit.common.images import tensor_to_uint8

MIN_SIDE = 512  # renders are upsampled to at least this many pixels before tracking


@dataclass
class Measured:
    """LK positions of the handles in the later image ([[x, y], ...] image pixels) and whether LK trusts them."""

    points: list[list[float]]
    ok: list[bool]


def to_gray(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """A generator image ([1, 3, H, W] in about [-1, 1]) or an HxWx3 uint8 array -> HxW uint8 gray."""
    if isinstance(img, torch.Tensor):
        img = tensor_to_uint8(img)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)


def lk_track(before: torch.Tensor | np.ndarray, after: torch.Tensor | np.ndarray, points: list[list[float]],
             window: int = 41, fb_tolerance: float = 1.0) -> Measured:
    """Where each point of `before` ([[x, y], ...]) is found in `after`, by LK on upsampled gray images.

    A point is `ok` when LK converged and tracking it back lands within `fb_tolerance` image pixels of
    where it started (forward-backward check).
    """
    g0, g1 = to_gray(before), to_gray(after)
    size = g0.shape[0]
    up = max(1, int(np.ceil(MIN_SIDE / size)))
    if up > 1:
        g0 = cv2.resize(g0, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
        g1 = cv2.resize(g1, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
    # Pixel centres: x_up = (x + 0.5) * up - 0.5.
    p0 = ((np.asarray(points, np.float32).reshape(-1, 1, 2) + 0.5) * up - 0.5).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 0.01)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, p0, None, winSize=(window, window), maxLevel=3, criteria=crit)
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, None, winSize=(window, window), maxLevel=3, criteria=crit)
    back_err = np.linalg.norm((p0b - p0).reshape(-1, 2), axis=1) / up
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (back_err <= fb_tolerance)
    pts = ((p1.reshape(-1, 2).astype(np.float64) + 0.5) / up - 0.5)
    return Measured(pts.tolist(), [bool(v) for v in ok])


@dataclass
class ArrivalCheck:
    """The drag's independent check, and what it found over the whole drag.

    `check` LK-locates the handles (start render -> now). A tracker point LK places more than `tolerance` px
    away is moved to LK's position and `renew(j)` gives it a new feature template there (FreeDrag's
    template update: otherwise the tracker snaps straight back to the look-alike it had locked onto), at
    most `max_recoveries` times per handle. After that, or where LK cannot find the handle's patch at all
    (the generator repainted rather than moved it), the handle is flagged lost. On a mere jump an LK
    failure proves nothing, so it is ignored then.
    """

    start_xy: list[list[float]]  # exact handle positions in the start image, [[x, y], ...]
    start_image: Callable[[], torch.Tensor]
    tolerance: float
    max_recoveries: int
    resolution: int
    lost: list[bool] = field(init=False)
    recoveries: list[int] = field(init=False)
    events: list[dict[str, Any]] = field(default_factory=list)
    measured: Measured | None = None
    _image0: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.lost = [False] * len(self.start_xy)
        self.recoveries = [0] * len(self.start_xy)

    def check(self, reason: str, step: int, now: torch.Tensor, points: list[list[int]],
              renew: Callable[[int], None], recover: bool = True) -> list[int]:
        """Check `points` ([row, col], moved in place) against LK; returns the handles moved."""
        if self._image0 is None:
            self._image0 = self.start_image()
        scale = now.shape[-1] / self.resolution  # the renders may be smaller than the points' image
        if scale == 1:
            self.measured = m = lk_track(self._image0, now, self.start_xy)
        else:
            m = lk_track(self._image0, now, [[(v + 0.5) * scale - 0.5 for v in p] for p in self.start_xy])
            self.measured = m = Measured([[(v + 0.5) / scale - 0.5 for v in p] for p in m.points], m.ok)
        moved = []
        for j, lk_xy in enumerate(m.points):
            gap = math.hypot(lk_xy[0] - points[j][1], lk_xy[1] - points[j][0])
            if self.lost[j] or gap <= self.tolerance:
                continue
            event = {"step": step, "handle": j, "reason": reason, "gap_px": gap, "lk_ok": m.ok[j],
                     "tracker": [float(points[j][1]), float(points[j][0])], "lk": lk_xy}
            if m.ok[j] and recover and self.recoveries[j] < self.max_recoveries:
                self.recoveries[j] += 1
                last = self.resolution - 1
                points[j] = [min(max(round(lk_xy[1]), 0), last), min(max(round(lk_xy[0]), 0), last)]
                renew(j)
                moved.append(j)
                self.events.append({**event, "event": "recovered"})
            elif m.ok[j] or reason != "jump":
                self.lost[j] = True
                self.events.append({**event, "event": "lost"})
        return moved
