"""Train the embedded default generator on procedurally rendered portraits (resumable).

    python scripts/train_generator.py --run runs/faces128 --kimg 100 [--hours 2] [--device auto]
    python scripts/train_generator.py --run runs/faces128 --export src/dragedit/pipeline/assets/default_generator.safetensors
    python scripts/train_generator.py --run runs/faces128 --figure docs/samples.png

Each snapshot writes RUN/train_checkpoint.pt (atomic), RUN/samples.png and RUN/generator.safetensors
(EMA generator, fp16). Running the same command again continues from the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dragedit.stylegan2.portraits import grid, render_batch


def main() -> None:
    from dragedit.pipeline.core.runtime import resolve_device
    from dragedit.common.images import save_image
    from dragedit.stylegan2 import save_generator
    from dragedit.stylegan2.training import CHECKPOINT, TrainConfig, Trainer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run folder (checkpoint, samples, exported generator)")
    ap.add_argument("--kimg", type=float, default=100.0, help="total thousands of images to train on")
    ap.add_argument("--hours", type=float, default=None, help="stop this call after this long (resume later)")
    ap.add_argument("--snap", type=float, default=2.0, help="snapshot every this many kimg")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    ap.add_argument("--pl-weight", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--export", help="write the EMA generator (fp16 safetensors) here and stop")
    ap.add_argument("--figure", help="write a sample grid (seeds 0-7 at psi 1.0 and 0.7, then 8 training images) "
                                     "here and stop")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(batch=args.batch, amp=args.amp, pl_weight=args.pl_weight)
    size = cfg.generator.img_resolution
    trainer = Trainer(cfg, lambda seeds: render_batch(seeds, size), run, device)
    resumed = trainer.load(run / CHECKPOINT)
    hardware = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads" if device.type == "cpu" \
        else torch.cuda.get_device_name(device)

    def provenance() -> dict:
        return {"trained_on": "procedural portraits (scripts/render_faces.py)", "kimg": round(trainer.kimg, 3),
                "train_seconds": round(trainer.elapsed), "hardware": hardware, "device": str(device),
                "train_config": cfg.to_dict(), "date": time.strftime("%Y-%m-%d")}

    def snapshot(t: Trainer) -> None:
        Image.fromarray(grid(t.sample_grid(list(range(16))), 4)).save(run / "samples.png")
        save_generator(t.G_ema, run / "generator.safetensors", provenance=provenance(), dtype=torch.float16)
        (run / "progress.json").write_text(json.dumps(provenance(), indent=2))

    if args.figure:
        if not resumed:
            sys.exit(f"no checkpoint in {run}")
        seeds = list(range(8))
        rows = [trainer.sample_grid(seeds), trainer.sample_grid(seeds, psi=0.7), render_batch(seeds, size)]
        save_image(grid(np.concatenate(rows), 8), args.figure)
        print(f"wrote {args.figure} at {trainer.kimg:.1f} kimg")
        return
    if args.export:
        if not resumed:
            sys.exit(f"no checkpoint in {run}")
        save_generator(trainer.G_ema, args.export, provenance=provenance(), dtype=torch.float16)
        print(f"exported {args.export} at {trainer.kimg:.1f} kimg")
        return
    print(f"{'resuming at' if resumed else 'starting'} {trainer.kimg:.2f} kimg on {hardware}", flush=True)
    trainer.fit(args.kimg, args.snap, args.hours * 3600 if args.hours else None, on_snapshot=snapshot)
    print(f"stopped at {trainer.kimg:.2f} kimg after {trainer.elapsed / 3600:.2f} h of training", flush=True)


if __name__ == "__main__":
    main()
