"""PTI speed and quality: the official schedule against dragedit's default (coarse pivot, plateau stops).

1. Time per step on the FFHQ-512 architecture (random weights): a pivot step at full resolution, a
   coarse pivot step (the 256 px RGB, no 512 block) and a tuning step; a few steps each, first dropped.
2. Quality on the embedded generator over a folder of photos (each aligned with dlib): PSNR, MS-SSIM and
   LPIPS (where its weights are cached) of the tuned reconstruction, the steps each stage actually ran,
   and the wall time, for both schedules.
3. Time to a pivot + tuned generator at 512 px at full resolution (`--invert-resolution 0`): each schedule's
   step counts (for the new one, the mean steps run in part 2) times part 1's step costs. The default caps PTI
   at 256 px for such a generator; `bench_edit.py` costs that, in the whole edit.

    python scripts/bench_pti.py [--photos ../shared/photos] [--device cpu] [--steps 3] [--skip-quality]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

from benchlib import photos_in  # a sibling module (the script's folder is on the path)


def step_costs(device: torch.device, steps: int) -> dict[str, float]:
    """Seconds per step of each kind on the FFHQ-512 architecture."""
    from dragedit.inversion import PTIConfig, invert
    from dragedit.stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig()).to(device).eval().requires_grad_(False)
    target = torch.rand(1, 3, 512, 512, device=device) * 2 - 1
    out = {}
    for name, skip in (("pivot_full", 0), ("pivot_coarse", 1)):
        stamps: dict[str, list[float]] = {"pivot": [], "tune": []}

        def hook(stage: str, _step: int) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            stamps[stage].append(time.perf_counter())

        cfg = PTIConfig.official()
        cfg.pivot_steps, cfg.tune_steps, cfg.pivot_skip_blocks = steps + 1, (steps + 1 if skip else 0), skip
        cfg.lpips_threshold, cfg.allow_download, cfg.w_avg_samples = -1.0, False, 1000
        invert(G, target, config=cfg, progress=False, step_hook=hook)
        out[name] = (stamps["pivot"][-1] - stamps["pivot"][0]) / (len(stamps["pivot"]) - 1)
        if skip:
            out["tune"] = (stamps["tune"][-1] - stamps["tune"][0]) / (len(stamps["tune"]) - 1)
    return out


def quality(photos: Path, device: torch.device) -> list[dict]:
    """Both schedules on every face photo of `photos`, with the embedded generator."""
    import numpy as np

    from dragedit.common.images import tensor_to_uint8, uint8_to_tensor
    from dragedit.inversion import PTIConfig, invert
    from dragedit.inversion.losses import lpips_metric, ms_ssim
    from dragedit.inversion.pti import psnr
    from dragedit.pipeline.imaging.align import AlignConfig, align_photo
    from dragedit.pipeline.imaging.faces import NoFaceError
    from dragedit.pipeline.core.runtime import resolve_generator
    from dragedit.pipeline.imaging.photo import load_photo
    from dragedit.stylegan2 import load_generator

    G = load_generator(resolve_generator(None), device=device)
    lp = lpips_metric("alex")
    rows = []
    for path in photos_in(photos):
        try:
            crop = align_photo(load_photo(path), AlignConfig(size=G.img_resolution)).crop
        except NoFaceError:
            continue
        target = uint8_to_tensor(np.ascontiguousarray(crop), device)
        for schedule, cfg in (("official", PTIConfig.official()), ("dragedit", PTIConfig())):
            cfg.allow_download = False
            t0 = time.perf_counter()
            res = invert(G, target, config=cfg, progress=False)
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                img = res.G.synthesis(res.w, noise_mode="const")
                img = uint8_to_tensor(tensor_to_uint8(img), device)  # scored as the saved PNG is
                row = {"photo": path.name, "schedule": schedule, "psnr": psnr(img, target),
                       "ms_ssim": float(ms_ssim(img, target).mean()),
                       "lpips": float(lp.to(device)(img, target).mean()) if lp is not None else None,
                       "pivot_steps": res.metrics["pivot_steps_run"], "tune_steps": res.metrics["tune_steps_run"],
                       "seconds": seconds}
            rows.append(row)
            print(f"  {row['photo']:<28} {schedule:<9} PSNR {row['psnr']:.2f} dB  MS-SSIM {row['ms_ssim']:.4f}  "
                  f"steps {row['pivot_steps']} + {row['tune_steps']}  {seconds:.1f} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--photos", default="../shared/photos")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from dragedit.inversion import PTIConfig

    device = torch.device(args.device)
    old, new = PTIConfig.official(), PTIConfig(max_resolution=None)
    print(f"device={args.device}, threads={torch.get_num_threads()}")
    rows = [] if args.skip_quality else quality(Path(args.photos), device)
    if rows:
        print("\n| schedule | photos | PSNR (dB) | MS-SSIM | LPIPS | pivot steps | tuning steps | seconds (128 px) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for sched in ("official", "dragedit"):
            rs = [r for r in rows if r["schedule"] == sched]
            lp = [r["lpips"] for r in rs if r["lpips"] is not None]
            print(f"| {sched} | {len(rs)} | {statistics.mean(r['psnr'] for r in rs):.2f} | "
                  f"{statistics.mean(r['ms_ssim'] for r in rs):.4f} | "
                  f"{f'{statistics.mean(lp):.4f}' if lp else 'n/a (no weights)'} | "
                  f"{statistics.mean(r['pivot_steps'] for r in rs):.0f} | {statistics.mean(r['tune_steps'] for r in rs):.0f} | "
                  f"{statistics.mean(r['seconds'] for r in rs):.1f} |")
    cost = step_costs(device, args.steps)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    new_rows = [r for r in rows if r["schedule"] == "dragedit"]
    pivot_new = statistics.mean(r["pivot_steps"] for r in new_rows) if new_rows else new.pivot_steps
    tune_new = statistics.mean(r["tune_steps"] for r in new_rows) if new_rows else new.tune_steps
    t_old = old.pivot_steps * cost["pivot_full"] + old.tune_steps * cost["tune"]
    fine = min(new.pivot_fine_steps, pivot_new)
    t_new = (pivot_new - fine) * cost["pivot_coarse"] + fine * cost["pivot_full"] + tune_new * cost["tune"]
    print(f"\nFFHQ-512 architecture, per step: pivot {cost['pivot_full']:.2f} s at 512, {cost['pivot_coarse']:.2f} s "
          f"coarse (256); tuning {cost['tune']:.2f} s; peak memory {peak:.0f} MB")
    print("| schedule | pivot | tuning | time to pivot + tuned generator |\n| --- | --- | --- | --- |")
    print(f"| official | {old.pivot_steps} at 512 | {old.tune_steps} | {t_old / 60:.1f} min |")
    print(f"| dragedit | {pivot_new:.0f} ({fine} at 512, the rest at 256) | {tune_new:.0f} | {t_new / 60:.1f} min "
          f"(x{t_old / t_new:.1f} faster) |")


if __name__ == "__main__":
    main()
