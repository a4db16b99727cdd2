"""The whole edit at the size people edit: a FFHQ-512 (or 1024) architecture with random weights, a 12 MP photo,
per stage, through the one recipe (`dragedit.edit_photo`), on this machine's CPU (flags printed).

A full default edit at 512 takes tens of minutes on 2 cores, so the run is short (a few steps of each kind, the
first of each dropped) and the schedules are costed from the measured step times:

  defaults   <= 120 pivot steps (all but the last 20 on the 256 px RGB), <= 150 tuning steps, a 100-step drag
  official   450 full-resolution pivot steps, 350 tuning steps, a 100-step drag at our step cost

(plateau stops usually end both PTI stages earlier on real photos; `bench_pti.py` measures how much).

    python scripts/bench_edit.py [--resolution 512 1024] [--steps 4] [--megapixels 12]
"""
from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
SCHEDULES = {"defaults": {"pivot_coarse": 100, "pivot_fine": 20, "tune": 150, "drag": 100},
             "official": {"pivot_coarse": 0, "pivot_fine": 450, "tune": 350, "drag": 100}}


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


def run(resolution: int, steps: int, photo: Path, work: Path) -> dict:
    import torch

    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig
    from dragedit.pipeline.api import EditSettings, edit_photo, edit_request
    from dragedit.stylegan2 import Generator, GeneratorConfig, save_generator

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
    settings = EditSettings(generator=gen, device="cpu", pti=pti, drag=DragConfig(max_steps=steps + 1))
    t0 = time.perf_counter()
    res = edit_photo(photo, [edit_request("@mouth_left:-3%,-6%", "@mouth_right:3%,-6%")], work / f"out-{resolution}.jpg",
                     work / f"s-{resolution}", settings=settings, from_spec="pivot", on_progress=hook)
    wall = time.perf_counter() - t0
    per_step = {k: (v[-1] - v[0]) / (len(v) - 1) for k, v in stamps.items() if len(v) > 1}
    fixed = {k: res.seconds.get(k, 0.0) for k in ("load", "align", "composite")}
    return {"resolution": resolution, "wall_s": wall, "per_step_s": per_step, "fixed_s": fixed,
            "drag_steps_run": res.history[-1].steps if res.history else 0,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def costed(row: dict) -> dict[str, float]:
    """Minutes for each schedule from the measured step costs and the fixed stages."""
    fixed = sum(row["fixed_s"].values())
    out = {}
    for name, counts in SCHEDULES.items():
        s = fixed + sum(counts[k] * row["per_step_s"].get(k, row["per_step_s"].get("pivot_fine", 0.0)) for k in counts)
        out[name] = s / 60
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, nargs="+", default=[512])
    ap.add_argument("--steps", type=int, default=4, help="measured steps of each kind (one more is run and dropped)")
    ap.add_argument("--megapixels", type=float, default=12.0)
    args = ap.parse_args()
    import torch

    print(f"CPU: {platform.machine()}, {torch.get_num_threads()} threads, flags: {cpu_flags()}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photo = big_photo(work / "photo.jpg", args.megapixels)
        for r in args.resolution:
            row = run(r, args.steps, photo, work)
            c = costed(row)
            ps = row["per_step_s"]
            print(f"\n{r} px generator, {args.megapixels:g} MP photo: measured run {row['wall_s']:.0f} s, "
                  f"peak RSS {row['peak_rss_gb']:.1f} GB")
            print("| stage | seconds |\n| --- | --- |")
            for k, v in row["fixed_s"].items():
                print(f"| {k} | {v:.2f} |")
            for k in ("pivot_coarse", "pivot_fine", "tune", "drag"):
                if k in ps:
                    print(f"| {k} step | {ps[k]:.2f} |")
            print(f"| **defaults** (<= 100 + 20 pivot, <= 150 tune, 100 drag) | **{c['defaults']:.1f} min** |")
            print(f"| official (450 pivot, 350 tune, 100 drag) | {c['official']:.1f} min |")


if __name__ == "__main__":
    main()
