"""Conversions between generator tensors, numpy arrays and Pillow images; atomic image writes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .atomic import write_with
from .errors import UserError

SUFFIX_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".avif": "AVIF"}
LOSSY_ONLY = (".heic", ".heif")  # phone photos dragedit reads but does not write: their edit is written as JPEG


def edited_suffix(suffix: str) -> str:
    """The suffix an edit of a photo with `suffix` is written with by default: its own where dragedit writes it,
    JPEG for HEIC/HEIF (lossy like them), else PNG (lossless, for .bmp or .gif)."""
    s = suffix.lower()
    return s if s in SUFFIX_FORMATS else ".jpg" if s in LOSSY_ONLY else ".png"


def tensor_to_uint8(img: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] or [C, H, W] in about [-1, 1] -> HxWxC uint8, rounding as the official tools do."""
    if img.ndim == 4:
        img = img[0]
    return (img.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def uint8_to_tensor(arr: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 uint8 -> [1, 3, H, W] float in [-1, 1] (the inverse of tensor_to_uint8 up to rounding)."""
    t = torch.from_numpy(np.array(arr, copy=True)).to(device=device, dtype=torch.float32)
    return (t.permute(2, 0, 1).unsqueeze(0) - 127.5) / 127.5


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise UserError(f"cannot write {path}: unknown image suffix {suffix or '(none)'}; "
                        f"use one of {', '.join(sorted(SUFFIX_FORMATS))}")
    return SUFFIX_FORMATS[suffix]


def check_writable(path: str | os.PathLike) -> None:
    """Fail before any work if `path` cannot be written (a folder, bad suffix, missing or read-only folder)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name such as {path / 'edited.png'}")
    output_format(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: folder {parent} does not exist")
    try:
        read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise UserError(f"cannot write {path}: the file system is read-only; choose a folder you can write to")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {path}: permission denied; choose a folder you can write to")


def save_image(image: Image.Image | np.ndarray, path: str | os.PathLike, **save_kwargs) -> Path:
    """Write atomically in the format the suffix names (JPEG at quality 95 unless told otherwise)."""
    path = Path(path)
    fmt = output_format(path)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if fmt == "AVIF":
        save_kwargs.setdefault("quality", 90)
    if fmt == "JPEG":
        if "qtables" not in save_kwargs:
            save_kwargs.setdefault("quality", 95)
        if image.mode in ("RGBA", "LA"):  # no alpha in JPEG: flatten onto white, as the photo was read
            image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image.convert("RGBA"))
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
    save_kwargs = {k: v for k, v in save_kwargs.items() if v is not None}
    write_with(path, lambda tmp: image.save(tmp, format=fmt, **save_kwargs))  # OSErrors become one-line UserErrors
    return path
