"""What one worker does with one photo of a batch: its edits through the one recipe, never an exception, and
the row the summary gets. Plain data, so a job travels to a process or a Ray task as it is; this module
imports no torch at load time (a worker sets its thread limits first)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dragedit.common.environment import log
from dragedit.common.errors import UserError
from dragedit.common.threads import fair_share_threads
from dragedit.pipeline.core.errors import SettingError
from dragedit.pipeline.core.settings import EditSettings
from dragedit.pipeline.imaging.faces import EVERY_FACE, face_number

BACKENDS = ("local", "ray")


@dataclass
class BatchConfig:
    """How a batch runs (what it computes comes from the stage configs)."""

    workers: int = 1  # photos at once
    face: int | str = 0  # a face index, or "all": one session per face
    backend: str = "local"  # "local" (processes on this machine) or "ray"
    address: str | None = None  # Ray cluster address; None starts (or joins) a local instance
    gpus_per_photo: float = 0.0  # Ray: GPUs each photo's task asks for

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SettingError("workers", self.workers, "use 1 or more")
        self.face = face_number(self.face, every=True)
        if self.backend not in BACKENDS:
            raise SettingError("backend", self.backend, f"use {' or '.join(BACKENDS)}")
        if self.gpus_per_photo < 0:
            raise SettingError("gpus_per_photo", self.gpus_per_photo, "use 0 or more")

    def threads_per_worker(self, settings: EditSettings) -> int:
        """The threads each worker computes with: the batch's fair share of the cores among the dragedit
        processes running now (as `dragedit edit` takes its own), split between its workers. Counting only the
        machine's cores oversubscribed it beside a server and an edit: 2 threads on 2 busy cores, a PTI of 571 s
        instead of 18."""
        return settings.threads or max(1, fair_share_threads() // self.workers)


@dataclass
class PhotoRow:
    """One photo (one face with `--face all`) of a batch and what became of it."""

    photo: str
    face: int | None
    status: str  # "done" | "skipped" | "failed"
    reason: str = ""  # why skipped, or the failure's one-line error
    output: str | None = None
    session: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, and "total"
    stages: dict[str, str] = field(default_factory=dict)  # stage -> computed | reused
    threads: int | None = None  # the torch threads its edit computed with

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhotoJob:
    """Everything a worker needs for one photo; plain data, so it travels to processes and Ray tasks."""

    photo: str
    name: str  # unique stem under the output folder
    out_dir: str
    edits: list  # EditRequest
    face: int | str
    threads: int  # this worker's share of the cores, for sessions that have no count of their own yet
    settings: EditSettings = field(default_factory=EditSettings)


def output_suffix(suffix: str) -> str:
    """The photo's own format where dragedit writes it; else JPEG for HEIC, PNG (lossless) for .bmp or .gif."""
    from dragedit.common.images import edited_suffix

    return edited_suffix(suffix)


def photo_paths(out_dir: Path, name: str, suffix: str, face: int | None) -> tuple[Path, Path]:
    """(session folder, edited photo) of one photo (and face) under the batch's output folder."""
    tag = name if face is None else f"{name}_face{face}"
    return out_dir / f"{tag}.dragedit", out_dir / f"{tag}_edited{output_suffix(suffix)}"


def run_photo(job: PhotoJob) -> list[PhotoRow]:
    """One photo's edits, in this process: rows for its face (or each face), never an exception."""
    from dragedit.common.threads import fair_share_fixed, use_threads

    from dragedit.pipeline.imaging.video import is_video

    use_threads(job.threads)
    with fair_share_fixed(job.threads):
        if is_video(job.photo):
            return [_edit_clip(job)]
        if job.face == EVERY_FACE:
            return _every_face(job)
        return [_edit_face(job, int(job.face))]


def _note_format(job: PhotoJob, output: Path) -> None:
    if output.suffix != Path(job.photo).suffix.lower():
        log.warning(f"note: {Path(job.photo).name} is written as {output.name} (dragedit writes JPEG, PNG, WebP, "
                    "TIFF or AVIF)")


def _edit_face(job: PhotoJob, face: int) -> PhotoRow:
    from dragedit.pipeline.core.library import edit_photo

    session, output = photo_paths(Path(job.out_dir), job.name, Path(job.photo).suffix, None)
    _note_format(job, output)
    t0 = time.perf_counter()
    try:
        res = edit_photo(job.photo, job.edits, output, session, settings=job.settings, face=face)
    except Exception as exc:  # noqa: BLE001 - recorded in the summary, the batch goes on
        return _row_for_error(job, face, exc, {"total": round(time.perf_counter() - t0, 3)}, session)
    seconds = {**res.seconds, "total": round(time.perf_counter() - t0, 3)}
    return PhotoRow(job.photo, face, "done", output=str(output), session=str(session), seconds=seconds,
                    stages=dict(res.stages), threads=_torch_threads())


def _edit_clip(job: PhotoJob) -> PhotoRow:
    """A clip among the inputs: the edit on its keyframe's face (the batch's face, 0 for 'all'), every frame."""
    from dragedit.pipeline.core.video import default_output, edit_video

    out_dir = Path(job.out_dir)
    session = out_dir / f"{job.name}.dragedit"
    output = out_dir / f"{job.name}_edited{default_output(Path(job.photo)).suffix}"
    face = 0 if job.face == EVERY_FACE else int(job.face)
    t0 = time.perf_counter()
    try:
        res = edit_video(job.photo, job.edits, output, session=session, settings=job.settings, face=face)
    except Exception as exc:  # noqa: BLE001 - recorded in the summary, the batch goes on
        return _row_for_error(job, face, exc, {"total": round(time.perf_counter() - t0, 3)}, session)
    return PhotoRow(job.photo, face, "done", output=str(output), session=str(session),
                    seconds={**res.seconds, "total": round(time.perf_counter() - t0, 3)},
                    stages={k: str(v) for k, v in res.stages.items()}, threads=_torch_threads())


def _every_face(job: PhotoJob) -> list[PhotoRow]:
    """Every face through the core's one every-face edit (all checked before any is edited): one session and
    one output per face, named NAME_faceN."""
    from dragedit.pipeline.core.library import edit_every_face

    out_dir, suffix = Path(job.out_dir), Path(job.photo).suffix
    _note_format(job, photo_paths(out_dir, job.name, suffix, 0)[1])
    t0 = time.perf_counter()
    try:
        done = edit_every_face(job.photo, job.edits, lambda i: photo_paths(out_dir, job.name, suffix, i)[0],
                               face_outputs=lambda i: photo_paths(out_dir, job.name, suffix, i)[1],
                               settings=job.settings)
    except Exception as exc:  # noqa: BLE001 - recorded in the summary, the batch goes on
        return [_row_for_error(job, None, exc, {"total": round(time.perf_counter() - t0, 3)})]
    total = round(time.perf_counter() - t0, 3)
    return [PhotoRow(job.photo, fe.face, "done", output=str(fe.output), session=str(fe.session),
                     seconds={**fe.result.seconds, "total": total}, stages=dict(fe.result.stages),
                     threads=_torch_threads()) for fe in done]


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")  # loaded by the edit, if it ran a torch stage
    return torch.get_num_threads() if torch is not None else None


def _row_for_error(job: PhotoJob, face: int | None, exc: Exception, seconds: dict[str, float],
                   session: Path | None = None) -> PhotoRow:
    from dragedit.pipeline.imaging.faces import FaceChoiceError, NoFaceError

    if isinstance(exc, NoFaceError):
        return PhotoRow(job.photo, face, "skipped", "no face", seconds=seconds)
    if isinstance(exc, FaceChoiceError):
        return PhotoRow(job.photo, face, "skipped", str(exc), seconds=seconds)
    if isinstance(exc, UserError):
        reason = str(exc)
    else:
        reason = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
    return PhotoRow(job.photo, face, "failed", reason, session=str(session) if session else None, seconds=seconds)
