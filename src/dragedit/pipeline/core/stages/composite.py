"""The composite stage: an edit put back into the full-resolution photo (cached in the session), and the
output file written from it with the photo's EXIF, ICC profile, alpha and JPEG settings."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from safetensors.numpy import save_file as save_numpy

from dragedit.common import atomic
from dragedit.common.images import output_format, save_image
from dragedit.pipeline.imaging.geometry import map_points
from dragedit.pipeline.imaging.paste import CompositeConfig, blend_mask, paste_generated, warp_paste, warp_region
from dragedit.pipeline.imaging.photo import Photo

from .. import layout as L
from ..errors import RequestError
from ..originals import guard_original
from ..records import measured_anchors, repainted_points
from ..session import Session
from .align import alignment


@dataclass
class CompositeResult:
    """What the composite stage made for which edit, how much of the photo changed, and the file written."""

    edit: str
    output: str | None
    paste: str
    changed_pixels: int
    bbox: list[int] | None
    original_backup: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_composite(s: Session, name: str, photo: Photo, config: CompositeConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Edit `name` in the full-resolution photo (run or reused): (its pixels, the stage's manifest entry)."""
    if name == L.PIVOT:
        raise RequestError("edit", None, "nothing to composite: the session has no edits yet")
    al_entry, e = s.stages[L.ALIGN], s.stages[name]
    inputs = {"photo": al_entry["inputs"]["photo"], "edit": e["outputs"][L.out(name, L.EDIT_CROP)],
              "edit_info": e["outputs"][L.out(name, L.EDIT_INFO)],
              "reconstruction": s.stages[L.INVERT]["outputs"][L.INVERT_RECON],
              "alignment": al_entry["outputs"][L.ALIGNMENT]}
    out_png = s.path(L.composite_file(name, "edit"))
    entry = s.cached(L.composite_stage(name), inputs, config.to_dict(), lambda: _paste(s, name, photo, config, out_png))
    with Image.open(out_png) as img:
        return np.asarray(img), entry


def write_output(s: Session, name: str, pixels: np.ndarray, entry: dict[str, Any], photo: Photo,
                 output: str | os.PathLike, config: CompositeConfig, overwrite: bool) -> CompositeResult:
    """The edited photo at `output`, never over the photo itself unless `overwrite` (the original is then kept
    as PHOTO.orig)."""
    backup = save_edited_photo(pixels, photo, output, overwrite, s.warn)
    return CompositeResult(name, str(output), config.paste, int(entry.get("changed_pixels", 0)), entry.get("bbox"),
                           str(backup) if backup else None)


def save_edited_photo(pixels: np.ndarray, photo: Photo, output: str | os.PathLike, overwrite: bool,
                      warn: Callable[[str], None]) -> Path | None:
    """Write `pixels` as the edit of `photo` (its EXIF, ICC profile and JPEG settings); returns the backup of
    the original when `overwrite` replaced it."""
    backup = guard_original(output, photo.path, overwrite)
    if photo.bits > 8:
        warn(f"note: {Path(photo.path).name} has 16 bits per channel; {Path(output).name} is written with 8")
    for note in photo.conversion_notes(Path(output).name):
        warn(note)
    if photo.alpha is not None and output_format(output) == "JPEG":
        warn(f"note: JPEG has no transparency; {Path(output).name} is flattened onto white (use .png to keep it)")
    save_image(pixels, output, exif=photo.exif, icc_profile=photo.icc_profile, **photo.jpeg_settings(output))
    if backup is not None:
        warn(f"note: overwrote {photo.path}; the original is kept as {backup}")
    return backup


def _paste(s: Session, name: str, photo: Photo, cfg: CompositeConfig, out_png: Path) -> tuple[list[Path], dict]:
    """The composite stage's work: the edited photo (and its field and masks) for edit `name`."""
    al = alignment(s)
    # Renders of a generator tuned below its resolution (PTI's max_resolution) come up to the crop's size.
    rendered = Image.open(s.path(name, L.EDIT_CROP)).convert("RGB")
    if cfg.paste == "generated" and rendered.size[0] < al.crop_size:
        s.warn(f"note: this session's generator was tuned at {rendered.size[0]} px for the warp paste; the generated "
               f"paste brings its renders up to {al.crop_size} px (an edit made with the generated paste renders at full size)")
    edited = _at_size(rendered, al.crop_size)
    recon = _at_size(Image.open(s.path(L.INVERT_RECON)).convert("RGB"), al.crop_size)
    lm_crop = map_points(al.photo_to_crop, al.landmarks)
    outputs = [out_png]
    if cfg.paste == "warp":
        info = s.edit_info(name)
        anchors = measured_anchors(info) if info.get("parent") == L.PIVOT else []
        chain = edit_chain(s, name)
        region = warp_region(lm_crop, al.inside, cfg, [(points, mask) for points, mask, _ in chain])
        paths = [path for _, _, edit_paths in chain for path in edit_paths]
        wp = warp_paste(photo.color, al.crop, recon, edited, region, al.photo_to_crop, anchors=anchors,
                        config=cfg, lost=repainted_points(info), drag_lost=info.get("stopped_by") == "lost",
                        paths=paths)
        result, stats = wp.photo, {**wp.stats, "anchors": len(anchors)}
        field_path = s.path(L.composite_file(name, "field", ".safetensors"))
        arrays = {"field": np.ascontiguousarray(wp.field), "confidence": wp.confidence, "region": region}
        atomic.write_with(field_path, lambda tmp: save_numpy(arrays, str(tmp)))
        gen_path = s.path(L.composite_file(name, "generated"))
        save_image(np.clip(np.rint(wp.generated * 255), 0, 255).astype(np.uint8), gen_path)
        outputs += [field_path, gen_path]
    else:
        mask = blend_mask(edited, recon, al.inside, lm_crop, cfg)
        result, stats = paste_generated(photo.color, edited, mask, al.photo_to_crop)
        mask_path = s.path(L.composite_file(name, "mask"))
        save_image(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), mask_path)
        outputs.append(mask_path)
    save_image(photo.output_pixels(result), out_png)  # the source's alpha, bit for bit
    return outputs, {"edit": name, **stats}


def _at_size(img: Image.Image, size: int) -> np.ndarray:
    return np.asarray(img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BICUBIC))


def edit_chain(s: Session, name: str) -> list[tuple[list[list[float]], np.ndarray | None, list]]:
    """(handles + targets, movable mask or None, (handle, target) pairs) in crop pixels of `name` and each
    edit it was built on."""
    chain = []
    while name != L.PIVOT:
        info = s.edit_info(name)
        mask = None
        if info.get("mask") and s.path(name, L.EDIT_MASK).is_file():
            mask = np.asarray(Image.open(s.path(name, L.EDIT_MASK)).convert("L"), np.float32) / 255.0
        chain.append((info["handles_crop"] + info["targets_crop"], mask,
                      list(zip(info["handles_crop"], info["targets_crop"]))))
        name = info["parent"]
    return chain
