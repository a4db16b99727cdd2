"""Long work for `dragedit serve`, off the request threads: one job per session, a small shared queue.

A job is a drag edit from a photo: align, invert (PTI), drag, composite, through the same `Session` the
CLI uses. Each session's `JobState` holds what the page shows (stage, step, total, current points, a live
preview render) and a version number that server-sent event streams wait on, so progress and the final
state survive a page reload.
"""
from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from dragedit.common.environment import log
from dragedit.common.errors import UserError


class Busy(UserError):
    """The session already has a job queued or running (HTTP 409)."""


class QueueFull(UserError):
    """Every job slot is taken (HTTP 503)."""


class Cancelled(UserError):
    """The job was cancelled (`DELETE .../job`); it stops at its next step and commits nothing half done."""


ACTIVE = ("queued", "running")  # a job's states before its final one


@dataclass
class JobState:
    """What a session's latest job is doing, as the page sees it (`snapshot()`)."""

    status: str = "idle"  # idle | queued | running | done | failed | cancelled | interrupted (by a restart)
    edit: int | None = None  # the edit this job makes
    stage: str | None = None  # align | invert | drag | composite
    step: int = 0
    total: int = 0
    points: list[list[float]] = field(default_factory=list)  # current handle positions, photo pixels
    targets: list[list[float]] = field(default_factory=list)
    error: str | None = None
    preview: bytes | None = None  # PNG of the generator crop, refreshed every few drag steps
    preview_step: int = 0
    version: int = 0
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def snapshot(self, preview_url: str) -> dict[str, Any]:
        return {"status": self.status, "edit": self.edit, "stage": self.stage, "step": self.step,
                "total": self.total, "points": self.points, "targets": self.targets, "error": self.error,
                "preview": f"{preview_url}?v={self.preview_step}" if self.preview is not None else None,
                "version": self.version}

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class JobRunner:
    """A fixed pool of worker threads (torch work is CPU- or GPU-bound: one worker is usually right) and at
    most `max_queued` jobs waiting. `submit` refuses a second job for a busy session."""

    def __init__(self, max_queued: int = 4, scrub: Callable[[str], str] = str):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dragedit-job")
        self._lock = threading.Lock()
        self._states: dict[str, JobState] = {}
        self.max_queued = max_queued
        self.scrub = scrub  # takes the server's paths out of error messages

    def state(self, session_id: str) -> JobState:
        with self._lock:
            return self._states.setdefault(session_id, JobState())

    def snapshot(self, session_id: str, preview_url: str) -> dict[str, Any]:
        """The session's job state as the page sees it, read whole under the lock (a job that finishes while an
        event is being sent must not be taken for finished before its final state is sent)."""
        with self._lock:
            return self._states.setdefault(session_id, JobState()).snapshot(preview_url)

    def update(self, session_id: str, **changes: Any) -> None:
        """Change a session's job state and wake its event streams."""
        with self._lock:
            st = self._states.setdefault(session_id, JobState())
            for k, v in changes.items():
                setattr(st, k, v)
            st.version += 1

    def submit(self, session_id: str, edit: int, work: Callable[[Callable[..., None]], None]) -> None:
        """Queue `work(update)` for the session; `update(**changes)` reports progress (and raises `Cancelled`
        once the job is cancelled, so the work stops at its next step)."""
        with self._lock:
            st = self._states.setdefault(session_id, JobState())
            if st.active and st.cancel.is_set():
                raise Busy(f"session {session_id}'s job (edit {st.edit}) is being cancelled; try again in a moment")
            if st.active:
                raise Busy(f"session {session_id} is busy with edit {st.edit}; wait for it to finish")
            if sum(s.active for s in self._states.values()) >= self.max_queued:
                raise QueueFull(f"the server is busy with {self.max_queued} jobs; try again in a minute")
            self._states[session_id] = JobState(status="queued", edit=edit, version=st.version + 1)
        self._pool.submit(self._run, session_id, work)

    def cancel(self, session_id: str) -> str | None:
        """Ask the session's queued or running job to stop at its next step: 'cancelling' when this asked,
        'already cancelling' when it had been asked before and the job has not stopped yet; None: no job."""
        with self._lock:
            st = self._states.get(session_id)
            if st is None or not st.active:
                return None
            if st.cancel.is_set():
                return "already cancelling"
            st.cancel.set()
            return "cancelling"

    def _run(self, session_id: str, work: Callable[[Callable[..., None]], None]) -> None:
        cancel = self.state(session_id).cancel
        if cancel.is_set():
            self.update(session_id, status="cancelled", stage=None)
            return
        self.update(session_id, status="running")

        def update(**changes: Any) -> None:
            if cancel.is_set():
                raise Cancelled("cancelled")
            self.update(session_id, **changes)

        from dragedit.common.threads import CoreShare

        try:
            with CoreShare():  # the server shares the cores with other dragedit processes while it works
                work(update)
        except Cancelled:
            self.update(session_id, status="cancelled", stage=None)
        except UserError as exc:
            self.update(session_id, status="failed", error=self.scrub(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a job never takes the server down; the log has the traceback
            log.exception("dragedit serve: job for session %s failed", session_id)
            self.update(session_id, status="failed",
                        error=self.scrub(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]))
        else:
            self.update(session_id, status="done", stage=None)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def png_bytes(pixels) -> bytes:
    """An RGB uint8 array as PNG bytes (live previews are kept in memory, never on disk)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
