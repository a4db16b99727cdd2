"""The drag evaluation harness (DragGAN Table 2, Endo 2022's paired reconstruction) on any generator: pairs of
renders a known latent perturbation apart, trustworthy flow vectors between them as handle -> target pairs,
the drag of the first towards the second, and figures measured independently of DragGAN's tracker (OpenCV's
Lucas-Kanade). `scripts/eval_drag.py` runs it from the command line; the test suite keeps the embedded
generator above a quality floor with it.
"""
from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
import torch

from dragedit.common.images import tensor_to_uint8


def _u8(img: torch.Tensor) -> np.ndarray:
    return tensor_to_uint8(img)


def _farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def flow_pairs(i1: np.ndarray, i2: np.ndarray, k: int, rng: np.random.RandomState, margin: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """K flow vectors I1 -> I2 as (handles, targets), [[x, y], ...].

    Only vectors one can trust are drawn: motion over 1 px, forward-backward consistent within 0.5 px
    (Farneback's I2 -> I1 flow brings the target back to the handle), and on textured pixels (the
    structure tensor's smaller eigenvalue in the image's top 25 %). On flat skin or background any
    flow is an extrapolation, and DragGAN's nearest-neighbour tracking is ambiguous there, so neither
    the drag nor the measurement would mean anything. Falls back to the looser pools if too few remain.
    """
    g1, g2 = cv2.cvtColor(i1, cv2.COLOR_RGB2GRAY), cv2.cvtColor(i2, cv2.COLOR_RGB2GRAY)
    fwd, bwd = _farneback(g1, g2), _farneback(g2, g1)
    h, w = g1.shape
    ys, xs = np.mgrid[margin:h - margin, margin:w - margin]
    ys, xs = ys.ravel(), xs.ravel()
    fx, fy = fwd[ys, xs, 0], fwd[ys, xs, 1]
    tx, ty = xs + fx, ys + fy
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    bx = cv2.remap(bwd[..., 0], tx.astype(np.float32)[None], ty.astype(np.float32)[None], cv2.INTER_LINEAR)[0]
    by = cv2.remap(bwd[..., 1], tx.astype(np.float32)[None], ty.astype(np.float32)[None], cv2.INTER_LINEAR)[0]
    consistent = np.hypot(fx + bx, fy + by) < 0.5
    texture = cv2.cornerMinEigenVal(g1, blockSize=max(3, w // 32 * 2 + 1))[ys, xs]
    textured = texture >= np.quantile(texture, 0.75)
    moving = np.hypot(fx, fy) > 1.0
    for ok in (moving & inside & consistent & textured, moving & inside & consistent, moving & inside, inside):
        pool = np.nonzero(ok)[0]
        if len(pool) >= k:
            break
    pick = rng.choice(pool, size=k, replace=False)
    handles = np.stack([xs[pick], ys[pick]], 1).astype(np.float64)
    targets = np.stack([tx[pick], ty[pick]], 1)
    return handles, targets


def _lk_track(src: np.ndarray, dst: np.ndarray, pts: np.ndarray) -> np.ndarray:
    g1, g2 = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY), cv2.cvtColor(dst, cv2.COLOR_RGB2GRAY)
    p = pts.astype(np.float32).reshape(-1, 1, 2)
    out, status, _ = cv2.calcOpticalFlowPyrLK(g1, g2, p, None, winSize=(15, 15), maxLevel=3,
                                              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    out = out.reshape(-1, 2).astype(np.float64)
    lost = status.ravel() == 0
    out[lost] = pts[lost]  # a lost track counts as not moved
    return out


def perturbed_pair(G, rng: np.random.RandomState, rows: int, sigma: float, psi: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Endo (2022)'s pair: w2 moves w1's first `rows` rows a fraction `sigma` towards independent samples."""
    z1 = torch.from_numpy(rng.randn(1, G.z_dim)).float()
    z2 = torch.from_numpy(rng.randn(rows, G.z_dim)).float()
    with torch.no_grad():
        w1 = G.mapping(z1, truncation_psi=psi)
        w_other = G.mapping(z2)[:, 0]  # [rows, w_dim], one independent w per row
    w2 = w1.clone()
    w2[0, :rows] += sigma * (w_other - w1[0, :rows])
    return w1, w2


def evaluate(G, settings: list[int], samples: int, seed: int, sigma: float, max_steps: int, psi: float,
             drag_kwargs: dict, *, progress: bool = True, examples: int = 0,
             lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Per setting, per-sample figures and their means; `examples` > 0 also keeps that many samples'
    images and points per setting under out["examples"] (for `--figure`; not JSON). `lpips`: a perceptual
    distance for the LPIPS figures (the script passes LPIPS AlexNet where its weights are cached)."""
    from .config import DragConfig
    from .loop import drag

    lp = lpips
    res = G.img_resolution
    rows = drag_kwargs.get("optimize_rows", 6)
    out: dict = {"settings": {}, "lpips_available": lp is not None, "examples": []}
    for k in settings:
        rng = np.random.RandomState(seed)
        rec = {"mse_edit": [], "mse_none": [], "lpips_edit": [], "lpips_none": [], "dist_edit": [], "dist_none": [],
               "dist_ideal": [], "dist_tracker": [], "steps": [], "seconds": []}
        for s in range(samples):
            w1, w2 = perturbed_pair(G, rng, rows, sigma, psi)
            with torch.no_grad():
                t1, t2 = G.synthesis(w1), G.synthesis(w2)
            i1, i2 = _u8(t1), _u8(t2)
            handles, targets = flow_pairs(i1, i2, k, rng, margin=max(res // 16, 2))
            cfg = DragConfig(max_steps=max_steps, **drag_kwargs)
            t0 = time.perf_counter()
            r = drag(G, w1, handles.tolist(), targets.tolist(), config=cfg)
            rec["seconds"].append(time.perf_counter() - t0)
            i3 = _u8(r.image)
            f = lambda a: a.astype(np.float64) / 255.0  # noqa: E731
            rec["mse_edit"].append(float(np.mean((f(i3) - f(i2)) ** 2)))
            rec["mse_none"].append(float(np.mean((f(i1) - f(i2)) ** 2)))
            if lp is not None:
                with torch.no_grad():
                    rec["lpips_edit"].append(float(lp(r.image.clamp(-1, 1), t2.clamp(-1, 1))))
                    rec["lpips_none"].append(float(lp(t1.clamp(-1, 1), t2.clamp(-1, 1))))
            tracked = _lk_track(i1, i3, handles)
            rec["dist_edit"].append(float(np.linalg.norm(tracked - targets, axis=1).mean()))
            rec["dist_none"].append(float(np.linalg.norm(handles - targets, axis=1).mean()))
            # The measurement's own floor: the same LK tracking applied to I2, the perfect result.
            rec["dist_ideal"].append(float(np.linalg.norm(_lk_track(i1, i2, handles) - targets, axis=1).mean()))
            rec["dist_tracker"].append(float(np.linalg.norm(np.array(r.points) - targets, axis=1).mean()))
            rec["steps"].append(r.steps)
            if s < examples:
                out["examples"].append({"points": k, "i1": i1, "result": i3, "i2": i2, "handles": handles,
                                        "targets": targets, "final": np.array(r.points)})
            if progress:
                print(f"  {k} pts, sample {s + 1}/{samples}: dist {rec['dist_none'][-1]:.2f} -> "
                      f"{rec['dist_edit'][-1]:.2f} px, MSE {rec['mse_none'][-1]:.4f} -> {rec['mse_edit'][-1]:.4f}",
                      flush=True)
        summary = {key: (float(np.mean(v)) if v else None) for key, v in rec.items()}
        out["settings"][str(k)] = {"mean": summary, "per_sample": rec}
    return out
