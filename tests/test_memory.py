"""Freed memory kept while dragedit computes (`fileio/memory.py`): large tensors reuse it instead of being mapped
in afresh, page fault by page fault; after, that memory goes back to the kernel."""
import os
import resource

import pytest
import torch

from dragedit.fileio import memory
from dragedit.fileio.memory import freed_memory_kept

BIG = 40 << 20  # above glibc's largest mmap threshold (32 MiB): mapped afresh each time by default
PAGES = BIG / resource.getpagesize()


def _faults() -> int:
    """Minor page faults of one large buffer filled and freed."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(BIG // 4)
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _resident() -> int:
    """Bytes of this process in memory now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _settled(limit: int = 64) -> bool:
    """Four buffers in a row came from memory the process holds (the first few may grow the heap, until freed
    blocks coalesce into room for the next; glibc's default never gets there)."""
    run = 0
    for _ in range(limit):
        run = run + 1 if _faults() < 0.05 * PAGES else 0
        if run == 4:
            return True
    return False


@pytest.fixture
def glibc(monkeypatch):
    if memory._glibc() is None:
        pytest.skip("not glibc")
    for k in [k for k in os.environ if k.startswith("MALLOC_")] + ["GLIBC_TUNABLES", "DRAGEDIT_KEEP_MEMORY"]:
        monkeypatch.delenv(k, raising=False)


def test_large_buffers_reuse_kept_memory_inside_and_are_returned_after(glibc):
    assert all(_faults() > 0.9 * PAGES for _ in range(4))  # glibc maps each one anew
    with freed_memory_kept() as kept:
        assert kept
        assert _settled()
        with freed_memory_kept():  # nested: still kept, and leaving the inner block keeps it
            pass
        assert _settled()
        kept_rss = _resident()
    assert _resident() < kept_rss - BIG // 2  # what it kept went back to the kernel


@pytest.mark.parametrize("var, value", [("MALLOC_ARENA_MAX", "2"), ("DRAGEDIT_KEEP_MEMORY", "0")])
def test_malloc_tuned_by_the_user_or_kept_off_is_left_alone(glibc, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    calls = []
    monkeypatch.setattr(memory, "_set", lambda libc, params: calls.append(params))
    with freed_memory_kept() as kept:
        assert not kept
    assert calls == []  # glibc's settings untouched
