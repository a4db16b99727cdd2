"""A clip's cost per frame, by stage, on this machine's CPU (flags printed), and its memory against its length.

1. The embedded generator, whole runs of `edit_video` (a smile on the keyframe) on the first 2 s of a clip and
   on the whole clip, each in its own process: wall time per stage, seconds per frame all included, and peak
   RSS (flat with the clip's length: frames are decoded one at a time and only patches are kept). The keyframe
   edit (align, PTI, drag) costs the same whatever the clip's length: PTI tunes the generator on the keyframe and
   `VideoConfig.tune_frames` sampled frames (STIT's shared tuning), each step the keyframe and one of them. Its
   tuning (the sampled frames' pivots + the steps) is set against one photo's: the photo recipe on the keyframe
   alone, in the same process.
2. The FFHQ-512 architecture with random weights, from step costs (a whole run at 512 is many minutes): per
   frame the face detection and landmarks on the clip's frame, the 512 px crop, the pivot's fitting steps (on
   128 px renders, VideoConfig.pivot_resolution; at PTI's 256 px cap beside it), the two renders at 256, the
   motion field at 512, and the warp paste into the frame; the keyframe's photo edit is `bench_edit.py`'s figure.
   The shared tuning from step costs: a photo's tuning step (one render at 256 and its losses) against the clip's
   (the keyframe and a sampled frame in one batch), plus the sampled frames' pivots (at 128).

3. `--threads-scaling`: the short run with 1 and 2 torch threads, to tell whether one clip's frames across
   processes (each with fewer threads) would pay on this machine.
4. `--workers N`: the whole clip with its frames fitted in one process and in N (`VideoConfig.workers`), each
   run in its own process: wall time per stage and the peak RSS of the parent and of a worker.

    python scripts/bench_video.py CLIPS_DIR [--clip portrait_window_720p.mp4] [--seconds 2] [--skip-512]
                                  [--threads-scaling] [--workers N]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import run_isolated

SMILE = ["@mouth_left:-4%,-8%", "@mouth_right:4%,-8%"]


def cpu_flags() -> str:
    try:
        flags = set(next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                         if ln.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "no avx2"


def _tuning(folder: Path) -> tuple[float, int]:
    """(seconds, sampled frames) of a session's tuning: the sampled frames' pivots and the tuning steps."""
    m = json.loads((folder / "invert" / "metrics.json").read_text())
    t = m["timings"]
    return t.get("companions_s", 0.0) + t["tune_s"], m.get("companions", 0)


def embedded(clip: Path, seconds: float | None, threads: int | None = None, tune_frames: int = 0,
             workers: int = 1) -> dict:
    from dragedit.pipeline.core.edit import EditJob, edit
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.core.video import VideoConfig, VideoJob, check_video, run_video

    settings = EditSettings(device="cpu", offline=True, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        job = VideoJob(clip, requests=[edit_request(*SMILE)], output=Path(tmp) / "out.mkv", session=Path(tmp) / "s",
                       end=seconds)
        t0 = time.perf_counter()
        plan = check_video(job, settings, VideoConfig(tune_frames=tune_frames, workers=workers))
        checks = time.perf_counter() - t0
        res = run_video(plan)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the photo reference below
        worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker's
        tuning_s, sampled = _tuning(Path(tmp) / "s" / "keyframe")
        edit(EditJob(Path(tmp) / "photo", photo=Path(tmp) / "s" / "video" / "keyframe.png", until="invert"), settings)
        photo_tuning_s, _ = _tuning(Path(tmp) / "photo")
    frames = plan.last - plan.first + 1
    case = (f"embedded {seconds or 'all'} s" + (f", {threads} thread(s)" if threads else "")
            + (f", {workers} workers" if workers > 1 else ""))
    return {"case": case, "frames": frames, "check_s": round(checks, 2), "worker_peak_rss_mb": round(worker_rss),
            **{f"{k}_s": round(v, 2) for k, v in res.seconds.items()},
            "per_frame_s": round((res.seconds["total"] + checks) / frames, 3),
            "per_frame_no_keyframe_s": round((res.seconds["track"] + res.seconds["fields"] + res.seconds["frames"])
                                             / frames, 3),
            "tuning_s": round(tuning_s, 2), "sampled_frames": sampled, "photo_tuning_s": round(photo_tuning_s, 2),
            "peak_rss_mb": round(rss)}


def _median_time(fn, reps: int = 3) -> float:
    fn()  # warm
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ffhq512(clip: Path, tune_frames: int) -> dict:
    import numpy as np
    import torch

    from dragedit.common.images import tensor_to_uint8, uint8_to_tensor
    from dragedit.inversion.config import PTIConfig
    from dragedit.inversion.follow import follow_pivot
    from dragedit.inversion.losses import perceptual_loss
    from dragedit.pipeline.core.video import VideoConfig
    from dragedit.pipeline.imaging.align import crop_to_photo_matrix, ffhq_quad, warp_crop
    from dragedit.pipeline.imaging.faces import find_faces
    from dragedit.pipeline.imaging.motion import MotionConfig, backward_field
    from dragedit.pipeline.imaging.paste import warp_paste
    from dragedit.pipeline.imaging.video import frame_at
    from dragedit.stylegan2 import Generator, GeneratorConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=512)).eval()
    cap = G.synthesis.resolution_at(PTIConfig().max_resolution)
    rgb = frame_at(clip, 0)
    faces = find_faces(rgb)
    lm = np.asarray(faces[0]["landmarks"])
    c2p = crop_to_photo_matrix(ffhq_quad(lm), 512)
    crop, inside = warp_crop(rgb, c2p, 512)
    loss = perceptual_loss("vgg", allow_download=False)
    w = G.mean_w(1000, seed=1)[0][:, None, :].expand(-1, G.num_ws, -1).clone()
    offset = torch.randn_like(w) * 0.05
    cfg = VideoConfig(tune_frames=tune_frames)
    row = {"case": "FFHQ-512 (random weights)", "pivot_steps": cfg.pivot_steps}
    row["detect_s"] = _median_time(lambda: find_faces(rgb))
    row["crop_s"] = _median_time(lambda: warp_crop(rgb, c2p, 512))
    for key, size in (("pivot_s", G.synthesis.resolution_at(cfg.pivot_resolution)), ("pivot_at_256", cap)):
        small = np.asarray(torch.nn.functional.interpolate(uint8_to_tensor(crop), size=(size, size), mode="area")[0]
                           .permute(1, 2, 0).mul(127.5).add(128).clamp(0, 255).byte())
        target = uint8_to_tensor(small)
        row[key] = _median_time(lambda: follow_pivot(G, target, w, steps=cfg.pivot_steps, lr=0.01,
                                                     distance=loss.against(target), max_resolution=size), reps=2)

    def renders():
        with torch.no_grad():
            return (tensor_to_uint8(G.synthesis(w, noise_mode="const", max_resolution=cap)),
                    tensor_to_uint8(G.synthesis(w + offset, noise_mode="const", max_resolution=cap)))

    row["renders_s"] = _median_time(renders)
    row.update(_tuning_steps(G, crop, w, cap, cfg, row["pivot_s"] / cfg.pivot_steps))
    import cv2

    recon, edited = (cv2.resize(x, (512, 512), interpolation=cv2.INTER_CUBIC) for x in renders())
    region = np.zeros((512, 512), np.float32)
    region[180:420, 120:400] = 1
    b, _ = backward_field(recon, edited, region, [], MotionConfig())
    row["field_s"] = _median_time(lambda: backward_field(recon, edited, region, [], MotionConfig()))
    row["paste_s"] = _median_time(lambda: warp_paste(rgb, crop, recon, edited, region, np.linalg.inv(c2p), field=b))
    row["per_frame_s"] = round(sum(row[k] for k in ("detect_s", "crop_s", "pivot_s", "renders_s", "field_s",
                                                     "paste_s")), 3)
    for k in list(row):
        if k.endswith("_s") or k == "pivot_at_256":
            row[k] = round(row[k], 3)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def _tuning_steps(G, crop, w, cap: int, cfg, pivot_step_s: float) -> dict:
    """A photo's PTI tuning step at `cap` (render, L2 + perceptual, backward, Adam) against the shared tuning's
    (the keyframe and one sampled frame in one batch), and the whole tunings they make."""
    import torch

    from dragedit.common.images import uint8_to_tensor
    from dragedit.inversion.config import PTIConfig
    from dragedit.inversion.losses import perceptual_loss

    pti = PTIConfig()
    target = torch.nn.functional.interpolate(uint8_to_tensor(crop), size=(cap, cap), mode="area")
    loss = perceptual_loss("alex", allow_download=False)
    to_target = loss.against(target)
    params = list(G.synthesis.parameters())
    for p in params:
        p.requires_grad_(True)
    optim = torch.optim.Adam(params, lr=pti.tune_lr)
    ws = {1: w, 2: torch.cat([w, w + 0.01])}

    def step(batch: int):
        img = G.synthesis(ws[batch], noise_mode="const", max_resolution=cap)
        total = sum(torch.nn.functional.mse_loss(img[k:k + 1], target) + to_target(img[k:k + 1]).mean()
                    for k in range(batch))
        optim.zero_grad(set_to_none=True)
        total.backward()
        optim.step()

    one, two = _median_time(lambda: step(1)), _median_time(lambda: step(2))
    G.requires_grad_(False)
    photo = pti.tune_steps * one
    shared = pti.tune_steps * two + cfg.tune_frames * pti.companion_pivot_steps * pivot_step_s
    return {"tune_step_s": one, "shared_tune_step_s": two, "photo_tuning_s": photo, "shared_tuning_s": shared}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="?")
    ap.add_argument("--clip", default="portrait_window_720p.mp4")
    ap.add_argument("--seconds", type=float, default=2.0, help="the short run's length")
    ap.add_argument("--skip-512", action="store_true")
    ap.add_argument("--tune-frames", type=int, default=4, help="VideoConfig.tune_frames for the runs (default 4, "
                    "to show the shared tuning's cost; the product's default is 0, the keyframe alone)")
    ap.add_argument("--threads-scaling", action="store_true",
                    help="only the short run, with 1 and with 2 torch threads: would frames across processes pay?")
    ap.add_argument("--workers", type=int, default=0, help="only the whole clip, its frames fitted in 1 process "
                    "and in this many")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case:  # one case, in this (fresh) process
        kind, _, arg = a.case.partition(":")
        clip = Path(a.path)
        arg, _, workers = arg.partition("/")
        seconds, _, threads = arg.partition("@")
        print(json.dumps(embedded(clip, float(seconds) if seconds else None, int(threads) if threads else None,
                                  a.tune_frames, int(workers or 1)) if kind == "embedded"
                         else ffhq512(clip, a.tune_frames)))
        return
    if not a.clips or not (Path(a.clips) / a.clip).is_file():
        raise SystemExit(f"bench_video.py: give the folder holding {a.clip} (../shared/clips)")
    clip = Path(a.clips) / a.clip
    print(f"CPU: {cpu_flags()}; clip {clip.name}; tune_frames {a.tune_frames}")
    cases = [f"embedded:{a.seconds}", "embedded:"] + ([] if a.skip_512 else ["ffhq512"])
    if a.threads_scaling:
        cases = [f"embedded:{a.seconds}@1", f"embedded:{a.seconds}@2"]
    if a.workers:
        cases = ["embedded:", f"embedded:/{a.workers}"]
    rows = run_isolated(__file__, cases, ["--path", str(clip), "--tune-frames", str(a.tune_frames)])
    print("\n| case | frames | keyframe edit s | track s | fields s | frames + encode s | total s | s / frame | "
          "s / frame without the keyframe | peak RSS MB |\n|" + " --- |" * 10)
    for r in rows[:2]:
        print(f"| {r['case']} | {r['frames']} | {r['keyframe_edit_s']} | {r['track_s']} | {r['fields_s']} | "
              f"{r['frames_s']} | {r['total_s']} | {r['per_frame_s']} | {r['per_frame_no_keyframe_s']} | "
              f"{r['peak_rss_mb']} |")
    print("\n| case | the clip's shared tuning s (sampled frames) | one photo's tuning s (the keyframe alone) | ratio |"
          "\n|" + " --- |" * 4)
    for r in rows[:2]:
        print(f"| {r['case']} | {r['tuning_s']} ({r['sampled_frames']}) | {r['photo_tuning_s']} | "
              f"{r['tuning_s'] / r['photo_tuning_s']:.2f} |")
    if a.workers:
        one, many = rows[:2]
        print(f"\nfields: {one['fields_s']} s in one process, {many['fields_s']} s in {a.workers} "
              f"({one['fields_s'] / many['fields_s']:.2f}x); whole clip {one['total_s']} s against {many['total_s']} s "
              f"({one['total_s'] / many['total_s']:.2f}x); peak RSS {one['peak_rss_mb']} MB against "
              f"{many['peak_rss_mb']} MB + {a.workers} x {many['worker_peak_rss_mb']} MB")
    if a.threads_scaling:
        one, two = (r["fields_s"] / r["frames"] for r in rows[:2])
        print(f"\nfields per frame: 1 thread {one:.3f} s, 2 threads {two:.3f} s; two one-thread processes would do "
              f"{2 / one:.2f} frames/s against one two-thread process's {1 / two:.2f} ({2 * two / one:.2f}x)")
    if len(rows) > 2:
        r = rows[2]
        print(f"\n| FFHQ-512, per frame | detect + landmarks | crop | pivot ({r['pivot_steps']} steps at 128; at 256) | "
              "2 renders at 256 | field at 512 | paste | total s | peak RSS MB |\n|" + " --- |" * 9)
        print(f"| random weights | {r['detect_s']} | {r['crop_s']} | {r['pivot_s']} ({r['pivot_at_256']}) | "
              f"{r['renders_s']} | {r['field_s']} | {r['paste_s']} | {r['per_frame_s']} | {r['peak_rss_mb']} |")
        print(f"\nFFHQ-512 tuning at 256 px: a photo's step {r['tune_step_s']} s, the shared tuning's {r['shared_tune_step_s']}"
              f" s; a photo's tuning {r['photo_tuning_s']:.0f} s, the clip's {r['shared_tuning_s']:.0f} s (with the sampled "
              f"frames' pivots), {r['shared_tuning_s'] / r['photo_tuning_s']:.2f}x, whatever the clip's length")


if __name__ == "__main__":
    main()
