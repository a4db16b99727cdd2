"""How many CPU threads torch and OpenCV get, and the processes that share this machine's cores.

Torch's CPU results depend on the thread count (float reduction order), so stages that run torch put
`compute_signature()` in their cache keys. Two dragedit processes that each take every core slow each
other down about 4x (OpenMP threads spin while their siblings wait for a core); with one core each they
run side by side at full speed. So a process that is not told its thread count takes its fair share:
the cores divided by the dragedit processes running when it starts (`CoreShare`).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from .environment import runtime_dir, threads_from_env


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(sharing: int = 1) -> int:
    """$DRAGEDIT_THREADS or $OMP_NUM_THREADS if set, else this process's share of the cores when `sharing`
    dragedit processes run (itself included), at most 16 (more rarely pays for one photo)."""
    fixed = threads_from_env()
    if fixed:
        return fixed
    return max(1, min(available_cores(), 16) // max(1, sharing))


def prepare_threads(threads: int) -> None:
    """In a fresh worker process, before torch is imported: OpenMP's pool size."""
    os.environ["OMP_NUM_THREADS"] = str(threads)


_WORKER_SHARE: list = []  # a worker process's CoreShare, held for its life so single dragedit runs count it


def start_worker(threads: int) -> None:
    """A worker process (a batch's photos, a clip's frames), first thing: its thread limits before torch loads,
    a share of the cores other dragedit processes see, and death with its parent (Linux), so no orphan keeps a
    session locked or a core busy."""
    prepare_threads(threads)
    _WORKER_SHARE.append(CoreShare().__enter__())
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def use_threads(threads: int) -> None:
    """Torch's and OpenCV's intra-op threads for this process."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def compute_signature(device, threads: int | None = None) -> dict:
    """What a torch result depends on besides its inputs: the device type and, on a CPU, the thread count
    (this process's, or `threads`: the count a worker it starts will compute with)."""
    import torch

    kind = torch.device(device).type
    return {"device": kind, "threads": threads or torch.get_num_threads()} if kind == "cpu" else {"device": kind}


class CoreShare:
    """While entered, this process counts as one of the dragedit processes sharing the machine's cores.

    Each process holds an flock on `FOLDER/PID.lock` for its lifetime; the kernel drops it when the process
    dies (kill -9 included), so a lock file nobody holds is stale and removed. Where flock does not exist
    (Windows), every process counts itself alone."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else runtime_dir()
        self._fd: int | None = None
        self._path: Path | None = None

    def __enter__(self) -> "CoreShare":
        _ACTIVE.append(self)
        try:
            import fcntl

            self.folder.mkdir(parents=True, exist_ok=True)
            self._path = self.folder / f"{os.getpid()}.lock"
            self._fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (ImportError, OSError):
            self._fd = None
        return self

    def __exit__(self, *exc) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self._fd is not None:
            os.close(self._fd)
            self._path.unlink(missing_ok=True)
            self._fd = None

    def running(self) -> int:
        """dragedit processes holding a share now, this one included (1 when sharing is not possible)."""
        if self._fd is None:
            return 1
        import fcntl

        count = 1
        for path in self.folder.glob("*.lock"):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                count += 1  # held by a live process
            else:
                path.unlink(missing_ok=True)  # left by a process that died
            finally:
                os.close(fd)
        return count


_ACTIVE: list[CoreShare] = []  # the shares this process holds (a CLI command, a batch worker)
_FIXED: list[int] = []  # a count this process was given for its work (a batch worker's cores / workers)


@contextmanager
def fair_share_fixed(threads: int):
    """Within the block this process's share is `threads` (a batch worker owns its cores whatever else runs)."""
    _FIXED.append(threads)
    try:
        yield
    finally:
        _FIXED.pop()


def fair_share_threads() -> int:
    """Threads for new work in this process: a fixed share, else its share of the cores among the dragedit
    processes running now (a process that holds no `CoreShare` counts itself alone)."""
    if _FIXED:
        return _FIXED[-1]
    return default_threads(_ACTIVE[-1].running() if _ACTIVE else 1)
