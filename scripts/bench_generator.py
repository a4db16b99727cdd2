"""Generator speed and memory: FFHQ-512 architecture (random weights), batch 1.

Prints forward and forward+backward (gradient w.r.t. W+, as the drag loop needs) time per image
and peak memory, for the full synthesis and for synthesis stopped after block 5 (DragGAN's
feature block). Each case runs in its own process so peak RSS belongs to that case alone.

    python scripts/bench_generator.py [--device cpu] [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import resource
import time

from benchlib import run_isolated


def run_case(mode: str, device: str, repeats: int, threads: int | None) -> dict:
    import torch

    from dragedit.stylegan2 import Generator, GeneratorConfig

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    G = Generator(GeneratorConfig()).to(device).eval().requires_grad_(False)
    ws = G.mapping(torch.randn(1, G.z_dim, device=device))
    backward = mode.endswith("+bwd")
    upto5 = mode.startswith("block5")

    def step():
        w = ws.clone().requires_grad_(backward)
        with torch.set_grad_enabled(backward):
            out = G.synthesis.features(w, upto=5)[-1] if upto5 else G.synthesis(w)
            if backward:
                out.square().mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"mode": mode, "ms_median": 1000 * sorted(times)[len(times) // 2], "ms_min": 1000 * min(times),
            "peak_mb": peak, "peak_kind": "cuda allocated" if device == "cuda" else "process max RSS"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.device, args.repeats, args.threads)))
        return
    extra = ["--device", args.device, "--repeats", str(args.repeats)] + (["--threads", str(args.threads)] if args.threads else [])
    rows = run_isolated(__file__, ["full", "full+bwd", "block5", "block5+bwd"], extra)
    import torch

    print(f"FFHQ-512 StyleGAN2 generator, batch 1, device={args.device}, torch threads={args.threads or torch.get_num_threads()}")
    print(f"{'mode':<12} {'median ms':>10} {'min ms':>9} {'peak MB':>9}")
    for r in rows:
        print(f"{r['mode']:<12} {r['ms_median']:>10.1f} {r['ms_min']:>9.1f} {r['peak_mb']:>9.0f}  ({r['peak_kind']})")
    by = {r["mode"]: r for r in rows}
    print(f"stopping at block 5: forward x{by['full']['ms_median'] / by['block5']['ms_median']:.2f}, "
          f"forward+backward x{by['full+bwd']['ms_median'] / by['block5+bwd']['ms_median']:.2f} faster")


if __name__ == "__main__":
    main()
