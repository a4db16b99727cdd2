"""Edit requests: one model for `--drag` strings, edit files and web bodies (`EditRequest.from_json`), the
checks that need only the photo (run before any work), and the mapping of points and masks photo -> crop."""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PIL import Image, ImageOps

from dragedit.common.errors import FieldError, UserError
from dragedit.pipeline.imaging.anchors import AnchoredDrag, is_anchored, parse_anchored
from dragedit.pipeline.imaging.geometry import map_points
from dragedit.pipeline.imaging.regions import REGIONS, check_region

from .errors import RequestError
from .presets import DEFAULT_STRENGTH, check_strength, preset

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_DRAG_RE = re.compile(rf"^{_NUM},{_NUM}:{_NUM},{_NUM}$")


Drag = tuple[float, float, float, float]
MAX_DRAGS = 68  # handles in one edit: one per landmark is the most any face has use for


@dataclass
class EditRequest:
    """One drag edit on the photo: (x1, y1) -> (x2, y2) pairs in original-photo pixels, or handles anchored on
    a landmark (`AnchoredDrag`, resolved against the chosen face by `resolved`), and an optional mask file."""

    drags: list[Drag | AnchoredDrag]
    mask: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mask_region: str | None = None  # a face region (regions.REGIONS) as the movable mask, instead of a file

    def __post_init__(self) -> None:
        if isinstance(self.drags, (str, bytes)) or not isinstance(self.drags, (list, tuple)) or not all(
                isinstance(d, AnchoredDrag) or (isinstance(d, tuple) and len(d) == 4) for d in self.drags):
            raise RequestError("drags", None, "give a list of (x1, y1, x2, y2) tuples or anchored drags; "
                               "EditRequest.build(drags=[\"X1,Y1:X2,Y2\", ...]) parses strings")
        self.drags = list(self.drags)
        if self.mask is not None and not isinstance(self.mask, str):
            raise RequestError("mask", repr(self.mask), "give the mask file's path as a str")
        if not isinstance(self.extra, dict):
            raise RequestError("extra", repr(self.extra), "give a dict")
        if self.mask_region is not None:
            check_region(self.mask_region)
            if self.mask:
                raise UserError("give either a mask file or a mask region, not both")

    def to_dict(self) -> dict[str, Any]:
        out = {"drags": [d.spec if isinstance(d, AnchoredDrag) else list(d) for d in self.drags], "mask": self.mask}
        if self.mask_region:
            out["mask_region"] = self.mask_region
        return out

    @property
    def moves(self) -> bool:
        """Some drag goes somewhere (a preset at strength 0 moves nothing)."""
        for d in self.drags:
            if isinstance(d, AnchoredDrag):
                if d.dx or d.dy:
                    return True
            elif d[0] != d[2] or d[1] != d[3]:
                return True
        return False

    @property
    def anchored(self) -> bool:
        return any(isinstance(d, AnchoredDrag) for d in self.drags)

    @classmethod
    def build(cls, *, drags: Any = None, mask: str | os.PathLike | None = None, mask_region: Any = None,
              preset: Any = None, strength: Any = None) -> "EditRequest":
        """The one way every door makes a request, so one set of rules holds for the CLI, the library and JSON:
        drags ("X1,Y1:X2,Y2" or "@NAME:DX,DY" strings, or [x1, y1, x2, y2] lists) with an optional mask file or
        face region, or a named edit (`preset`, `strength`, optional region). Errors are `FieldError`s naming
        the field, for each door to word."""
        if mask_region is not None and not isinstance(mask_region, str):
            raise RequestError("mask_region", repr(mask_region), f"use one of {', '.join(REGIONS)}")
        if mask is not None and mask_region is not None:
            raise RequestError("mask", None, "give either a mask file or a mask region, not both")
        if preset is not None:
            if not isinstance(preset, str):
                raise RequestError("preset", repr(preset), "use a preset's name")
            if drags is not None or mask is not None:
                raise RequestError("preset", preset, "a preset comes without drags or a mask file (it has its own "
                                   "region; a mask region changes it)")
            return cls.from_preset(preset, DEFAULT_STRENGTH if strength is None else strength, mask_region)
        if strength is not None:
            raise RequestError("strength", strength, "goes with a preset")
        if isinstance(drags, (str, bytes)) or not isinstance(drags, (list, tuple)) or not drags:
            raise RequestError("drags", None, "give a non-empty list of \"X1,Y1:X2,Y2\" strings, \"@NAME:DX,DY\" "
                               "anchors or [x1, y1, x2, y2] lists")
        if len(drags) > MAX_DRAGS:
            raise RequestError("drags", None, f"{len(drags)} drags in one edit; use at most {MAX_DRAGS}")
        if mask is not None and not isinstance(mask, (str, os.PathLike)):
            raise RequestError("mask", repr(mask), "use the path of a mask image")
        if mask_region is not None:
            check_region(mask_region)
        return cls([parse_drag_item(d) for d in drags], str(mask) if mask is not None else None,
                   mask_region=mask_region)

    @classmethod
    def from_json(cls, obj: Any, where: str, mask: Callable[[Any], str | None]) -> "EditRequest":
        """One edit as JSON (an edit file's entry, a web body): `{"drags": [...], "mask": ..., "mask_region":
        ...}` or `{"preset": NAME, "strength": S, "mask_region": ...}`, through `build`; `mask(value)` turns
        the mask field into a file (a path in a file, a data URL on the web)."""
        if not isinstance(obj, dict):
            raise UserError(f"{where}: each edit must be an object with \"drags\"; expected {EDIT_FILE_SHAPE}")
        try:
            return cls.build(drags=obj.get("drags"), mask=mask(obj.get("mask")) if "preset" not in obj else
                             obj.get("mask"), mask_region=obj.get("mask_region"), preset=obj.get("preset"),
                             strength=obj.get("strength"))
        except FieldError as exc:
            raise UserError(f"{where}: {exc.worded(chr(34) + exc.field + chr(34))}") from None

    @classmethod
    def from_preset(cls, name: str, strength: float = DEFAULT_STRENGTH, mask_region: str | None = None) -> "EditRequest":
        """A named edit (`presets.py`), its offsets scaled by `strength`; `mask_region` replaces its region."""
        p = preset(name)
        drags = p.drags_at(strength)
        return cls(drags, None, {"preset": p.name, "strength": check_strength(strength)},
                   check_region(mask_region) if mask_region else p.mask_region)

    def resolved(self, landmarks: np.ndarray) -> "EditRequest":
        """The same edit with every drag in photo pixels (anchors on this face's 68 landmarks); the specs as
        written stay in `extra["drag_specs"]`."""
        if not self.anchored:
            return self
        drags = [d.resolve(landmarks) if isinstance(d, AnchoredDrag) else d for d in self.drags]
        return EditRequest(drags, self.mask, {**self.extra, "drag_specs": self.to_dict()["drags"]}, self.mask_region)


def request_list(value: Any) -> list[EditRequest]:
    """A list of edit requests as a library caller gives it, checked: a str, one request or a list holding
    anything else is a `RequestError` naming `requests`."""
    if isinstance(value, (str, bytes, EditRequest)) or not isinstance(value, (list, tuple)):
        raise RequestError("requests", repr(value)[:60], "give a list of edit requests "
                           "(edit_request(...) or EditRequest.build(...))")
    if not all(isinstance(r, EditRequest) for r in value):
        raise RequestError("requests", None, "every item must be an EditRequest (edit_request(...) makes one)")
    return list(value)


def parse_drag(spec: str) -> Drag | AnchoredDrag:
    """`X1,Y1:X2,Y2` in photo pixels, or `@NAME:DX,DY` anchored on a landmark (see anchors.py)."""
    if is_anchored(spec):
        return parse_anchored(spec)
    m = _DRAG_RE.match(spec)
    if not m:
        raise UserError(f"malformed drag {spec!r}; write it as X1,Y1:X2,Y2 (photo pixels), e.g. 210,330:215,318, "
                        "or anchored as @mouth_left:-4%,-8%")
    return tuple(float(v) for v in m.groups())  # type: ignore[return-value]


EDIT_FILE_SHAPE = ('{"edits": [{"drags": ["X1,Y1:X2,Y2", "@mouth_left:-4%,-8%", [x1, y1, x2, y2]], '
                   '"mask": "optional.png"}, {"preset": "smile", "strength": 0.7}]}')


def load_edit_file(path: str | os.PathLike) -> list[EditRequest]:
    """{"edits": [{"drags": ["X1,Y1:X2,Y2", "@NAME:DX,DY" or [x1, y1, x2, y2], ...], "mask": "m.png"}, ...]};
    paths relative to the file.

    Every problem is one line naming the edit and what is wrong with it."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise UserError(f"cannot read edit file {p}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"edit file {p} is not valid JSON ({exc}); expected {EDIT_FILE_SHAPE}") from None
    edits = data.get("edits") if isinstance(data, dict) else None
    if not isinstance(edits, list) or not edits:
        raise UserError(f"edit file {p} needs a non-empty list under \"edits\"; expected {EDIT_FILE_SHAPE}")
    out = []
    for n, e in enumerate(edits, 1):
        where = f"edit file {p}, edit {n}"
        out.append(EditRequest.from_json(e, where, lambda m: _mask_path(m, p, where)))  # called at once
    return out


def parse_drag_item(d: Any) -> Drag | AnchoredDrag:
    if isinstance(d, str):
        try:
            return parse_drag(d)
        except UserError as exc:
            raise RequestError("drags", None, str(exc)) from None
    if (isinstance(d, (list, tuple)) and len(d) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in d)):
        vals = tuple(float(v) for v in d)
        if all(math.isfinite(v) for v in vals):
            return vals  # type: ignore[return-value]
    shown = json.dumps(d) if isinstance(d, (list, tuple, int, float, type(None))) else repr(d)
    raise RequestError("drags", None, f"drag {shown} must be \"X1,Y1:X2,Y2\", \"@NAME:DX,DY\" or a list of 4 "
                       "finite numbers")


def _mask_path(mask: Any, edit_file: Path, where: str) -> str | None:
    if mask is None:
        return None
    if not isinstance(mask, str) or not mask:
        raise UserError(f"{where}: \"mask\" must be a file name (relative to the edit file)")
    path = (edit_file.parent / mask).resolve()
    if not path.is_file():
        raise UserError(f"{where}: mask file not found: {path}")
    return str(path)


def check_in_photo(requests: list[EditRequest], photo_size: tuple[int, int]) -> None:
    """Every pixel point inside the photo and every mask the photo's size with something marked: the checks
    that need no face, made before any work (anchored drags are checked once the face is found)."""
    for req in requests:
        for d in req.drags:
            if not isinstance(d, AnchoredDrag):
                _in_photo(d, photo_size)
        if req.mask:
            check_mask(req.mask, photo_size)


def _in_photo(drag: Drag, photo_size: tuple[int, int]) -> None:
    w, h = photo_size
    x1, y1, x2, y2 = drag
    for x, y in ((x1, y1), (x2, y2)):
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            raise UserError(f"point ({x:g}, {y:g}) is outside the {w}x{h} photo; give photo pixel coordinates")


def check_mask(path: str | os.PathLike, photo_size: tuple[int, int]) -> np.ndarray:
    """The mask as floats in [0, 1]: readable, the photo's size, something marked white."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the mask {Path(path).name}: {exc}") from None
    if (arr.shape[1], arr.shape[0]) != tuple(photo_size):
        raise UserError(f"the mask is {arr.shape[1]}x{arr.shape[0]} but the photo is {photo_size[0]}x{photo_size[1]}; "
                        "draw the mask at the photo's size")
    if not (arr > 0.5).any():
        raise UserError("the mask marks nothing; paint the region that may move in white")
    return arr


def points_to_crop(drags: list[Drag], photo_size: tuple[int, int],
                   photo_to_crop: np.ndarray, crop_size: int) -> tuple[list[list[float]], list[list[float]]]:
    """Handles and targets in crop pixels; points outside the photo or the face crop are user errors."""
    handles, targets = [], []
    for x1, y1, x2, y2 in drags:
        _in_photo((x1, y1, x2, y2), photo_size)
        c = map_points(photo_to_crop, [[x1, y1], [x2, y2]])
        for (x, y), (cx, cy) in zip(((x1, y1), (x2, y2)), c):
            if not (0 <= cx <= crop_size - 1 and 0 <= cy <= crop_size - 1):
                raise UserError(f"point ({x:g}, {y:g}) lies outside the aligned face crop; choose points on the face")
        handles.append(c[0].tolist())
        targets.append(c[1].tolist())
    return handles, targets


def check_on_face(requests: list[EditRequest], landmarks: np.ndarray, photo_size: tuple[int, int],
                  crop_size: int = 512) -> None:
    """Every drag of `requests` (anchors resolved on this face) inside the photo and the face's FFHQ crop, from
    the face's landmarks alone: what the recipe checks after alignment, for a door that knows the faces before
    (the server, at upload), so a request that cannot run is refused before a job starts."""
    from dragedit.pipeline.imaging.align import crop_to_photo_matrix, ffhq_quad

    photo_to_crop = np.linalg.inv(crop_to_photo_matrix(ffhq_quad(np.asarray(landmarks, np.float64)), crop_size))
    for req in requests:
        points_to_crop(req.resolved(np.asarray(landmarks, np.float64)).drags, photo_size, photo_to_crop, crop_size)


def mask_to_crop(path: str | os.PathLike, photo_size: tuple[int, int], crop_to_photo: np.ndarray,
                 crop_size: int) -> np.ndarray:
    """A movable-region mask drawn on the photo (white = may move) -> binary crop mask."""
    arr = check_mask(path, photo_size)
    m = cv2.warpAffine(arr, crop_to_photo[:2], (crop_size, crop_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    m = (m > 0.5).astype(np.float32)
    if m.sum() == 0:
        raise UserError(f"the mask {Path(path).name} marks nothing inside the face crop; paint the region that may move in white")
    return m
