"""The session folder's layout: stage names and artifact paths, spelled here and nowhere else.

    SESSION/session.json                 manifest (stages, keys, output hashes)
    SESSION/align/                       aligned.png, alignment.json, inside_mask.png
    SESSION/invert/                      pivot, tuned-generator delta, reconstructions, metrics
    SESSION/edits/NNN/                   ws.safetensors, crop.png, edit.json, mask.png (one folder per drag edit)
    SESSION/composite/edit-NNN.png       the edit in the full-resolution photo, and its field/masks
"""
from __future__ import annotations

from dragedit.pipeline.imaging.align import ALIGNED_NAME, ALIGNMENT_JSON

ALIGN, INVERT, EDITS, COMPOSITE = "align", "invert", "edits", "composite"
PIVOT = "pivot"  # an edit's parent when it starts from the inversion's pivot rather than another edit
FOLDERS = (ALIGN, INVERT, EDITS, COMPOSITE)
EDIT_WS, EDIT_CROP, EDIT_INFO, EDIT_MASK = "ws.safetensors", "crop.png", "edit.json", "mask.png"


def out(stage: str, name: str) -> str:
    """The manifest's key for an artifact: its path relative to the session."""
    return f"{stage}/{name}"


ALIGNED, ALIGNMENT = out(ALIGN, ALIGNED_NAME), out(ALIGN, ALIGNMENT_JSON)
# inversion.artifacts writes these files (spelled again here so that this module loads no torch; a test
# checks both spellings agree)
INVERT_FILES = {"pivot": "pivot.safetensors", "delta": "generator_delta.safetensors", "recon": "reconstruction.png",
                "metrics": "metrics.json"}
INVERT_PIVOT, INVERT_DELTA, INVERT_RECON, INVERT_METRICS = (out(INVERT, INVERT_FILES[k])
                                                            for k in ("pivot", "delta", "recon", "metrics"))


def edit_stage(number: int) -> str:
    return f"{EDITS}/{number:03d}"


def is_edit(stage: str) -> bool:
    return stage.startswith(EDITS + "/")


def edit_number(stage: str) -> int:
    return int(stage.split("/")[1])


def composite_stage(edit: str) -> str:
    return f"{COMPOSITE}/{edit_number(edit):03d}"


def composite_file(edit: str, kind: str, suffix: str = ".png") -> str:
    """composite/{kind}-NNN{suffix}: kind is edit (the photo), field, generated or mask."""
    return f"{COMPOSITE}/{kind}-{edit_number(edit):03d}{suffix}"


# A clip session: the keyframe's photo session inside it, then the clip's own stages.
KEYFRAME, VIDEO = "keyframe", "video"
KEYFRAME_PNG = f"{VIDEO}/keyframe.png"
VIDEO_KEYFRAME, VIDEO_TRACK = f"{VIDEO}/keyframe", f"{VIDEO}/track"
TRACK_JSON = f"{VIDEO}/track.json"
VIDEO_TUNING = f"{VIDEO}/tuning"  # the sampled frames' crops the keyframe's PTI tunes the generator on too


def video_field_stage(index: int) -> str:
    """A frame's pivot, renders and motion field."""
    return f"{VIDEO}/fields/{index:06d}"


def video_frame_stage(index: int) -> str:
    """A frame's edited patch, from its field smoothed over its neighbours'."""
    return f"{VIDEO}/frames/{index:06d}"
