"""What every frame of a clip needs from the keyframe's edit (`Keyframe`: the tuned generator, the latent offset,
the handles LK measured), and a frame's crop geometry; shared by the clip's stages (`video.py`) and its frames'
fitting (`video_fields.py`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dragedit.common.hashing import file_sha256

from . import layout as L
from .session import Session
from .settings import EditSettings
from .video_types import VideoPlan


@dataclass
class Keyframe:
    """What every frame needs from the keyframe's edit: the tuned generator, the latent offset, its render size,
    the crop size, and the edit's handles and targets in crop pixels (where the edit reaches)."""

    Gt: Any
    offset: Any
    cap: int | None
    size: int
    chain: list
    paths: list
    face_box: list[float]
    w_pivot: Any
    delta_sha: str
    edit_sha: str
    settings: EditSettings
    handles: list[tuple[int | None, list[float], list[float]]]  # (landmark or None, start, LK-measured end), crop
    lost: list[tuple[int | None, list[float]]]  # where the generator repainted instead of moving (crop points)
    drag_lost: bool  # the drag stopped because it lost a handle: no generated pixels (as for the photo)

    def at_frame(self, landmarks_crop: np.ndarray) -> tuple[list, list]:
        """(anchors, lost points) in a frame's crop: each handle where its landmark is in this frame (a handle
        given in pixels stays where it was in the keyframe's crop), carrying the motion LK measured on the
        keyframe, so every frame's edit is pinned to the same motion the photo edit has."""
        def at(landmark: int | None, point: list[float]) -> np.ndarray:
            return landmarks_crop[landmark] if landmark is not None else np.asarray(point, np.float64)

        anchors = []
        for landmark, start, end in self.handles:
            p = at(landmark, start)
            anchors.append((p.tolist(), (p + np.subtract(end, start)).tolist()))
        return anchors, [at(landmark, point).tolist() for landmark, point in self.lost]

    @classmethod
    def load(cls, folder: Path, edit_name: str, settings: EditSettings) -> "Keyframe":
        from safetensors.torch import load_file

        from .edit import _generator
        from .runtime import load_base_generator, resolve_device
        from .stages.align import alignment
        from .stages.composite import edit_chain
        from .stages.invert import image_cap, tuned

        device = resolve_device(settings.device)
        with Session(folder, read_only=True) as ks:
            G, info = load_base_generator(_generator(ks, settings), device)
            w_pivot, Gt = tuned(ks, G, info, device)
            ws = load_file(str(ks.path(edit_name, L.EDIT_WS)))["w"].to(device)
            chain = edit_chain(ks, edit_name)
            al = alignment(ks)
            info = ks.edit_info(edit_name)
            handles, lost = _measured(ks, edit_name)
            return cls(Gt=Gt, offset=(ws - w_pivot).detach(), cap=image_cap(ks, Gt), size=al.crop_size,
                       chain=[(points, mask) for points, mask, _ in chain],
                       paths=[p for _, _, ps in chain for p in ps], face_box=list(al.face_box),
                       w_pivot=w_pivot.detach(), delta_sha=ks.stages[L.INVERT]["outputs"][L.INVERT_DELTA],
                       edit_sha=file_sha256(ks.path(edit_name, L.EDIT_WS)), settings=settings, handles=handles,
                       lost=lost, drag_lost=info.get("stopped_by") == "lost")


def _measured(ks: Session, edit_name: str) -> tuple[list, list]:
    """The keyframe edit's handles as LK measured them, each with the landmark it is anchored on (None for a
    handle in pixels), and the points where it repainted: from every edit of the chain made from the pivot."""
    from dragedit.pipeline.imaging.anchors import is_anchored, parse_anchored

    handles, lost = [], []
    name = edit_name
    while name != L.PIVOT:
        info = ks.edit_info(name)
        specs = info.get("drag_specs") or [None] * len(info.get("handles", []))
        for spec, h in zip(specs, info.get("handles", [])):
            landmark = parse_anchored(spec).index if isinstance(spec, str) and is_anchored(spec) else None
            if h.get("measured_ok"):
                handles.append((landmark, h["start"], h["measured"]))
            elif h.get("lost"):
                lost += [(landmark, h["start"]), (None, h["tracker"])]
        name = info.get("parent", L.PIVOT)
    return handles, lost


def frame_inputs(s: Session, plan: VideoPlan, key: Keyframe) -> dict[str, Any]:
    return {"clip": plan.clip_sha, "track": s.stages[L.VIDEO_TRACK]["outputs"][L.TRACK_JSON],
            "delta": key.delta_sha, "edit": key.edit_sha}


def crop_frame(rgb: np.ndarray, frame: dict[str, Any], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop, inside, photo_to_crop) of a frame."""
    from dragedit.pipeline.imaging.align import warp_crop

    c2p = np.asarray(frame["c2p"], np.float64)
    crop, inside = warp_crop(rgb, c2p, size)
    return crop, inside, np.linalg.inv(c2p)


def crop_landmarks(frame: dict[str, Any], p2c: np.ndarray) -> np.ndarray:
    from dragedit.pipeline.imaging.geometry import map_points

    return map_points(p2c, np.asarray(frame["landmarks"]))


def frame_region(frame: dict[str, Any], p2c: np.ndarray, inside: np.ndarray, key: Keyframe, cfg) -> np.ndarray:
    from dragedit.pipeline.imaging.paste import warp_region

    return warp_region(crop_landmarks(frame, p2c), inside, cfg, key.chain)
