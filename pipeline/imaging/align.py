"""Alignment stage: dlib face detection + 68 landmarks, FFHQ crop, exact photo <-> crop transform.

The FFHQ recipe (see ALGORITHMS.md) maps an oriented square `quad` around the face onto the output
square. We keep that map as a 3x3 matrix in pixel-centre coordinates (pixel (col, row) has its
centre at (x, y) = (col, row)), and resample with OpenCV: area-shrink for large faces, reflect +
blur padding outside the photo as FFHQ does, a bilinear warp at 2x and an area downsample.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dragedit.fileio.errors import FieldError, UserError
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


FACE_ORDER = "largest box area on the full-resolution photo first, equal areas left to right"


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


def landmark_model_path() -> Path:
    """The 68-point model inside the face_recognition_models package."""
    return face_model_path("shape_predictor_68_face_landmarks.dat")


def face_model_path(filename: str) -> Path:
    """A dlib model file shipped in face_recognition_models, found without importing the package (its
    import needs pkg_resources, which current setuptools no longer provides)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the face_recognition_models package is missing; pip install face_recognition_models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise UserError(f"dlib model {filename} not found at {path}; reinstall face_recognition_models")
    return path


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


def detect_faces(pixels: np.ndarray, detect_max_side: int = 1600, min_score: float = 0.3) -> list[dict[str, Any]]:
    """All frontal faces in `FACE_ORDER`, boxes in full-resolution photo pixels."""
    detector, _ = _dlib_models()
    h, w = pixels.shape[:2]
    scale = min(1.0, detect_max_side / max(h, w))
    small = pixels if scale == 1.0 else cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                   interpolation=cv2.INTER_AREA)
    sx, sy = w / small.shape[1], h / small.shape[0]
    # HOG finds faces from about 80 px; small photos are searched at 2x as well.
    rects, scores = [], []
    for upsample in ((1,) if max(small.shape[:2]) <= 1024 else (0, 1)):
        rects, scores, _ = detector.run(np.ascontiguousarray(small), upsample, 0.0)
        if len(rects):
            break
    faces = [{"box": [r.left() * sx, r.top() * sy, (r.right() + 1) * sx, (r.bottom() + 1) * sy], "score": float(s)}
             for r, s in zip(rects, scores)]
    strong = [f for f in faces if f["score"] >= min_score]
    faces = strong or faces
    return order_faces(faces)


def order_faces(faces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`FACE_ORDER`: largest box area first, equal areas left to right (what `--face N` counts)."""
    return sorted(faces, key=lambda f: (-round((f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]), 6),
                                        f["box"][0]))


def landmarks_68(pixels: np.ndarray, box: list[float]) -> np.ndarray:
    import dlib

    _, predictor = _dlib_models()
    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
    shape = predictor(pixels, rect)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)


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
    faces = find_faces(pixels, cfg)
    index = choose_face(faces, cfg)
    chosen = faces[index]
    lm = np.array(chosen["landmarks"])
    quad = ffhq_quad(lm)
    c2p = crop_to_photo_matrix(quad, cfg.size)
    crop, inside = warp_crop(pixels, c2p, cfg.size, cfg.pad_outside)
    h, w = pixels.shape[:2]
    return Alignment(crop, inside, np.linalg.inv(c2p), cfg.size, lm, chosen["box"],
                     [{"box": f["box"], "score": f["score"]} for f in faces], index, quad, (w, h))


class NoFaceError(UserError):
    """The photo has no face dlib can find (a batch skips such photos rather than failing them)."""


class FaceChoiceError(FieldError):
    """The face asked for is not there (`face` past the last face, `face_at` on no face)."""


def find_faces(pixels: np.ndarray, config: AlignConfig | None = None) -> list[dict[str, Any]]:
    """Every face in `FACE_ORDER`, each with its box, score and 68 landmarks (photo pixels)."""
    cfg = config or AlignConfig()
    faces = detect_faces(pixels, cfg.detect_max_side, cfg.min_score)
    if not faces:
        raise NoFaceError("no face found in the photo; use a photo with a clearly visible, roughly frontal face")
    for f in faces:
        f["landmarks"] = landmarks_68(pixels, f["box"]).tolist()
    return faces


def choose_face(faces: list[dict[str, Any]], config: AlignConfig) -> int:
    """The index of the face `config` asks for: `face_at` (the box holding that point, the one whose centre
    is nearest if boxes overlap) or `face` (a position in `FACE_ORDER`)."""
    if config.face_at is not None:
        x, y = config.face_at
        holding = [i for i, f in enumerate(faces) if f["box"][0] <= x <= f["box"][2] and f["box"][1] <= y <= f["box"][3]]
        if not holding:
            raise FaceChoiceError("face_at", f"{x:g},{y:g}", f"on none of the {len(faces)} face(s) found; "
                                  "`dragedit preview PHOTO` shows their boxes")
        return min(holding, key=lambda i: np.hypot(x - (faces[i]["box"][0] + faces[i]["box"][2]) / 2,
                                                   y - (faces[i]["box"][1] + faces[i]["box"][3]) / 2))
    if not 0 <= config.face < len(faces):
        raise FaceChoiceError("face", config.face, f"only {len(faces)} face(s) found (0 = largest; "
                              "`dragedit preview PHOTO` numbers them)")
    return config.face


ALIGNED_NAME, ALIGNMENT_JSON, INSIDE_NAME = "aligned.png", "alignment.json", "inside_mask.png"


def write_alignment(al: Alignment, out_dir: str | Path) -> dict[str, Path]:
    """Artifacts of the stage; each file is written atomically, the JSON last."""
    from dragedit.fileio import atomic
    from dragedit.fileio.images import save_image

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
        raise UserError(f"{folder} holds no complete alignment ({exc}); run `dragedit align` again") from None
    return Alignment(crop, inside, np.array(meta["photo_to_crop"]), int(meta["crop_size"]), np.array(meta["landmarks"]),
                     meta["face_box"], meta["faces"], int(meta["face_index"]), np.array(meta["quad"]),
                     tuple(meta["photo_size"]))
