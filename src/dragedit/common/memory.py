"""Freed memory kept in the process while dragedit computes, so large tensors are not mapped in afresh each time.

glibc returns every freed block above its mmap threshold (32 MiB at most) to the kernel, and maps the next one
anew: the kernel then zero-fills it one 4 KiB page fault at a time. A 512 px generator's 256 px activations
(128 channels) are 33.5 MB, so each PTI step at 256 px took about 350 000 page faults (1.4 GB mapped afresh),
a fifth of a tuning step's time. While `freed_memory_kept()` is entered, large blocks come from the heap and
freed ones stay there for the next tensor; when the outermost one is left, the kept memory goes back to the
kernel and glibc's thresholds are set as its own rule sets them once a large block has been freed (which any
torch process reaches at once). Nothing happens outside glibc (macOS, Windows, musl), with
DRAGEDIT_KEEP_MEMORY=0, or where the user tuned malloc through its environment variables.

The cost is memory: freed blocks that do not fit the next request stay held, so the peak grows (a 512 px
full-resolution tuning step 2.5 -> 3.1 GB, 34 % faster; the default capped edit 2.5 -> 2.8 GB). Above 512 px
it grows by more than a laptop may have (a 1024 full-resolution tuning step 3.7 -> 4.9 GB, its whole edit
4.4 -> 7.1 GB), so work at such sizes runs as glibc would have it (`worth_keeping`).
"""
from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .environment import may_keep_freed_memory

# mallopt parameters (glibc <malloc.h>)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_KEEP = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2 ** 31 - 1}  # no block mapped on its own; the heap's top never trimmed
_AFTER = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20}  # glibc's after its first large free

_lock = threading.Lock()
_depth = 0


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        if not all(hasattr(libc, f) for f in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
            return None
    except (OSError, TypeError, AttributeError):
        return None
    return libc


def _set(libc: ctypes.CDLL, params: dict[int, int]) -> bool:
    return all(libc.mallopt(ctypes.c_int(p), ctypes.c_int(v)) == 1 for p, v in params.items())


def worth_keeping(resolution: int) -> bool:
    """Whether work whose images are `resolution` px should keep freed memory: up to 512 px (the largest tensors
    64 MiB); above, the heap's fragmentation would cost gigabytes."""
    return resolution <= 512


@contextmanager
def freed_memory_kept(keep: bool = True) -> Iterator[bool]:
    """Within the block (nested and from several threads alike), freed memory stays in the process for reuse.
    Yields whether it does here: asked to (`keep`), on glibc, and malloc not tuned by the user. A block that does
    not keep leaves an enclosing one keeping."""
    global _depth
    libc = _glibc() if keep and may_keep_freed_memory() else None
    if libc is None:
        with _lock:
            kept = _depth > 0
        yield kept
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _set(libc, _KEEP)
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(libc, _AFTER)
                libc.malloc_trim(ctypes.c_size_t(0))
