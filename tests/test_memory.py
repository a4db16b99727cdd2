"""Freed memory kept while dragedit computes (`common/memory.py`): large tensors reuse it instead of being mapped
in afresh, page fault by page fault; after, that memory goes back to the kernel. Measured in a fresh interpreter,
whose heap holds no free blocks left by other tests."""
import json
import os
import subprocess
import sys

import pytest

from dragedit.common import memory
from dragedit.common.memory import freed_memory_kept, worth_keeping

PROBE = r'''
import json, resource, sys
import torch
from dragedit.common.memory import freed_memory_kept, worth_keeping

BIG = 40 << 20  # above glibc's largest mmap threshold (32 MiB): mapped afresh each time by default
PAGES = BIG / resource.getpagesize()


def faults():
    """Minor page faults of one large buffer filled and freed."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(BIG // 4)
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def settled(limit=64):
    """Four buffers in a row came from memory the process holds (the first few may grow the heap, until freed
    blocks coalesce into room for the next)."""
    run = 0
    for _ in range(limit):
        run = run + 1 if faults() < 0.05 * PAGES else 0
        if run == 4:
            return True
    return False


def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


out = {"default_settles": settled(16)}
with freed_memory_kept(False) as kept:  # work that should not keep (above 512 px) ...
    out["not_asked"] = kept
    with freed_memory_kept() as kept:  # ... around work that should
        out["kept"] = kept
        out["kept_settles"] = settled()
        with freed_memory_kept() as inner, freed_memory_kept(False) as not_asked:  # nested blocks leave it kept
            out["inner"] = inner and not_asked
        out["still_settles"] = settled()
        rss = resident()
    out["returned_mb"] = (rss - resident()) / 2 ** 20
print(json.dumps(out))
'''


@pytest.fixture
def clean_env():
    if memory._glibc() is None:
        pytest.skip("not glibc")
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "DRAGEDIT_KEEP_MEMORY")}


def test_large_buffers_reuse_kept_memory_inside_and_are_returned_after(clean_env):
    run = subprocess.run([sys.executable, "-c", PROBE], env=clean_env, capture_output=True, text=True, check=True)
    out = json.loads(run.stdout)
    assert not out["default_settles"]  # glibc maps each one anew
    assert not out["not_asked"]
    assert out["kept"] and out["kept_settles"] and out["inner"] and out["still_settles"]
    assert out["returned_mb"] > 20  # what it kept (at least one 40 MB block) went back to the kernel


@pytest.mark.parametrize("var, value", [("MALLOC_ARENA_MAX", "2"), ("DRAGEDIT_KEEP_MEMORY", "0")])
def test_malloc_tuned_by_the_user_or_kept_off_is_left_alone(clean_env, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    calls = []
    monkeypatch.setattr(memory, "_set", lambda libc, params: calls.append(params))
    with freed_memory_kept() as kept:
        assert not kept
    assert calls == []  # glibc's settings untouched


def test_work_above_512_px_runs_as_glibc_would():
    """Up to 512 px the kept memory pays (a 256 px tuning step 2.08 -> 1.66 s for +0.4 GB); at 1024 px the heap's
    fragmentation would cost gigabytes (a whole full-resolution edit 4.4 -> 7.1 GB)."""
    assert worth_keeping(128) and worth_keeping(256) and worth_keeping(512)
    assert not worth_keeping(1024)
