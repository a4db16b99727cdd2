"""A generator one can reason about: a Gaussian blob whose centre is a linear function of w.

Its feature map encodes each pixel's offset from the blob centre, so DragGAN's tracking can only
follow the blob and motion supervision can only move it. Used to check that handles reach targets.
"""
from __future__ import annotations

import torch
from torch import nn


class _BlobSynthesis(nn.Module):
    def __init__(self, res: int, feat_res: int, sigma: float):
        super().__init__()
        self.res, self.feat_res, self.sigma = res, feat_res, sigma
        self.block_resolutions = [4, 8, 16, 32, 64]  # every block returns the same map

    def centre(self, ws: torch.Tensor) -> torch.Tensor:
        """(row, col) of the blob in image pixels: rows 0..5 of W+ all move it, as in a real generator."""
        return self.res / 2 + 8.0 * ws[:, :6, :2].mean(dim=1)

    def _feature(self, ws: torch.Tensor) -> torch.Tensor:
        c = self.centre(ws) * self.feat_res / self.res  # feature-map pixels
        coords = (torch.arange(self.feat_res, dtype=torch.float32) + 0.5) - 0.5
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        dy = (yy[None] - c[:, 0, None, None]) / self.sigma
        dx = (xx[None] - c[:, 1, None, None]) / self.sigma
        g = torch.exp(-(dy.square() + dx.square()) / 2)
        return torch.stack([g, g * dy, g * dx, torch.exp(-(dy.square() + dx.square()) / 8)], dim=1)

    def features(self, ws: torch.Tensor, upto: int, noise_mode: str = "const") -> list[torch.Tensor]:
        return [self._feature(ws)] * (upto + 1)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", return_features: bool = False):
        f = nn.functional.interpolate(self._feature(ws), [self.res, self.res], mode="bilinear")
        img = f[:, :3] * 2 - 1
        return (img, [f] * 6) if return_features else img


class BlobGenerator(nn.Module):
    img_resolution = 64
    num_ws = 8
    w_dim = 4

    def __init__(self, feat_res: int = 32, sigma: float = 3.0):
        super().__init__()
        self.synthesis = _BlobSynthesis(self.img_resolution, feat_res, sigma)
