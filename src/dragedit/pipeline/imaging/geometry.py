"""Points between photo and crop: the 3x3 transforms alignment records, applied to pixel coordinates."""
from __future__ import annotations

import numpy as np


def map_points(matrix: np.ndarray, points: np.ndarray | list) -> np.ndarray:
    """Apply a 3x3 projective matrix to N x 2 points (pixel centres at integer coordinates)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(matrix, dtype=np.float64).T
    return h[:, :2] / h[:, 2:3]
