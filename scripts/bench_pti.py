"""PTI speed and memory: FFHQ-512 architecture (random weights), seconds per pivot and tuning step.

Runs a few steps of each stage and extrapolates to the reference step counts (450 pivot, up to 350
tuning). The perceptual loss is whatever this machine has (LPIPS if torchvision's weights are
cached, else the L1 + MS-SSIM fallback); the output says which.

    python scripts/bench_pti.py [--device cpu] [--steps 4]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from inversion import PTIConfig, invert
    from stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(0)
    device = torch.device(args.device)
    G = Generator(GeneratorConfig()).to(device).eval().requires_grad_(False)
    target = torch.rand(1, 3, 512, 512, device=device) * 2 - 1
    stamps: dict[str, list[float]] = {"pivot": [], "tune": []}

    def hook(stage: str, step: int) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps[stage].append(time.perf_counter())

    cfg = PTIConfig(pivot_steps=args.steps + 1, tune_steps=args.steps + 1, lpips_threshold=-1.0,
                    allow_download=False, checkpoint_every=10**6)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = invert(G, target, cfg, progress=False, step_hook=hook)
    total = time.perf_counter() - t0
    per = {k: (v[-1] - v[0]) / (len(v) - 1) for k, v in stamps.items()}  # first step is warm-up
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(f"PTI, FFHQ-512 generator (random weights), device={args.device}, threads={torch.get_num_threads()}, "
          f"losses={res.losses_used}")
    print(f"pivot step   {per['pivot']:.2f} s  -> 450 steps: {450 * per['pivot'] / 60:.1f} min")
    print(f"tuning step  {per['tune']:.2f} s  -> 350 steps: {350 * per['tune'] / 60:.1f} min (less with early stop)")
    print(f"peak memory  {peak:.0f} MB ({'cuda allocated' if device.type == 'cuda' else 'process max RSS'}); "
          f"this run {total:.0f} s including the 10,000-sample mean w")


if __name__ == "__main__":
    main()
