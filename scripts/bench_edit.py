"""The whole edit at the size people edit: a FFHQ-512 (or 1024) architecture with random weights, a 12 MP photo,
per stage, through the one recipe (`dragedit.edit_photo`), on this machine's CPU (flags printed).

A full edit at 512 takes many minutes on 2 cores, so each run is short (a few steps of each kind, the first of
each dropped) and the schedules are costed from the measured step times (the median of each kind's steps).
Five settings, each run in its own process (its own peak memory), all on today's code:

  before    the defaults before PTI's resolution cap and the windowed drag: inversion and tuning at the full
            resolution, 150 tuning steps, the drag's feature blocks on the whole map
  now       today's defaults: inversion and tuning up to 256 px (PTIConfig.max_resolution), the drag's late
            blocks on crops around the handles (DragConfig.windowed), its renders at 256 px
  official  the official cost of every step: full-resolution PTI, the whole synthesis + resize in each drag step
  cap128    today's defaults with PTI capped at 128 px (`--invert-resolution 128`): cheaper, a coarser field
  bf16      today's defaults with PTI and the drag under bf16 autocast (`--invert-precision bf16 --precision
            bf16`; on a CPU without AVX512-BF16 or AMX the pipeline runs fp32 instead, as it says)

The schedules: <= 100 coarse + 20 fine pivot steps, <= 150 tuning steps (before) or <= 100 (now, cap128) and
a 100-step drag; 450 pivot + 350 tuning steps and a 100-step drag (official). Plateau stops usually end both
PTI stages earlier on real photos (`bench_pti.py` measures how much).

The perceptual losses are LPIPS (VGG for the pivot, AlexNet for the tuning) as a user online runs them: their
backbones with random weights in a temporary torch hub (the same cost; this machine cannot download the real
ones). `--loss fallback` costs the L1 + MS-SSIM loss PTI falls back to offline.

    python scripts/bench_edit.py [--resolution 512 1024] [--steps 4] [--megapixels 12] [--settings before,now]
                                 [--loss lpips|fallback]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import run_isolated

REPO = Path(__file__).resolve().parent.parent
COUNTS = {"before": {"pivot_coarse": 100, "pivot_fine": 20, "tune": 150, "drag": 100},
          "now": {"pivot_coarse": 100, "pivot_fine": 20, "tune": 100, "drag": 100},
          "official": {"pivot_coarse": 0, "pivot_fine": 450, "tune": 350, "drag": 100},
          "cap128": {"pivot_coarse": 100, "pivot_fine": 20, "tune": 100, "drag": 100},
          "bf16": {"pivot_coarse": 100, "pivot_fine": 20, "tune": 100, "drag": 100}}


def cpu_flags() -> str:
    try:
        flags = set(next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                         if ln.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return platform.processor() or "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "no avx2"


def big_photo(path: Path, megapixels: float) -> Path:
    """The test photo's face in a photo of `megapixels` (4:3), as a phone would take it."""
    from PIL import Image

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    face = Image.open(REPO / "tests" / "fixtures" / "photos" / "astronaut.png").convert("RGB").resize((h, h),
                                                                                                      Image.LANCZOS)
    canvas = Image.new("RGB", (w, h), (200, 200, 205))
    canvas.paste(face, ((w - h) // 2, 0))
    canvas.save(path, quality=92)
    return path


def random_lpips_backbones(home: Path) -> None:
    """torchvision's VGG16 and AlexNet, random, where the torch hub cache holds the ImageNet weights: PTI then
    runs LPIPS at its real cost. For this process only (TORCH_HOME)."""
    import os

    import torch
    import torchvision

    from dragedit.inversion.losses import BACKBONE_FILES

    os.environ["TORCH_HOME"] = str(home)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    for net, make in (("vgg", torchvision.models.vgg16), ("alex", torchvision.models.alexnet)):
        torch.save(make().state_dict(), cache / BACKBONE_FILES[net])


def run(setting: str, resolution: int, steps: int, photo: Path, work: Path, loss: str = "lpips") -> dict:
    import torch

    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig
    from dragedit.pipeline.api import EditSettings, edit_photo, edit_request
    from dragedit.stylegan2 import Generator, GeneratorConfig, save_generator

    if loss == "lpips":
        random_lpips_backbones(work / "torch-home")
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=resolution)).eval()
    gen = save_generator(G, work / f"random-{resolution}.safetensors")
    stamps: dict[str, list[float]] = {}

    def hook(p) -> None:
        if p.total:
            key = p.stage if p.stage != "invert (pivot)" else ("pivot_fine" if p.step > steps + 1 else "pivot_coarse")
            stamps.setdefault(key.replace("invert (tune)", "tune"), []).append(time.perf_counter())

    # pivot: steps + 1 coarse, then steps + 1 fine; tuning steps + 1; every plateau stop off
    pti = PTIConfig(pivot_steps=2 * (steps + 1), pivot_fine_steps=steps + 1, tune_steps=steps + 1, plateau_window=0,
                    lpips_threshold=-1.0, allow_download=False, w_avg_samples=1000)
    drag = DragConfig(max_steps=steps + 1)
    if setting in ("before", "official"):
        pti.max_resolution, pti.pivot_skip_blocks = None, 1 if setting == "before" else 0
        pti.pivot_fine_steps = steps + 1 if setting == "before" else 0
        drag = DragConfig(max_steps=steps + 1, windowed=False, **({"full_synthesis": True, "sparse": False}
                                                                  if setting == "official" else {}))
    if setting == "cap128":
        pti.max_resolution = 128
    if setting == "bf16":
        pti.precision, drag = "bf16", DragConfig(max_steps=steps + 1, precision="bf16")
    settings = EditSettings(generator=gen, device="cpu", pti=pti, drag=drag)
    t0 = time.perf_counter()
    res = edit_photo(photo, [edit_request("@mouth_left:-3%,-6%", "@mouth_right:3%,-6%")], work / f"out-{setting}.jpg",
                     work / f"s-{setting}-{resolution}", settings=settings, from_spec="pivot", on_progress=hook)
    wall = time.perf_counter() - t0
    # the median interval: one arrival check or recovery (random weights jump) would dominate a mean of four steps;
    # bench_drag.py's whole checked drag costs the checks (a few % of a drag)
    per_step = {k: statistics.median(b - a for a, b in zip(v[:-1], v[1:])) for k, v in stamps.items() if len(v) > 1}
    if setting == "official":  # every pivot step at full resolution
        per_step["pivot_fine"] = per_step.pop("pivot_coarse", per_step.get("pivot_fine", 0.0))
    fixed = {k: res.seconds.get(k, 0.0) for k in ("load", "align", "composite")}
    metrics = next((work / f"s-{setting}-{resolution}").rglob("invert/metrics.json"))
    return {"setting": setting, "resolution": resolution, "losses": json.loads(metrics.read_text())["losses_used"],
            "wall_s": wall, "per_step_s": per_step, "fixed_s": fixed,
            "drag_steps_run": res.history[-1].steps if res.history else 0,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def costed(row: dict) -> float:
    """Minutes for the setting's schedule from its measured step costs and fixed stages."""
    ps = row["per_step_s"]
    counts = COUNTS[row["setting"]]
    return (sum(row["fixed_s"].values()) + sum(n * ps.get(k, ps.get("pivot_fine", 0.0)) for k, n in counts.items())) / 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, nargs="+", default=[512])
    ap.add_argument("--steps", type=int, default=4, help="measured steps of each kind (one more is run and dropped)")
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--settings", default="before,now,official")
    ap.add_argument("--loss", choices=["lpips", "fallback"], default="lpips",
                    help="PTI's perceptual losses: LPIPS as online (random backbones), or the offline fallback")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        setting, res = args.case.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            print(json.dumps(run(setting, int(res), args.steps, big_photo(work / "photo.jpg", args.megapixels), work,
                                 args.loss)))
        return
    import torch

    print(f"CPU: {platform.machine()}, {torch.get_num_threads()} threads, flags: {cpu_flags()}; torch {torch.__version__}; "
          f"PTI losses: {args.loss}")
    names = args.settings.split(",")
    for r in args.resolution:
        rows = run_isolated(__file__, [f"{n}:{r}" for n in names],
                            ["--steps", str(args.steps), "--megapixels", str(args.megapixels), "--loss", args.loss])
        losses = {json.dumps(row["losses"], sort_keys=True) for row in rows}
        print(f"\n{r} px generator, {args.megapixels:g} MP photo, PTI losses {', '.join(losses)}; seconds per step "
              "(fixed stages: seconds)")
        print("| | " + " | ".join(names) + " |\n| --- |" + " --- |" * len(names))
        keys = ["align", "composite", "pivot_coarse", "pivot_fine", "tune", "drag"]
        for k in keys:
            cells = [row["fixed_s"].get(k, row["per_step_s"].get(k)) for row in rows]
            print(f"| {k} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
        print("| peak RSS GB | " + " | ".join(f"{row['peak_rss_gb']:.1f}" for row in rows) + " |")
        print("| **schedule, minutes** | " + " | ".join(f"**{costed(row):.1f}**" for row in rows) + " |")


if __name__ == "__main__":
    main()
