"""`dragedit batch`: one edit file applied to many photos, one session per photo (and face).

The sessions are the state: a second run of the same command reuses every committed stage, so finished
photos cost a cache lookup and interrupted ones (Ctrl-C, kill -9) resume from their last checkpoint. A
photo that fails, or has no face, gets a row in the summary and never stops the batch. Workers are
separate processes that each own `cores / workers` threads. A session keeps the thread count it first
computed with (results depend on it), so a batch resumed with another `workers` reuses what is done; an
explicit `threads` is a setting like any other and recomputes what was made with another count.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dragedit.common import atomic
from dragedit.common.threads import prepare_threads, start_worker
from dragedit.common.errors import UserError
from dragedit.pipeline.core.settings import EditSettings

from .photo import BatchConfig, PhotoJob, PhotoRow, output_suffix, run_photo

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif")
INPUT_SUFFIXES = (*PHOTO_SUFFIXES, ".mp4", ".mov", ".mkv")  # a folder's clips are edited as clips
SUMMARY_JSON, SUMMARY_CSV = "batch.json", "batch.csv"


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


def collect_photos(inputs: list[str]) -> list[Path]:
    """Files, folders (their photos, not recursive) and globs, in a stable order without repeats."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in INPUT_SUFFIXES)
        elif p.is_file():
            found.append(p)
        elif glob.has_magic(item):
            found += sorted(Path(m) for m in glob.glob(item) if Path(m).is_file()
                            and Path(m).suffix.lower() in INPUT_SUFFIXES)
        else:
            raise UserError(f"input {item} is not a file, a folder or a glob that matches files")
    seen, out = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    if not out:
        raise UserError(f"no photos found in {' '.join(inputs)} (looked for {', '.join(INPUT_SUFFIXES)})")
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
    outputs = {(out_dir.resolve(), f"{n}_edited{output_suffix(p.suffix)}") for n, p in zip(names, photos)}
    keep = []
    for p in photos:
        stem = re.sub(r"_face\d+_edited$", "_edited", p.stem)
        if (p.resolve().parent, stem + p.suffix.lower()) not in outputs:
            keep.append(p)
    return keep


def _not_inside_a_session(out: Path) -> None:
    """A batch writes sessions and photos of its own: never into a session folder, where they would nest."""
    from dragedit.pipeline.core.session import has_session_manifest

    for folder in (out.resolve(), *out.resolve().parents):
        if has_session_manifest(folder):
            raise UserError(f"the output folder {out} is inside the dragedit session {folder}; give a folder of "
                            "its own for the batch")


def run_batch(inputs: list[str], edits: list, out_dir: str | os.PathLike, *, config: BatchConfig | None = None,
              settings: EditSettings | None = None, progress: bool = True,
              on_row: Callable[[PhotoRow], None] | None = None) -> BatchResult:
    """Apply `edits` (EditRequests, anchored drags welcome) to every photo of `inputs`; sessions, outputs
    and the summary (`batch.json`, `batch.csv`) go to `out_dir`."""
    from tqdm import tqdm

    cfg = config or BatchConfig()
    out = Path(out_dir)
    _not_inside_a_session(out)
    photos = without_outputs(collect_photos([str(i) for i in inputs]), out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise atomic.write_error(out, exc) from None
    settings = settings or EditSettings()
    threads = cfg.threads_per_worker(settings)
    jobs = [PhotoJob(str(p), n, str(out.resolve()), edits, cfg.face, threads, settings)
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
            from .ray import run_on_ray

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
    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(jobs)), mp_context=ctx, initializer=start_worker,
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
