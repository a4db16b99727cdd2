"""Drag loop speed and memory: FFHQ-512 architecture (random weights), batch 1.

Modes (each in its own process, so peak RSS is its own), one handle:
  ours        synthesis stopped after the feature block, its late blocks on crops around the handles
              (DragConfig.windowed), features sampled only where needed
  whole-map   ours with the feature blocks on the whole map (the default before the windows)
  full-synth  every block run each step (image included), sparse sampling
  official    every block run each step and the feature map resized to 512x512 (the official cost)
  ours-bf16   ours, the generator forward under bf16 autocast (DragConfig(precision="bf16"))
  ours-chlast ours, the generator's weights in channels-last memory format
  ours-compile ours, the feature forward through torch.compile (inductor); use --steps 10 or more
and `ours` with 1, 5 and 68 handles (`--handles`). Then `checked`: a whole drag of --check-steps (100) steps as an
edit runs it, two handles, the independent arrival check on and the renders at 256 px (PTI's resolution cap),
timed end to end (start render, checks and final render included) and against the official cost of as many steps.

    python scripts/bench_drag.py [--device cpu] [--steps 6] [--threads N] [--handles 1,5,68] [--check-steps 100]
"""
from __future__ import annotations

import argparse
import json
import resource
import time

from benchlib import run_isolated

MODES = {"ours": {}, "whole-map": {"windowed": False}, "full-synth": {"full_synthesis": True},
         "official": {"full_synthesis": True, "sparse": False}, "ours-bf16": {"precision": "bf16"},
         "ours-chlast": {}, "ours-compile": {}}


def _points(n: int) -> tuple[list[list[float]], list[list[float]]]:
    """n handles spread over the face area of a 512 image (a 68-point case is a whole landmark set), each
    dragged 30 px to the right."""
    side = max(1, int(n ** 0.5 + 0.999))
    handles = [[150 + 200 * (i % side) / max(side - 1, 1), 150 + 200 * (i // side) / max(side - 1, 1)]
               for i in range(n)]
    return handles, [[x + 30, y] for x, y in handles]


def run_case(case: str, device: str, steps: int, threads: int | None) -> dict:
    import torch

    from dragedit.draggan import DragConfig, drag
    from dragedit.stylegan2 import Generator, GeneratorConfig

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    G = Generator(GeneratorConfig()).to(device).eval().requires_grad_(False)
    if case.startswith("ours-chlast"):
        G = G.to(memory_format=torch.channels_last)
    if case.startswith("ours-compile"):  # inductor; the first steps pay for the compilation
        G.synthesis.features = torch.compile(G.synthesis.features, dynamic=False)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, device=device), truncation_psi=0.7)
    stamps = []

    def cb(step):
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    mode, _, count = case.partition(":")
    if mode == "checked":
        return _checked(G, ws, int(count))
    handles, targets = _points(int(count)) if count else ([[200, 250]], [[300, 250]])
    cfg = DragConfig(max_steps=steps, stop_distance=1e-6, verify=False, **MODES[mode])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    drag(G, ws, handles, targets, config=cfg, callback=cb)
    total = time.perf_counter() - t0
    gaps = sorted(b - a for a, b in zip(stamps[:-1], stamps[1:]))[1:]  # drop the first (warm-up) step
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"mode": case, "ms_per_step": 1000 * gaps[len(gaps) // 2], "ms_min": 1000 * gaps[0],
            "total_s": total, "peak_mb": peak}


def _checked(G, ws, steps: int) -> dict:
    """A whole drag as an edit runs it (check on, renders at 256 px), with the time spent in the checks."""
    from dragedit.draggan import DragConfig, drag
    from dragedit.draggan.verify import ArrivalCheck

    spent, calls = [0.0], [0]
    check = ArrivalCheck.check

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return check(self, *a, **k)
        finally:
            spent[0] += time.perf_counter() - t0
            calls[0] += 1

    ArrivalCheck.check = timed
    t0 = time.perf_counter()
    res = drag(G, ws, [[200, 250], [312, 250]], [[170, 210], [342, 210]], config=DragConfig(max_steps=steps),
               image_resolution=256)
    total = time.perf_counter() - t0
    return {"mode": f"checked:{steps}", "steps": res.steps, "total_s": total, "check_s": spent[0], "checks": calls[0],
            "stopped_by": res.stopped_by, "ms_per_step": 1000 * total / max(res.steps, 1), "ms_min": float("nan"),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--handles", default="1,5,68", help="handle counts for the `ours` mode ('' to skip)")
    ap.add_argument("--check-steps", type=int, default=100, help="steps of the checked whole drag (0 to skip)")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.device, args.steps, args.threads)))
        return
    extra = ["--device", args.device, "--steps", str(args.steps)] + (["--threads", str(args.threads)] if args.threads else [])
    cases = args.modes.split(",") + [f"ours:{n}" for n in args.handles.split(",") if n]
    cases += [f"checked:{args.check_steps}"] if args.check_steps else []
    rows = run_isolated(__file__, cases, extra)
    import torch

    print(f"DragGAN step, FFHQ-512 generator (random weights), 1 handle, device={args.device}, "
          f"threads={args.threads or torch.get_num_threads()}, {args.steps} steps (first dropped)")
    print(f"{'mode[:handles]':<14} {'ms/step':>8} {'min ms':>8} {'peak MB':>8}")
    for r in rows:
        print(f"{r['mode']:<14} {r['ms_per_step']:>8.0f} {r['ms_min']:>8.0f} {r['peak_mb']:>8.0f}")
    by = {r["mode"]: r for r in rows}
    if "ours" in by and "official" in by:
        print(f"speed-up over the official cost: x{by['official']['ms_per_step'] / by['ours']['ms_per_step']:.2f}")
    checked = next((r for r in rows if r["mode"].startswith("checked")), None)
    if checked and "official" in by:
        official = by["official"]["ms_per_step"] * checked["steps"] / 1000
        print(f"whole checked drag: {checked['steps']} steps ({checked['stopped_by']}) in {checked['total_s']:.1f} s, "
              f"{checked['checks']} checks {checked['check_s']:.1f} s ({100 * checked['check_s'] / checked['total_s']:.0f} %); "
              f"official cost of {checked['steps']} steps {official:.1f} s: x{official / checked['total_s']:.2f}")


if __name__ == "__main__":
    main()
