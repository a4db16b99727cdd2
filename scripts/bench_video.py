"""A clip's cost per frame, by stage, on this machine's CPU (flags printed), and its memory against its length.

1. The embedded generator, whole runs of `edit_video` (a smile on the keyframe) on the first 2 s of a clip and
   on the whole clip, each in its own process: wall time per stage, seconds per frame all included, and peak
   RSS (flat with the clip's length: frames are decoded one at a time and only patches are kept). The keyframe
   edit (align, PTI, drag) is one photo's, whatever the clip's length.
2. The FFHQ-512 architecture with random weights, from step costs (a whole run at 512 is many minutes): per
   frame the face detection and landmarks on the clip's frame, the 512 px crop, the pivot's fitting steps (on
   128 px renders, VideoConfig.pivot_resolution; at PTI's 256 px cap beside it), the two renders at 256, the
   motion field at 512, and the warp paste into the frame; the keyframe's photo edit is `bench_edit.py`'s figure.

    python scripts/bench_video.py CLIPS_DIR [--clip portrait_window_720p.mp4] [--seconds 2] [--skip-512]
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


def embedded(clip: Path, seconds: float | None) -> dict:
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.core.video import VideoJob, check_video, run_video

    with tempfile.TemporaryDirectory() as tmp:
        job = VideoJob(clip, requests=[edit_request(*SMILE)], output=Path(tmp) / "out.mkv", session=Path(tmp) / "s",
                       end=seconds)
        t0 = time.perf_counter()
        plan = check_video(job, EditSettings(device="cpu", offline=True))
        checks = time.perf_counter() - t0
        res = run_video(plan)
    frames = plan.last - plan.first + 1
    return {"case": f"embedded {seconds or 'all'} s", "frames": frames, "check_s": round(checks, 2),
            **{f"{k}_s": round(v, 2) for k, v in res.seconds.items()},
            "per_frame_s": round((res.seconds["total"] + checks) / frames, 3),
            "per_frame_no_keyframe_s": round((res.seconds["track"] + res.seconds["fields"] + res.seconds["frames"])
                                             / frames, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _median_time(fn, reps: int = 3) -> float:
    fn()  # warm
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ffhq512(clip: Path) -> dict:
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
    cfg = VideoConfig()
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
    import cv2

    recon, edited = (cv2.resize(x, (512, 512), interpolation=cv2.INTER_CUBIC) for x in renders())
    region = np.zeros((512, 512), np.float32)
    region[180:420, 120:400] = 1
    b, _ = backward_field(recon, edited, region, [], MotionConfig())
    row["field_s"] = _median_time(lambda: backward_field(recon, edited, region, [], MotionConfig()))
    row["paste_s"] = _median_time(lambda: warp_paste(rgb, crop, recon, edited, region, np.linalg.inv(c2p), field=b))
    row["per_frame_s"] = round(sum(v for k, v in row.items() if k.endswith("_s")), 3)
    for k in list(row):
        if k.endswith("_s") or k == "pivot_at_256":
            row[k] = round(row[k], 3)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="?")
    ap.add_argument("--clip", default="portrait_window_720p.mp4")
    ap.add_argument("--seconds", type=float, default=2.0, help="the short run's length")
    ap.add_argument("--skip-512", action="store_true")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case:  # one case, in this (fresh) process
        kind, _, arg = a.case.partition(":")
        clip = Path(a.path)
        print(json.dumps(embedded(clip, float(arg) if arg else None) if kind == "embedded" else ffhq512(clip)))
        return
    if not a.clips or not (Path(a.clips) / a.clip).is_file():
        raise SystemExit(f"bench_video.py: give the folder holding {a.clip} (../shared/clips)")
    clip = Path(a.clips) / a.clip
    print(f"CPU: {cpu_flags()}; clip {clip.name}")
    cases = [f"embedded:{a.seconds}", "embedded:"] + ([] if a.skip_512 else ["ffhq512"])
    rows = run_isolated(__file__, cases, ["--path", str(clip)])
    print("\n| case | frames | keyframe edit s | track s | fields s | frames + encode s | total s | s / frame | "
          "s / frame without the keyframe | peak RSS MB |\n|" + " --- |" * 10)
    for r in rows[:2]:
        print(f"| {r['case']} | {r['frames']} | {r['keyframe_edit_s']} | {r['track_s']} | {r['fields_s']} | "
              f"{r['frames_s']} | {r['total_s']} | {r['per_frame_s']} | {r['per_frame_no_keyframe_s']} | "
              f"{r['peak_rss_mb']} |")
    if len(rows) > 2:
        r = rows[2]
        print(f"\n| FFHQ-512, per frame | detect + landmarks | crop | pivot ({r['pivot_steps']} steps at 128; at 256) | "
              "2 renders at 256 | field at 512 | paste | total s | peak RSS MB |\n|" + " --- |" * 9)
        print(f"| random weights | {r['detect_s']} | {r['crop_s']} | {r['pivot_s']} ({r['pivot_at_256']}) | "
              f"{r['renders_s']} | {r['field_s']} | {r['paste_s']} | {r['per_frame_s']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
