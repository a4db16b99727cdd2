"""A clip job's types: how a clip is followed and edited (`VideoConfig`), what to edit (`VideoJob`), the checked
plan (`VideoPlan`) and what came of it (`VideoResult`). The recipe is `video.py`'s."""
from __future__ import annotations

import math
import os
from dataclasses import KW_ONLY, asdict, dataclass, field
from pathlib import Path
from typing import Any

from dragedit.common.errors import FieldError
from dragedit.pipeline.imaging import video as V

from .errors import RequestError
from .requests import EditRequest, request_list
from .settings import EditSettings


@dataclass
class VideoConfig:
    """How a clip is followed and edited (what the keyframe's edit does comes from `EditSettings`)."""

    pivot_steps: int = 12  # Adam steps fitting each frame's pivot, from its neighbour's
    pivot_lr: float = 0.01
    # the pivot is fitted on renders up to this size (as PTI's coarse pivot phase): a frame's pivot only starts
    # where its neighbour's left off, and the motion is pinned to the keyframe's anyway; at 512 a fitting step at
    # 256 px cost 1.05 s, 12 of them 95 % of a frame. The renders the motion is measured on keep the tuned size.
    pivot_resolution: int = 128
    crop_smoothing_s: float = 0.03  # Gaussian sigma, in seconds, over the crop's centre and axes (the keyframe kept)
    field_window: int = 1  # each frame's motion is averaged with this many neighbours on each side (1, 2, 1)
    # no frame's motion is larger than the keyframe's at the same place of the face (its crop, the keyframe's motion
    # carried there by the landmarks) times this, plus `motion_slack` of the crop size: the same offset on another
    # pose may make the generator move more of the face than the drag did (two_faces_360p, a three-quarter turn at
    # the end of its close shot). 0: no limit
    motion_cap: float = 1.0
    motion_slack: float = 0.002
    # each frame's motion is this share the keyframe's own (carried to the frame's face by the landmarks'
    # similarity) and the rest the frame's own field: the same offset on another pivot is not quite the same
    # motion, and a face edited alike on every frame is the same person on every frame (two_faces_360p: TG-ID
    # 0.976 -> 0.990, identity 0.130 -> 0.103; README: Clips). 0: the frame's own field alone; 1: the keyframe's
    keyframe_share: float = 0.75
    min_face_px: int = 40  # a face box narrower than this (photo px) is left untouched
    follow_distance: float = 0.5  # a face in the next frame is the same one within this fraction of its box
    # where the face was lost (a cut, the person gone), a face whose dlib descriptor lies within this of the
    # followed face's is that person again (dlib's own rule for one person is 0.6; on two_faces_360p the singer
    # after a cut lay 0.40-0.81 from his face before it, median 0.47, the others in the clip 0.64 or more);
    # 0: never found again
    same_person: float = 0.55
    keyframe_search: int = 300  # frames scanned for the face when no keyframe is given
    # STIT's shared tuning: the generator is tuned on the keyframe and this many frames sampled evenly over the
    # followed ones. Each tuning step fits the keyframe and one of them in turn, so the tuning costs the same for a
    # 2 s clip and a 2 min one. 0 (the default): the keyframe alone, as a photo is tuned, so the clip gets the
    # photo edit's drag; with the embedded generator, 4 frames made the keyframe's drag itself 1.4-3x larger than
    # the photo's, and its identity change with it (the README's clip section has the figures).
    tune_frames: int = 0
    # processes for the clip's frames: each detects the faces on a part of consecutive frames, then fits a share of
    # the runs, with cores/workers threads (1: all in this process). On 2 cores, 2 one-thread processes did the
    # track and the fields 1.6x as fast as one two-thread process (README: Clips).
    workers: int = 1
    backend: str = "local"  # where the workers run: "local" (processes here) or "ray" (tasks on a cluster)
    address: str | None = None  # Ray's cluster address; None joins a running local instance or starts one
    run_start_steps: int = 50  # steps fitting a run's first frame from the keyframe's pivot (as far as the pose may be)
    # runs no longer than this many seconds (0: one run per worker): a pivot followed from frame to frame drifts
    # away from the face over a long clip; a run started afresh from the keyframe's pivot does not
    run_seconds: float = 3.0
    crf: int = V.DEFAULT_CRF  # H.264 quality (lower: better, larger); .mkv and frame folders are lossless

    def __post_init__(self) -> None:
        for name, low in (("pivot_steps", 0), ("field_window", 0), ("min_face_px", 1), ("keyframe_search", 1),
                          ("pivot_resolution", 4), ("tune_frames", 0), ("workers", 1), ("run_start_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise FieldError(name, value, f"use a whole number, {low} or more")
        if self.backend not in ("local", "ray"):
            raise FieldError("backend", self.backend, "use local or ray")
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise FieldError("crf", self.crf, "use a whole number from 0 (lossless) to 51; 18 is near the source")
        share = self.keyframe_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise FieldError("keyframe_share", share, "use a number from 0 (each frame's own motion) to 1")
        for name in ("pivot_lr", "crop_smoothing_s", "follow_distance", "run_seconds", "same_person", "motion_cap",
                     "motion_slack"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise FieldError(name, value, "use a finite number, 0 or more")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VideoJob:
    """A clip to edit (the only positional field). Times in seconds from the first frame: `keyframe` None is
    the first frame (from `start`) where the chosen face is found; `start`/`end` None: the whole clip. Points in
    pixels refer to the keyframe."""

    clip: str | os.PathLike
    _: KW_ONLY
    requests: list[EditRequest] = field(default_factory=list)
    output: str | os.PathLike | None = None
    session: str | os.PathLike | None = None  # None: OUTPUT_DIR/CLIP_STEM.dragedit
    face: int | None = None
    face_at: tuple[float, float] | None = None
    keyframe: float | None = None
    start: float | None = None
    end: float | None = None
    overwrite: bool = False  # only the default output's: the clip itself is never written

    def __post_init__(self) -> None:
        from dragedit.pipeline.imaging.faces import face_number

        for name in ("clip", "output", "session"):
            value = getattr(self, name)
            if not (isinstance(value, (str, os.PathLike)) or (value is None and name != "clip")):
                raise RequestError(name, repr(value), "give a file or folder path (a str or a Path)")
        self.requests = request_list(self.requests)
        self.face = face_number(self.face, self.face_at)
        for name in ("keyframe", "start", "end"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value < 0):
                raise RequestError(name, value, "give a time in seconds, 0 or more")


@dataclass(kw_only=True)
class VideoPlan:
    """A checked clip job: the clip's facts, the frames it edits and where everything goes."""

    job: VideoJob
    settings: EditSettings
    config: VideoConfig
    info: V.VideoInfo
    clip_sha: str
    session: Path
    output: Path
    first: int  # the frames edited: first..last (the rest are copied as they are)
    last: int
    keyframe: int  # the frame the drag is made on (the face asked for is on it)


@dataclass
class VideoResult:
    session: str
    output: str
    keyframe: int
    keyframe_seconds: float
    frames: int  # in the clip
    edited: int  # frames the edit changed
    untouched: int  # frames of the edited range where the face was missing or too small
    found_again: int  # followed frames where the face was found again by who it is, after it was lost (a cut)
    edits: list[str]
    stages: dict[str, int]  # "kind computed" / "kind reused" -> how many of the clip's stages
    keyframe_stages: dict[str, str]  # the keyframe's photo session: stage -> computed | reused
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
