"""The one recipe from a request to an edited photo. The CLI, the library, the batch (local and Ray) and the
server all call it; they differ only in how they word its errors and show its progress.

    plan = check_edit(job, settings)       # 1. every check that needs no alignment or PTI; writes nothing
    result = run_edit(plan, on_progress)   # 2. align -> (face checks) -> invert -> drag -> composite

`check_edit` reserves the edit numbers the job will write (or names the identical earlier edit it will
reuse), so a server can answer with them before the work starts.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Any

from dragedit.common.hashing import file_sha256
from dragedit.common.images import check_writable
from dragedit.common.threads import fair_share_threads, use_threads
from dragedit.pipeline.imaging.faces import choose_face, face_number, find_faces
from dragedit.pipeline.imaging.photo import Photo, load_photo

from . import layout as L
from .errors import NotASession, RequestError, SessionBusy, SettingError
from .manifest import stable_hash
from .originals import guard_original
from .progress import Progress, ProgressHook, ignore
from .records import HistoryEntry
from .requests import EditRequest, check_in_photo, mask_to_crop, points_to_crop, request_list
from .runtime import load_base_generator, native_precision, note_if_default, resolve_device, resolve_generator
from .session import Session
from .settings import EditSettings
from .stages.align import align_config, face_spec, run_align
from .stages.composite import CompositeResult, run_composite, write_output

UNTIL = ("align", "invert", "drag", "composite")


@dataclass
class EditJob:
    """What to do to which session (the only positional field; the rest are keyword-only). `photo=None`: the
    session's own photo. `face`/`face_at` None: the session's face (0, the largest, for a new session). `until`
    stops after that stage. `output=None` composites into the session only (a server, a preview);
    `composite_edit` picks which edit to composite when `requests` is empty (None or 'latest': the newest)."""

    session: str | os.PathLike
    _: KW_ONLY
    requests: list[EditRequest] = field(default_factory=list)
    photo: str | os.PathLike | None = None
    face: int | None = None
    face_at: tuple[float, float] | None = None
    from_spec: str | int | None = None
    until: str = "composite"
    output: str | os.PathLike | None = None
    composite_edit: str | int | None = None
    overwrite: bool = False
    # aligned crops (square images) of the same face that PTI tunes the generator on beside the photo's: a clip's
    # sampled frames (STIT's shared tuning), so the generator fits the face as it turns and talks
    tune_with: list[str | os.PathLike] = field(default_factory=list)

    def __post_init__(self) -> None:
        """The types a library caller may get wrong, as typed errors naming the field, before anything runs."""
        for name in ("session", "photo", "output"):
            value = getattr(self, name)
            if not (isinstance(value, (str, os.PathLike)) or (value is None and name != "session")):
                raise RequestError(name, repr(value), "give a file or folder path (a str or a Path)")
        self.requests = request_list(self.requests)
        self.face = face_number(self.face, self.face_at)
        if self.face_at is not None:
            at = self.face_at
            if (isinstance(at, (str, bytes)) or not isinstance(at, (list, tuple)) or len(at) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               for v in at)):
                raise RequestError("face_at", repr(at), "give a photo point as two finite numbers, (x, y)")
            self.face_at = (float(at[0]), float(at[1]))
        for name in ("from_spec", "composite_edit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                raise RequestError("from" if name == "from_spec" else "edit", repr(value),
                                   "give an edit number, 'pivot' or 'latest'")
        if not isinstance(self.until, str):
            raise RequestError("until", repr(self.until), f"use one of {', '.join(UNTIL)}")
        if not isinstance(self.overwrite, bool):
            raise RequestError("overwrite", repr(self.overwrite), "use True or False")
        if isinstance(self.tune_with, (str, bytes, os.PathLike)) or not isinstance(self.tune_with, (list, tuple)) \
                or not all(isinstance(p, (str, os.PathLike)) for p in self.tune_with):
            raise RequestError("tune_with", repr(self.tune_with), "give a list of aligned crop paths")
        self.tune_with = list(self.tune_with)


@dataclass(kw_only=True)
class EditPlan:
    """A checked job: what it will use and which edit numbers it will write (or reuse)."""

    job: EditJob
    settings: EditSettings
    photo: Photo
    photo_sha: str
    face_spec: dict[str, Any]  # how the align stage is asked for the face
    face: int | None  # the face index, when it is known before alignment (an existing session)
    device: Any
    generator: Path | None  # None: no torch stage runs
    threads: int
    request_id: str
    edits: list[str]  # the edit stages the job writes, in order
    reused: bool  # every one of them is an identical earlier request's
    composited: str | None  # the edit the composite stage puts into the photo (None: no composite, or a new edit)
    noop: bool = False  # no drag moves anything (a preset at strength 0): the output is the photo itself

    @property
    def edit_numbers(self) -> list[int]:
        return [L.edit_number(n) for n in self.edits]


@dataclass
class EditResult:
    """What the recipe did: the edits made or reused, each stage's fate and wall time, and the output."""

    session: str
    edits: list[str]
    stages: dict[str, str]  # stage -> 'computed' | 'reused'
    seconds: dict[str, float]
    history: list[HistoryEntry]
    composite: CompositeResult | None
    reused: bool

    @property
    def output(self) -> str | None:
        return self.composite.output if self.composite else None

    def to_dict(self) -> dict[str, Any]:
        return {"session": str(self.session), "edits": self.edits, "output": self.output, "stages": self.stages,
                "seconds": self.seconds, "reused": self.reused, "history": [h.to_dict() for h in self.history],
                "composite": self.composite.to_dict() if self.composite else None}


# ---- 1. checks before any work ---------------------------------------------------------------------------
def check_edit(job: EditJob, settings: EditSettings | None = None) -> EditPlan:
    """Everything that can be checked without aligning or inverting; raises a typed `UserError` and writes
    nothing. The edit numbers it reserves are valid until someone else commits to the session."""
    settings = EditSettings() if settings is None else settings
    if not isinstance(settings, EditSettings):
        raise SettingError("settings", type(settings).__name__, "give an EditSettings (or None for the defaults)")
    if not isinstance(job, EditJob):
        raise RequestError("job", type(job).__name__, "give an EditJob")
    if job.until not in UNTIL:
        raise RequestError("until", job.until, f"use one of {', '.join(UNTIL)}")
    drags = job.until in ("drag", "composite") and job.composite_edit is None
    if drags and not job.requests:
        raise RequestError("drags", None, "no points given; give at least one drag")
    with Session(job.session, read_only=True) as s:
        if L.VIDEO_KEYFRAME in s.stages:
            raise NotASession(f"session {s.folder.name} is a clip's; edit the clip again with it (the same command "
                              "with other drags makes a second edit)")
        photo_path = Path(job.photo) if job.photo is not None else s.photo_path()
        photo = load_photo(photo_path)
        sha = file_sha256(photo_path)
        s.check_photo(sha, photo_path.name)
        if job.output is not None:
            check_writable(job.output)
            if not job.overwrite:
                guard_original(job.output, photo_path)  # the one-line refusal, before any work
        check_in_photo(job.requests, photo.size)
        for crop in job.tune_with:
            if not Path(crop).is_file():
                raise RequestError("tune_with", str(crop), "not a file; give aligned crops of the same face")
            width, height = load_photo(crop).size
            if width != height:
                raise RequestError("tune_with", str(crop), f"{width}x{height}, not square; give aligned crops")
        spec, face = _face(s, photo, job)
        composited = None
        if job.until == "composite" and not drags:
            composited = s.resolve_edit(job.composite_edit, "edit")
            if composited == L.PIVOT:
                raise RequestError("edit", None, "nothing to composite: the session has no edits yet")
        settings = settings.with_composite_of(s.stages.get(L.composite_stage(composited), {}).get("params")
                                              if composited else None)
        device = resolve_device(settings.device)
        torch_work = drags or job.until in ("align", "invert")  # the generator's resolution sets the crop
        generator = _generator(s, settings) if torch_work else None
        threads = s.thread_count(settings.threads, fair_share_threads())
        settings = settings.with_pti_of(s.stages.get(L.INVERT, {}).get("params"))
        generator_sha = None
        if generator is not None:
            G, info = load_base_generator(generator, device)
            generator_sha = info["sha256"]
            settings.check_generator(list(G.synthesis.block_resolutions))
            settings = settings.for_generator(G.img_resolution)
        settings = replace(settings, drag=native_precision(settings.drag, device, "the drag"),
                           pti=native_precision(settings.pti, device, "PTI"))
        request_id = _request_id(sha, spec, settings, generator_sha, device, threads, job)
        noop = drags and not any(r.moves for r in job.requests)
        if noop and job.output is None:
            raise RequestError("drags", None, "the edit moves nothing (a strength of 0?); there is nothing to do")
        edits, reused = _plan_edits(s, job, request_id) if drags and not noop else ([], False)
    return EditPlan(job=job, settings=settings, photo=photo, photo_sha=sha, face_spec=spec, face=face, device=device,
                    generator=generator, threads=threads, request_id=request_id, edits=edits, reused=reused,
                    composited=composited, noop=noop)


def _face(s: Session, photo: Photo, job: EditJob) -> tuple[dict[str, Any], int | None]:
    """(face spec for the align stage, face index if known now): the session's own face unless one is asked;
    another face than the session's is refused before anything changes."""
    face_number(job.face, job.face_at)
    ident = s.identity
    if ident is None:
        return face_spec(job.face, job.face_at), None
    if job.face is None and job.face_at is None:
        return ident["face_spec"], ident["face"]
    face = job.face
    if job.face_at is not None:
        face = choose_face(find_faces(photo.pixels), face_at=job.face_at)
    s.check_face(face)
    return ident["face_spec"], face


def _generator(s: Session, settings: EditSettings) -> Path:
    """The checkpoint: the one given, else the one the session was inverted with (resuming), else the embedded one."""
    if settings.generator is None:
        recorded = s.stages.get(L.INVERT, {}).get("generator_path")
        if recorded and Path(recorded).is_file():
            return Path(recorded)
    return resolve_generator(settings.generator)


def _request_id(sha: str, spec: dict[str, Any], settings: EditSettings, generator_sha: str | None, device,
                threads: int, job: EditJob) -> str:
    """What makes two requests the same edit: photo, face, every setting that shapes the result, the drags."""
    return stable_hash([sha, spec, settings.align.to_dict(), generator_sha,
                        settings.pti.result_dict(), settings.drag.to_dict(), device.type,
                        threads if device.type == "cpu" else None, [r.to_dict() for r in job.requests],
                        [file_sha256(r.mask) if r.mask else None for r in job.requests], str(job.from_spec)]
                       + ([[file_sha256(p) for p in job.tune_with], settings.pti.companion_pivot_steps,
                           settings.pti.companion_weight] if job.tune_with else []))


def _plan_edits(s: Session, job: EditJob, request_id: str) -> tuple[list[str], bool]:
    """The identical earlier request's edits (reused), else new numbers; `from` must name a current edit."""
    earlier = {e.get("request_index"): name for name, e in s.stages.items()
               if L.is_edit(name) and e.get("request") == request_id and s.is_current(name)}
    if 0 not in earlier:
        s.resolve_edit(job.from_spec)  # a one-line error for a `from` that names no edit
    fresh = iter(s.next_edit_names(len(job.requests)))
    names = [earlier.get(i) or next(fresh) for i in range(len(job.requests))]
    return names, all(i in earlier for i in range(len(job.requests)))


# ---- 2. the work -------------------------------------------------------------------------------------------
def run_edit(plan: EditPlan, on_progress: ProgressHook = ignore) -> EditResult:
    """The stages in order, each cached in the session; stops after `plan.job.until`."""
    from .stages.drag import run_drags
    from .stages.invert import image_cap, run_invert, tuned

    job, cfg = plan.job, plan.settings
    if plan.noop:
        return _unedited(plan)
    seconds: dict[str, float] = {}
    timer = _stage_timer(seconds)
    with Session(job.session) as s:
        # 0. the plan still holds, under the lock
        s.check_photo(plan.photo_sha, Path(plan.photo.path).name)
        if plan.face is not None:
            s.check_face(plan.face)
        if plan.edits and _plan_edits(s, job, plan.request_id)[0] != plan.edits:
            raise SessionBusy(f"session {s.folder.name} changed while this edit waited; send it again")
        if plan.device.type == "cpu":
            s.record_threads(plan.threads)  # the session's later stages compute with the same count

        # 1. the generator: its resolution sets the crop
        G = info = None
        if plan.generator is not None:
            use_threads(plan.threads)
            with timer("load"):
                on_progress(Progress("load"))
                G, info = load_base_generator(plan.generator, plan.device)

        # 2. align
        with timer("align"):
            on_progress(Progress("align"))
            size = G.img_resolution if G is not None else s.stages[L.ALIGN]["params"]["size"]
            al = run_align(s, plan.photo, plan.photo_sha, align_config(cfg.align, size, plan.face_spec.get("face"),
                                                                        plan.face_spec.get("face_at")))

        # 3. points and masks fit the face, before PTI (anchors resolve to this face's photo pixels)
        requests = [r.resolved(al.landmarks) for r in job.requests]
        for req in requests:
            points_to_crop(req.drags, al.photo_size, al.photo_to_crop, al.crop_size)
            if req.mask:
                mask_to_crop(req.mask, al.photo_size, al.crop_to_photo, al.crop_size)

        # 4. invert (PTI)
        if job.until != "align" and G is not None:
            note_if_default(info["path"])
            with timer("invert"):
                run_invert(s, G, info, cfg.pti, plan.device, on_progress, [Path(p) for p in job.tune_with])

        # 5. the drags
        if plan.edits:
            _, Gt = tuned(s, G, info, plan.device)
            parent = (s.stages[plan.edits[0]]["inputs"]["parent"] if plan.reused or plan.edits[0] in s.stages
                      else s.resolve_edit(job.from_spec))
            with timer("drag"):
                run_drags(s, requests, plan.edits, parent, Gt, cfg.drag, plan.device, plan.request_id,
                          on_progress, image_cap(s, Gt))

        # 6. composite into the photo
        comp = None
        if job.until == "composite":
            with timer("composite"):
                name = plan.edits[-1] if plan.edits else plan.composited
                on_progress(Progress("composite", edit=L.edit_number(name) if name != L.PIVOT else None))
                pixels, entry = run_composite(s, name, plan.photo, cfg.composite)
                if job.output is not None:
                    comp = write_output(s, name, pixels, entry, plan.photo, job.output, cfg.composite, job.overwrite)
                else:
                    comp = CompositeResult(name, None, cfg.composite.paste, int(entry.get("changed_pixels", 0)),
                                           entry.get("bbox"))
        on_progress(Progress("done"))
        return EditResult(session=str(job.session), edits=list(plan.edits), stages=dict(s.report), seconds=seconds,
                          history=s.history(plan.edits), composite=comp, reused=plan.reused)


def _unedited(plan: EditPlan) -> EditResult:
    """An edit that moves nothing: the output is the photo, bit for bit (its very bytes when the format is the
    same), and no session is made."""
    import shutil

    from dragedit.common import atomic
    from dragedit.common.images import output_format, save_image

    src, out = Path(plan.photo.path), Path(plan.job.output)
    if not plan.job.overwrite or not out.exists() or not out.samefile(src):
        if (plan.photo.source_format or "").upper() == output_format(out):
            atomic.write_with(out, lambda tmp: shutil.copyfile(src, tmp))
        else:
            save_image(plan.photo.output_pixels(), out, exif=plan.photo.exif, icc_profile=plan.photo.icc_profile)
    comp = CompositeResult("none", str(out), plan.settings.composite.paste, 0, None)
    return EditResult(session=str(plan.job.session), edits=[], stages={}, seconds={}, history=[], composite=comp,
                      reused=False)


def edit(job: EditJob, settings: EditSettings | None = None, on_progress: ProgressHook = ignore) -> EditResult:
    """check_edit, then run_edit: the whole recipe in one call."""
    return run_edit(check_edit(job, settings), on_progress)


def _stage_timer(seconds: dict[str, float]):
    @contextmanager
    def timer(stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            seconds[stage] = round(seconds.get(stage, 0.0) + time.perf_counter() - t0, 3)

    return timer
