"""`dragedit batch`: one edit file applied to many photos, one session per photo (and face).

The sessions are the state: a second run of the same command reuses every committed stage, so finished
photos cost a cache lookup and interrupted ones (Ctrl-C, kill -9) resume from their last checkpoint. A
photo that fails, or has no face, gets a row in the summary and never stops the batch. Workers are
separate processes that each own `cores / workers` threads; the thread count is part of the torch stages'
cache keys (float reduction order changes with it), so a batch resumed with another `--workers` recomputes
rather than mixing results computed two ways.

This module imports no torch at load time: a worker process sets its thread limits before torch starts.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from fileio import atomic
from fileio.threads import available_cores, prepare_threads
from fileio.errors import UserError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
SUMMARY_JSON, SUMMARY_CSV = "batch.json", "batch.csv"


@dataclass
class BatchConfig:
    """How a batch runs (what it computes comes from the stage configs)."""

    workers: int = 1  # photos at once
    face: int | str = 0  # a face index, or "all": one session per face
    backend: str = "local"  # "local" (processes on this machine) or "ray"
    address: str | None = None  # Ray cluster address; None starts (or joins) a local instance
    gpus_per_photo: float = 0.0  # Ray: GPUs each photo's task asks for
    threads: int | None = None  # threads per worker; None = this machine's cores / workers

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError(f"--workers {self.workers}: use 1 or more")
        if self.face != "all" and (not isinstance(self.face, int) or self.face < 0):
            raise UserError(f"--face {self.face}: use a face number (0 = largest) or 'all'")
        if self.backend not in ("local", "ray"):
            raise UserError(f"--backend {self.backend}: use local or ray")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads}: use 1 or more")
        if self.gpus_per_photo < 0:
            raise UserError(f"--gpus-per-photo {self.gpus_per_photo}: use 0 or more")

    def threads_per_worker(self) -> int:
        return self.threads or max(1, available_cores() // self.workers)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchResult:
    rows: list[PhotoRow]
    summary_json: Path
    summary_csv: Path
    seconds: float

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "skipped": 0, "failed": 0}
        for r in self.rows:
            out[r.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "counts": self.counts(), "seconds": round(self.seconds, 2),
                "summary": str(self.summary_json)}


@dataclass
class PhotoJob:
    """Everything a worker needs for one photo; plain data, so it travels to processes and Ray tasks."""

    photo: str
    name: str  # unique stem under the output folder
    out_dir: str
    edits: list  # EditRequest
    face: int | str
    threads: int
    generator: str | None = None
    pti_config: Any = None
    drag_config: Any = None
    composite_config: Any = None
    device: str = "cpu"


def collect_photos(inputs: list[str]) -> list[Path]:
    """Files, folders (their photos, not recursive) and globs, in a stable order without repeats."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in PHOTO_SUFFIXES)
        elif p.is_file():
            found.append(p)
        elif glob.has_magic(item):
            found += sorted(Path(m) for m in glob.glob(item) if Path(m).is_file()
                            and Path(m).suffix.lower() in PHOTO_SUFFIXES)
        else:
            raise UserError(f"input {item} is not a file, a folder or a glob that matches files")
    seen, out = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    if not out:
        raise UserError(f"no photos found in {' '.join(inputs)} (looked for {', '.join(PHOTO_SUFFIXES)})")
    return out


def output_names(photos: list[Path]) -> list[str]:
    """A name per photo for its session and output: the stem, plus a short hash of the path where stems clash."""
    stems = [p.stem for p in photos]
    return [s if stems.count(s) == 1 else f"{s}-{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:6]}"
            for s, p in zip(stems, photos)]


def without_outputs(photos: list[Path], out_dir: Path) -> list[Path]:
    """The inputs minus this batch's own edited photos (an output folder that is also the input folder
    must not have its results edited again on the next run)."""
    names = output_names(photos)
    outputs = {(out_dir.resolve(), f"{n}_edited{p.suffix.lower()}") for n, p in zip(names, photos)}
    keep = []
    for p in photos:
        stem = re.sub(r"_face\d+_edited$", "_edited", p.stem)
        if (p.resolve().parent, stem + p.suffix.lower()) not in outputs:
            keep.append(p)
    return keep


def photo_paths(out_dir: Path, name: str, suffix: str, face: int | None) -> tuple[Path, Path]:
    """(session folder, edited photo) of one photo (and face) under the batch's output folder."""
    tag = name if face is None else f"{name}_face{face}"
    return out_dir / f"{tag}.dragedit", out_dir / f"{tag}_edited{suffix.lower()}"


def run_photo(job: PhotoJob) -> list[PhotoRow]:
    """One photo's edits, in this process: rows for its face (or each face), never an exception."""
    from fileio.threads import use_threads

    use_threads(job.threads)
    try:
        faces = _face_indices(job)
    except Exception as exc:  # noqa: BLE001 - a batch never stops for one photo
        return [_row_for_error(job, None, exc, {})]
    return [_edit_face(job, face, tagged) for face, tagged in faces]


def _face_indices(job: PhotoJob) -> list[tuple[int, bool]]:
    """(face index, whether outputs carry the face in their names): every face for 'all', else the one asked."""
    if job.face != "all":
        return [(int(job.face), False)]
    from .align import find_faces
    from .photo import load_photo

    return [(i, True) for i in range(len(find_faces(load_photo(job.photo).pixels)))]


def _edit_face(job: PhotoJob, face: int, tagged: bool) -> PhotoRow:
    from .api import edit_photo

    session, output = photo_paths(Path(job.out_dir), job.name, Path(job.photo).suffix, face if tagged else None)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        res = edit_photo(job.photo, job.edits, output, session, generator=job.generator, pti_config=job.pti_config,
                         drag_config=job.drag_config, composite_config=job.composite_config, device=job.device,
                         face=face, seconds=seconds)
    except Exception as exc:  # noqa: BLE001 - recorded in the summary, the batch goes on
        seconds["total"] = round(time.perf_counter() - t0, 3)
        return _row_for_error(job, face, exc, seconds, session)
    seconds["total"] = round(time.perf_counter() - t0, 3)
    return PhotoRow(job.photo, face, "done", output=str(output), session=str(session), seconds=seconds,
                    stages=dict(res.stages))


def _row_for_error(job: PhotoJob, face: int | None, exc: Exception, seconds: dict[str, float],
                   session: Path | None = None) -> PhotoRow:
    from stylegan2 import CheckpointError

    from .align import FaceChoiceError, NoFaceError

    if isinstance(exc, NoFaceError):
        return PhotoRow(job.photo, face, "skipped", "no face", seconds=seconds)
    if isinstance(exc, FaceChoiceError):
        return PhotoRow(job.photo, face, "skipped", str(exc), seconds=seconds)
    if isinstance(exc, (UserError, CheckpointError)):
        reason = str(exc)
    else:
        reason = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
    return PhotoRow(job.photo, face, "failed", reason, session=str(session) if session else None, seconds=seconds)


_SHARE: list = []  # a worker's CoreShare, held for its life so single dragedit runs count it


def _worker_init(threads: int) -> None:
    """A local worker process: its thread limits before torch loads, a share of the cores other dragedit
    processes see, and death with the batch (Linux)."""
    from fileio.threads import CoreShare

    prepare_threads(threads)
    _SHARE.append(CoreShare().__enter__())
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan keeps a session locked
    except (OSError, AttributeError):
        pass


def run_batch(inputs: list[str], edits: list, out_dir: str | os.PathLike, *, config: BatchConfig | None = None,
              generator: str | os.PathLike | None = None, pti_config=None, drag_config=None, composite_config=None,
              device: str = "cpu", progress: bool = True,
              on_row: Callable[[PhotoRow], None] | None = None) -> BatchResult:
    """Apply `edits` (EditRequests, anchored drags welcome) to every photo of `inputs`; sessions, outputs
    and the summary (`batch.json`, `batch.csv`) go to `out_dir`."""
    from tqdm import tqdm

    cfg = config or BatchConfig()
    out = Path(out_dir)
    photos = without_outputs(collect_photos([str(i) for i in inputs]), out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise atomic.write_error(out, exc) from None
    threads = cfg.threads_per_worker()
    jobs = [PhotoJob(str(p), n, str(out.resolve()), edits, cfg.face, threads,
                     str(generator) if generator else None, pti_config, drag_config, composite_config, str(device))
            for p, n in zip(photos, output_names(photos))]
    rows: dict[int, list[PhotoRow]] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="batch", unit="photo", disable=not progress)

    def finished(index: int, result: list[PhotoRow]) -> None:
        rows[index] = result
        write_summary(out, [r for i in sorted(rows) for r in rows[i]])  # a kill leaves a valid summary
        bar.update(1)
        for r in result:
            if on_row:
                on_row(r)

    try:
        if cfg.backend == "ray":
            from .batch_ray import run_on_ray

            run_on_ray(jobs, cfg, finished)
        elif cfg.workers == 1:
            prepare_threads(threads)
            for i, job in enumerate(jobs):
                finished(i, run_photo(job))
        else:
            _run_in_processes(jobs, cfg, threads, finished)
    finally:
        bar.close()
    all_rows = [r for i in sorted(rows) for r in rows[i]]
    paths = write_summary(out, all_rows)
    return BatchResult(all_rows, paths[0], paths[1], time.perf_counter() - t0)


def _run_in_processes(jobs: list[PhotoJob], cfg: BatchConfig, threads: int,
                      finished: Callable[[int, list[PhotoRow]], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: thread limits set before torch loads
    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(jobs)), mp_context=ctx, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        pending = {pool.submit(run_photo, job): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(pending.pop(fut), fut.result())


CSV_FIELDS = ("photo", "face", "status", "reason", "output", "session", "seconds_total", "seconds", "stages")


def write_summary(out_dir: Path, rows: list[PhotoRow]) -> tuple[Path, Path]:
    """batch.json and batch.csv, one row per photo (and face), each written atomically."""
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "skipped", "failed")}
    json_path, csv_path = out_dir / SUMMARY_JSON, out_dir / SUMMARY_CSV
    atomic.write_json(json_path, {"counts": counts, "rows": [r.to_dict() for r in rows]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow([r.photo, "" if r.face is None else r.face, r.status, r.reason, r.output or "",
                         r.session or "", r.seconds.get("total", ""),
                         ";".join(f"{k}={v}" for k, v in r.seconds.items() if k != "total"),
                         ";".join(f"{k}={v}" for k, v in r.stages.items())])
    atomic.write_text(csv_path, buf.getvalue())
    return json_path, csv_path
