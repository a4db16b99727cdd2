"""Shared by the benchmarks and evaluations: each case in a fresh process (its peak memory its own), the
photos of a folder argument, and dlib's own models for measuring outputs with tools that are not dragedit's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def run_isolated(script: str, cases: list[str], args: list[str]) -> list[dict]:
    """`python SCRIPT --case CASE ARGS...` for each case; each prints one JSON object."""
    rows = []
    for case in cases:
        cmd = [sys.executable, script, "--case", case, *args]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    return rows


def photos_in(folder: str) -> list[Path]:
    """The photos in `folder`, as `dragedit batch` reads a folder; a one-line exit where there is none."""
    from dragedit.common.errors import UserError
    from dragedit.pipeline.batch.run import collect_photos

    if not Path(folder).is_dir():
        raise SystemExit(f"{Path(sys.argv[0]).name}: {folder} is not a folder; give a folder of photos")
    try:
        return collect_photos([folder])
    except UserError as exc:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {exc}") from None


class Dlib:
    """dlib's own detector, landmark predictor and face-recognition ResNet (face_recognition_models)."""

    def __init__(self) -> None:
        import dlib

        from dragedit.pipeline.imaging.faces import face_model_path

        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(face_model_path("shape_predictor_68_face_landmarks.dat")))
        self.recognizer = dlib.face_recognition_model_v1(str(face_model_path("dlib_face_recognition_resnet_model_v1.dat")))
        self.dlib = dlib

    def faces(self, rgb: np.ndarray) -> list:
        return sorted(self.detector(rgb, 1), key=lambda r: -r.area())

    def shape(self, rgb: np.ndarray, rect):
        return self.predictor(rgb, rect)

    def landmarks(self, shape) -> np.ndarray:
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)

    def descriptor(self, rgb: np.ndarray, shape) -> np.ndarray:
        return np.array(self.recognizer.compute_face_descriptor(rgb, shape))

    def match(self, rgb: np.ndarray, box) -> object | None:
        """The detection in `rgb` that overlaps `box` most (IoU > 0.3)."""
        best, best_iou = None, 0.3
        for r in self.detector(rgb, 1):
            ix = max(0, min(r.right(), box.right()) - max(r.left(), box.left()))
            iy = max(0, min(r.bottom(), box.bottom()) - max(r.top(), box.top()))
            inter = ix * iy
            iou = inter / (r.area() + box.area() - inter)
            if iou > best_iou:
                best, best_iou = r, iou
        return best
