"""Reading a person's photo: any common format, EXIF orientation applied, metadata kept for the output."""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dragedit.common.errors import UserError, one_line

MIN_SIDE = 16


@dataclass
class Photo:
    """RGB pixels in display orientation plus what the final output must carry over."""

    pixels: np.ndarray  # H x W x 3 uint8, EXIF orientation applied
    exif: bytes | None  # EXIF with the orientation tag reset to 1
    icc_profile: bytes | None
    source_format: str | None
    path: Path | None = None
    jpeg: dict | None = None  # a JPEG source's quantisation tables and chroma subsampling
    alpha: np.ndarray | None = None  # H x W uint8 when the source has transparency; kept bit for bit
    straight: np.ndarray | None = None  # the RGB under the alpha, before flattening onto white
    bits: int = 8  # bits per channel in the source (the output has 8)
    frames: int = 1  # an animated GIF or WebP has more; only the first is edited
    source_mode: str = "RGB"  # Pillow's mode of the source ("CMYK" for a print JPEG: the output is RGB)

    def conversion_notes(self, output_name: str) -> list[str]:
        """What writing this photo's edit as `output_name` leaves out, each said in one note."""
        name = Path(self.path).name if self.path else "the photo"
        notes = []
        if self.frames > 1:
            notes.append(f"note: {name} is animated ({self.frames} frames); only its first frame is edited, and "
                         f"{output_name} holds that frame")
        if self.source_mode == "CMYK":
            notes.append(f"note: {name} is CMYK; {output_name} is written as RGB")
        return notes

    def output_pixels(self, rgb: np.ndarray | None = None) -> np.ndarray:
        """What an output holds: `rgb` (default: the photo's own colours) plus the source's alpha, if any."""
        rgb = (self.straight if self.straight is not None else self.pixels) if rgb is None else rgb
        if self.alpha is None:
            return rgb
        return np.dstack([rgb, self.alpha])

    @property
    def color(self) -> np.ndarray:
        """The RGB an edit moves: the straight colours under the alpha where there is one."""
        return self.straight if self.straight is not None else self.pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def jpeg_settings(self, output: str | os.PathLike) -> dict:
        """Save options that keep a JPEG source's quality and subsampling when the output is a JPEG too."""
        if self.jpeg is None or Path(output).suffix.lower() not in (".jpg", ".jpeg"):
            return {}
        return dict(self.jpeg)


def _to_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        gray = np.clip(np.rint(arr / hi * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(arr * (255.0 if arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


FORMATS = "a JPEG, PNG, WebP, TIFF, HEIC or AVIF photo"


@functools.lru_cache(maxsize=1)
def register_plugins() -> bool:
    """HEIC/HEIF, as iPhones save them, through pillow-heif (AVIF is Pillow's own); False without it."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def load_photo(path: str | os.PathLike) -> Photo:
    """Open, fully decode and normalise a photo; every failure is a one-line UserError."""
    path = Path(path)
    heif = register_plugins()
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a photo; pass {FORMATS}")
    if not path.is_file():
        raise UserError(f"photo not found: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes); pass {FORMATS}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                fmt = img.format
                frames, mode = getattr(img, "n_frames", 1), img.mode
                icc = img.info.get("icc_profile")
                jpeg = _jpeg_settings(img) if fmt == "JPEG" else None
                img = ImageOps.exif_transpose(img)
                exif = img.getexif()
                exif_bytes = exif.tobytes() if len(exif) else None
                pixels = _to_rgb8(img)
                alpha, straight = _alpha(img)
                bits = _bits_per_channel(img, fmt, path)
    except PermissionError:
        raise UserError(f"{path}: permission denied; make the photo readable (chmod) or copy it") from None
    except UnidentifiedImageError:
        if not heif and path.suffix.lower() in (".heic", ".heif"):
            raise UserError(f"{path} is HEIC, which needs pillow-heif: pip install pillow-heif") from None
        raise UserError(f"{path} is not an image Pillow can read; pass {FORMATS}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{path} is too large to process safely (decompression bomb check)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path} could not be decoded ({one_line(exc)}); the file may be truncated or corrupt") from None
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise UserError(f"{path} is only {w}x{h} pixels; a photo with a visible face is needed")
    return Photo(np.ascontiguousarray(pixels), exif_bytes, icc, fmt, path, jpeg, alpha, straight, bits, frames, mode)


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _alpha(img: Image.Image) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(alpha, straight RGB) of an image with transparency; (None, None) otherwise."""
    if not _has_alpha(img):
        return None, None
    rgba = np.asarray(img.convert("RGBA"))
    return np.ascontiguousarray(rgba[..., 3]), np.ascontiguousarray(rgba[..., :3])


def _bits_per_channel(img: Image.Image, fmt: str | None, path: Path) -> int:
    """16 for 16-bit sources (Pillow reads 48/64-bit PNGs as 8-bit RGB(A) without saying so)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        return 16
    if fmt == "PNG":
        with open(path, "rb") as fh:
            head = fh.read(25)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 25 and head[24] == 16:
            return 16
    if fmt == "TIFF":
        bps = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
        if bps and max(bps if isinstance(bps, tuple) else (bps,)) > 8:
            return 16
    return 8


def _jpeg_settings(img: Image.Image) -> dict | None:
    from PIL import JpegImagePlugin

    qtables = getattr(img, "quantization", None)
    if not qtables:
        return None
    sampling = JpegImagePlugin.get_sampling(img)
    out = {"qtables": [list(qtables[k]) for k in sorted(qtables)]}
    if sampling >= 0:
        out["subsampling"] = sampling
    return out
