"""Pivots for the frames of a clip: each frame's W, fitted to its crop with the clip's tuned generator, started
from its neighbour's, so consecutive pivots stay close and the edit rides along smoothly (STIT's per-frame
pivots; the generator itself is tuned once, on the keyframe and a few sampled frames: `pti.Companions`)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def follow_pivot(G: torch.nn.Module, target: torch.Tensor, w_start: torch.Tensor, *, steps: int, lr: float,
                 distance: Callable[[torch.Tensor], torch.Tensor], max_resolution: int | None = None,
                 loss_size: int = 256) -> torch.Tensor:
    """W ([1, num_ws, w_dim], one row repeated) fitted to `target` ([1, 3, R, R] in [-1, 1], at the render's
    size) from `w_start`, with Adam for `steps` steps under `distance` (a perceptual distance `against` the
    target, at `loss_size`); const noise, G unchanged."""
    w = w_start[:, :1, :].detach().clone().requires_grad_(True)
    optim = torch.optim.Adam([w], betas=(0.9, 0.999), lr=lr)
    G.requires_grad_(False)
    for _ in range(steps):
        img = G.synthesis(w.expand(-1, G.num_ws, -1), noise_mode="const", max_resolution=max_resolution)
        if img.shape[-1] > loss_size:
            img = F.interpolate(img, size=(loss_size, loss_size), mode="area")
        loss = distance(img.float()).sum()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
    return w.detach().expand(-1, G.num_ws, -1).clone()
