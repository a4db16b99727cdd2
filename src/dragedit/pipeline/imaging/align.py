"""Alignment: the chosen face's FFHQ crop (from its dlib landmarks, `faces.py`) and the exact photo <-> crop
transform.

The FFHQ recipe (see ALGORITHMS.md) maps an oriented square `quad` around the face onto the output
square. We keep that map as a 3x3 matrix in pixel-centre coordinates (pixel (col, row) has its
centre at (x, y) = (col, row)), and resample with OpenCV: area-shrink for large faces, reflect +
blur padding outside the photo as FFHQ does, a bilinear warp at 2x and an area downsample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dragedit.common.errors import UserError
from .faces import choose_face, find_faces
from .geometry import map_points
from .photo import Photo


@dataclass
class AlignConfig:
    size: int = 512  # the generator's resolution
    face: int = 0  # which face in `face_order`: 0 = largest
    face_at: tuple[float, float] | None = None  # instead of `face`: the face whose box holds this photo point
    detect_max_side: int = 1600  # photos larger than this are detected on a downscaled copy
    min_score: float = 0.3  # weaker dlib detections are dropped unless they are all there is
    pad_outside: bool = True  # FFHQ reflect + blur padding where the quad leaves the photo

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if d["face_at"] is None:
            d.pop("face_at")  # keeps the cache keys of sessions made before `face_at` existed
        else:
            d["face_at"] = [float(v) for v in d["face_at"]]
        return d


@dataclass
class Alignment:
    crop: np.ndarray  # size x size x 3 uint8
    inside: np.ndarray  # size x size float32 in [0, 1]: how much of each crop pixel came from inside the photo
    photo_to_crop: np.ndarray  # 3x3
    crop_size: int
    landmarks: np.ndarray  # 68 x 2, photo pixels
    face_box: list[float]  # left, top, right, bottom (photo pixels)
    faces: list[dict[str, Any]]  # every face found, largest first
    face_index: int
    quad: np.ndarray  # 4 x 2 photo pixels: top-left, bottom-left, bottom-right, top-right of the crop
    photo_size: tuple[int, int]

    @property
    def crop_to_photo(self) -> np.ndarray:
        return np.linalg.inv(self.photo_to_crop)

    def to_json(self) -> dict[str, Any]:
        return {"photo_to_crop": self.photo_to_crop.tolist(), "crop_to_photo": self.crop_to_photo.tolist(),
                "crop_size": self.crop_size, "landmarks": self.landmarks.tolist(), "face_box": self.face_box,
                "faces": self.faces, "face_index": self.face_index, "quad": self.quad.tolist(),
                "photo_size": list(self.photo_size)}


def ffhq_quad(lm: np.ndarray) -> np.ndarray:
    """The FFHQ recipe's oriented square (top-left, bottom-left, bottom-right, top-right)."""
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def crop_to_photo_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """Crop pixel centres -> photo pixel centres, as FFHQ's `QUAD` transform of `quad + 0.5` does."""
    ex = (quad[3] - quad[0]) / size
    ey = (quad[1] - quad[0]) / size
    origin = quad[0] + 0.5 * (ex + ey)
    return np.array([[ex[0], ey[0], origin[0]], [ex[1], ey[1], origin[1]], [0.0, 0.0, 1.0]])


def _pad_like_ffhq(window: np.ndarray, pads: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """Reflect-pad, then blur and fade to the median towards the outer edge (FFHQ's padding)."""
    left, top, right, bottom = pads
    img = np.pad(window.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = img.shape[:2]
    y, x = np.ogrid[:h, :w]
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = 1.0 - np.minimum(np.float32(x) / max(left, 1e-9), np.float32(w - 1 - x) / max(right, 1e-9))
        my = 1.0 - np.minimum(np.float32(y) / max(top, 1e-9), np.float32(h - 1 - y) / max(bottom, 1e-9))
    mask = np.maximum(np.nan_to_num(mx), np.nan_to_num(my))[..., None]
    sigma = max(qsize * 0.02, 0.5)
    blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    img += (blurred - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
    return img


def warp_crop(pixels: np.ndarray, crop_to_photo: np.ndarray, size: int, pad_outside: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """Resample the photo onto the crop grid; also return the fraction of each crop pixel inside the photo."""
    h, w = pixels.shape[:2]
    corners = map_points(crop_to_photo, [[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5], [size - 0.5, -0.5]])
    qsize = float(np.hypot(*(corners[3] - corners[0])))
    scale = qsize / size  # photo pixels per crop pixel
    shrink = max(int(math.floor(scale / 2)), 1)
    to_work = np.eye(3)
    work = pixels
    if shrink > 1:  # area-average large faces first (FFHQ's shrink step); keep the exact map
        nw, nh = max(1, round(w / shrink)), max(1, round(h / shrink))
        work = cv2.resize(pixels, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / w, nh / h
        to_work = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])
    wc = map_points(to_work, corners)
    border = max(int(np.rint(qsize / shrink * 0.1)), 3)
    x0, y0 = int(np.floor(wc[:, 0].min())) - border, int(np.floor(wc[:, 1].min())) - border
    x1, y1 = int(np.ceil(wc[:, 0].max())) + border + 1, int(np.ceil(wc[:, 1].max())) + border + 1
    wh, ww = work.shape[:2]
    pads = (max(-x0, 0), max(-y0, 0), max(x1 - ww, 0), max(y1 - wh, 0))
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, ww), min(y1, wh)
    if cx0 >= cx1 or cy0 >= cy1:
        raise UserError("the face crop lies entirely outside the photo")
    window = work[cy0:cy1, cx0:cx1]
    valid = np.ones(window.shape[:2], np.float32)
    if any(pads):
        limit = [min(p, s - 1) for p, s in zip(pads, (window.shape[1], window.shape[0]) * 2)]
        if pad_outside and min(window.shape[:2]) > 1:
            # np.pad reflect cannot pad past the window size; larger pads fall back to replicate edges.
            if limit == list(pads):
                window = _pad_like_ffhq(window, pads, qsize / shrink)
            else:
                window = cv2.copyMakeBorder(window.astype(np.float32), pads[1], pads[3], pads[0], pads[2],
                                            cv2.BORDER_REPLICATE)
        else:
            window = cv2.copyMakeBorder(window.astype(np.float32), pads[1], pads[3], pads[0], pads[2],
                                        cv2.BORDER_CONSTANT, value=0)
        valid = cv2.copyMakeBorder(valid, pads[1], pads[3], pads[0], pads[2], cv2.BORDER_CONSTANT, value=0)
    window = window.astype(np.float32)
    to_window = np.array([[1, 0, pads[0] - cx0], [0, 1, pads[1] - cy0], [0, 0, 1.0]]) @ to_work
    super_to_crop = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1.0]])  # 2x grid -> crop grid
    m = (to_window @ crop_to_photo @ super_to_crop)[:2]
    big = cv2.warpAffine(window, m, (2 * size, 2 * size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    vbig = cv2.warpAffine(valid, m, (2 * size, 2 * size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crop = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    inside = cv2.resize(vbig, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8), np.clip(inside, 0, 1).astype(np.float32)


def align_photo(photo: Photo | np.ndarray, config: AlignConfig | None = None) -> Alignment:
    """Find the chosen face and produce its FFHQ-aligned crop and the exact transform."""
    cfg = config or AlignConfig()
    pixels = photo.pixels if isinstance(photo, Photo) else np.ascontiguousarray(photo)
    if cfg.size < 16 or cfg.size & (cfg.size - 1):
        raise UserError(f"crop size must be a power of two >= 16 (the generator's resolution), not {cfg.size}")
    faces = find_faces(pixels, cfg.detect_max_side, cfg.min_score)
    index = choose_face(faces, cfg.face, cfg.face_at)
    chosen = faces[index]
    lm = np.array(chosen["landmarks"])
    quad = ffhq_quad(lm)
    c2p = crop_to_photo_matrix(quad, cfg.size)
    crop, inside = warp_crop(pixels, c2p, cfg.size, cfg.pad_outside)
    h, w = pixels.shape[:2]
    return Alignment(crop, inside, np.linalg.inv(c2p), cfg.size, lm, chosen["box"],
                     [{"box": f["box"], "score": f["score"], "landmarks": f["landmarks"]} for f in faces], index, quad,
                     (w, h))


ALIGNED_NAME, ALIGNMENT_JSON, INSIDE_NAME = "aligned.png", "alignment.json", "inside_mask.png"


def write_alignment(al: Alignment, out_dir: str | Path) -> dict[str, Path]:
    """Artifacts of the stage; each file is written atomically, the JSON last."""
    from dragedit.common import atomic
    from dragedit.common.images import save_image

    out = Path(out_dir)
    paths = {"aligned": out / ALIGNED_NAME, "inside_mask": out / INSIDE_NAME, "alignment": out / ALIGNMENT_JSON}
    save_image(al.crop, paths["aligned"])
    save_image(np.clip(np.rint(al.inside * 255), 0, 255).astype(np.uint8), paths["inside_mask"])
    atomic.write_json(paths["alignment"], {**al.to_json(), "files": {"aligned": ALIGNED_NAME,
                                                                     "inside_mask": INSIDE_NAME}})
    return paths


def read_alignment(folder: str | Path) -> Alignment:
    from PIL import Image

    folder = Path(folder)
    try:
        meta = __import__("json").loads((folder / ALIGNMENT_JSON).read_text())
        crop = np.asarray(Image.open(folder / ALIGNED_NAME).convert("RGB"))
        inside = np.asarray(Image.open(folder / INSIDE_NAME), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder} holds no complete alignment ({exc}); align again") from None
    return Alignment(crop, inside, np.array(meta["photo_to_crop"]), int(meta["crop_size"]), np.array(meta["landmarks"]),
                     meta["face_box"], meta["faces"], int(meta["face_index"]), np.array(meta["quad"]),
                     tuple(meta["photo_size"]))
