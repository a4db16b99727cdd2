"""Batch throughput and processes sharing the cores, on this machine.

1. `dragedit batch` over N copies of a photo (each copy its own session), with 1 and 2 workers: photos
   per minute. Each worker owns cores / workers threads.
2. Two single-photo `dragedit edit` runs: one alone, then two at once (the second started 2 s later, as
   a person or a script would), with the default threads (each takes its share of the cores, CoreShare)
   and, for comparison, with both forced to every core (`--threads` = cores, the old behaviour).

3. A one-worker batch beside an idle `dragedit serve` and a running `dragedit edit` (the batch and the edit share
   the cores; an idle server takes no share): the threads the batch's edit took and its seconds per photo (`--only-beside` runs this
   alone).

Every run is a fresh process on a fresh output folder. Run it on a quiet machine: it measures the cores.

    python scripts/bench_batch.py [--photo tests/fixtures/photos/astronaut.png] [--copies 4]
        [--pivot-steps 150 --tune-steps 100 --steps 40] [--skip-forced] [--only-beside [--beside-threads N]]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dragedit.common.threads import available_cores

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dragedit", *map(str, args)]


def _steps(a: argparse.Namespace) -> list[str]:
    return ["--pivot-steps", str(a.pivot_steps), "--tune-steps", str(a.tune_steps), "--steps", str(a.steps),
            "--offline", "--device", "cpu"]


def bench_batch(a: argparse.Namespace, work: Path, workers: int) -> dict:
    photos = work / f"photos-{workers}"
    photos.mkdir()
    for i in range(a.copies):
        shutil.copy(a.photo, photos / f"copy{i}{Path(a.photo).suffix}")
    edits = work / "edits.json"
    edits.write_text(json.dumps({"edits": [{"drags": ["@mouth_left:-3%,-6%", "@mouth_right:3%,-6%"]}]}))
    t0 = time.perf_counter()
    proc = subprocess.run(_cli("batch", photos, "--edits", edits, "-o", work / f"out-{workers}", "--workers",
                               workers, "--json", *_steps(a)), cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"batch failed: {proc.stderr.strip().splitlines()[-1]}")
    done = json.loads(proc.stdout)["counts"]["done"]
    return {"workers": workers, "photos": done, "seconds": round(seconds, 1),
            "photos_per_minute": round(60 * done / seconds, 2)}


def _edit(a: argparse.Namespace, work: Path, tag: str, threads: int | None) -> subprocess.Popen:
    extra = ["--threads", str(threads)] if threads else []
    return subprocess.Popen(_cli("edit", a.photo, "--drag", a.drag, "-o", work / f"{tag}.png", "--session",
                                 work / f"{tag}.dragedit", *_steps(a), *extra, "--json"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_concurrent(a: argparse.Namespace, work: Path, threads: int | None, label: str) -> dict:
    t0 = time.perf_counter()
    assert _edit(a, work, f"alone-{label}", threads).wait() == 0
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = _edit(a, work, f"first-{label}", threads)
    time.sleep(2.0)
    second = _edit(a, work, f"second-{label}", threads)
    assert first.wait() == 0 and second.wait() == 0
    both = time.perf_counter() - t0
    return {"threads": label, "one_alone_s": round(alone, 1), "two_at_once_s": round(both, 1),
            "slowdown_vs_alone": round(both / alone, 2)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_beside(a: argparse.Namespace, work: Path) -> dict:
    """A one-worker batch of one photo while an idle server and a long edit run beside it."""
    serve = subprocess.Popen(_cli("serve", "--root", work / "serve", "--port", _free_port()), cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    serve.stdout.readline()  # "dragedit serve: open ...": it is up and holds its share
    long_steps = ["--pivot-steps", "100000", "--tune-steps", "5", "--steps", "3", "--offline", "--device", "cpu"]
    edit = subprocess.Popen(_cli("edit", a.photo, "--drag", a.drag, "-o", work / "beside.png", "--session",
                                 work / "beside.dragedit", *long_steps), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(5.0)  # the edit is in its PTI
        photos = work / "beside-photos"
        photos.mkdir()
        shutil.copy(a.photo, photos / f"one{Path(a.photo).suffix}")
        edits = work / "beside-edits.json"
        edits.write_text(json.dumps({"edits": [{"drags": ["@mouth_left:-3%,-6%"]}]}))
        t0 = time.perf_counter()
        forced = ["--threads", str(a.beside_threads)] if a.beside_threads else []
        proc = subprocess.run(_cli("batch", photos, "--edits", edits, "-o", work / "beside-out", "--workers", 1,
                                   "--json", *_steps(a), *forced), cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    finally:
        for p in (edit, serve):
            p.kill()
            p.wait()
    if proc.returncode != 0:
        raise SystemExit(f"batch failed: {proc.stderr.strip().splitlines()[-1]}")
    row = json.loads(proc.stdout)["rows"][0]
    return {"threads": row.get("threads"), "seconds": round(seconds, 1), "invert_s": row["seconds"].get("invert")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", default=str(REPO / "tests" / "fixtures" / "photos" / "astronaut.png"))
    p.add_argument("--drag", default="201,139:199,133")
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--pivot-steps", type=int, default=150)
    p.add_argument("--tune-steps", type=int, default=100)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--skip-forced", action="store_true", help="skip the slow 'every process takes every core' case")
    p.add_argument("--only-beside", action="store_true", help="only the batch beside a server and an edit")
    p.add_argument("--beside-threads", type=int, help="force the batch's threads there (2 on 2 cores: what the "
                                                       "batch took before it counted the other processes)")
    a = p.parse_args()
    cores = available_cores()
    flags = sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))}) \
        if Path("/proc/cpuinfo").exists() else []
    print(f"{cores} cores ({' '.join(flags)}); embedded generator; PTI {a.pivot_steps} + {a.tune_steps} steps, "
          f"{a.steps} drag steps")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        r = bench_beside(a, work)
        print("\n| one-worker batch beside an idle server and a running edit | threads | seconds | of which PTI |\n"
              f"| --- | --- | --- | --- |\n| one photo | {r['threads']} | {r['seconds']} | {r['invert_s']} |", flush=True)
        if a.only_beside:
            return
        print("\n| workers | photos | seconds | photos / minute |\n| --- | --- | --- | --- |")
        for workers in (1, 2):
            r = bench_batch(a, work, workers)
            print(f"| {r['workers']} | {r['photos']} | {r['seconds']} | {r['photos_per_minute']} |", flush=True)
        print("\n| threads per run | one alone (s) | two at once (s) | two at once / one alone |\n| --- | --- | --- | --- |")
        cases = [(None, "default (fair share)")] + ([] if a.skip_forced else [(cores, f"forced {cores}")])
        for threads, label in cases:
            r = bench_concurrent(a, work, threads, label)
            print(f"| {r['threads']} | {r['one_alone_s']} | {r['two_at_once_s']} | {r['slowdown_vs_alone']}x |",
                  flush=True)


if __name__ == "__main__":
    main()
