"""Perceptual losses for PTI: LPIPS (VGG for the pivot, AlexNet for tuning) or a recorded fallback.

LPIPS's linear heads ship in the `lpips` package; its backbones are torchvision's ImageNet weights,
which torchvision keeps in the torch hub cache and downloads on first use. Where they are missing
and cannot be fetched, one warning line is printed and L1 + multi-scale SSIM is used instead; the
name of the loss actually used is part of every result.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from dragedit.fileio.environment import log, offline

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def backbone_cached(net: str) -> bool:
    return (Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]).is_file()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    return g / g.sum()


def _ssim_parts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and contrast-structure terms of images in [0, 1] (Wang et al. 2004)."""
    c = x.shape[1]
    g = _gaussian_window().to(x)
    size = min(11, x.shape[-1], x.shape[-2])
    if size < 11:
        g = _gaussian_window(size, 1.5 * size / 11).to(x)
    wx, wy = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, wx, groups=c), wy, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx.square(), blur(y * y) - my.square(), blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = ((2 * mx * my + c1) / (mx.square() + my.square() + c1)) * cs
    return ssim.mean(dim=[1, 2, 3]), cs.mean(dim=[1, 2, 3])


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM of images in [-1, 1], per image."""
    return _ssim_parts((x + 1) / 2, (y + 1) / 2)[0]


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003) of images in [-1, 1]; scales limited by the image size."""
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])[:scales].to(x)
    weights = weights / weights.sum()
    x, y = (x + 1) / 2, (y + 1) / 2
    vals = []
    for i in range(scales):
        s, cs = _ssim_parts(x, y)
        vals.append((s if i == scales - 1 else cs).clamp(min=1e-6))
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.prod(torch.stack(vals, 0) ** weights[:, None], dim=0)


class FallbackPerceptual(torch.nn.Module):
    """L1 + (1 - MS-SSIM), per image: what PTI uses when LPIPS weights are unavailable."""

    name = "l1+ms-ssim"

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scales = 4 if min(x.shape[-2:]) >= 64 else 2
        return (x - y).abs().mean(dim=[1, 2, 3]) + (1 - ms_ssim(x, y, scales))


class LPIPSLoss(torch.nn.Module):
    def __init__(self, net: str):
        super().__init__()
        import warnings

        import lpips

        self.name = f"lpips-{net}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation notes
            self.model = lpips.LPIPS(net=net, verbose=False).eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y, normalize=False).reshape(-1)


def perceptual_loss(net: str, allow_download: bool = True, warn: Callable[[str], None] | None = None) -> torch.nn.Module:
    """LPIPS with the `net` backbone if its weights are cached or can be fetched; else the fallback."""
    allow_download = allow_download and not offline()
    if backbone_cached(net) or allow_download:
        try:
            return LPIPSLoss(net)
        except Exception as exc:  # a failed download surfaces as many exception types
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    else:
        reason = "downloads disabled"
    msg = (f"warning: LPIPS backbone weights ({', '.join(BACKBONE_FILES.values())}) are not in "
           f"{torch.hub.get_dir()}/checkpoints and could not be fetched ({reason}); PTI uses the L1 + MS-SSIM "
           "fallback loss instead (recorded in metrics.json)")
    if warn is not None:
        warn(msg)
    else:
        _warn_once(msg)
    return FallbackPerceptual()


@functools.lru_cache(maxsize=None)
def _warn_once(msg: str) -> None:
    """One line per process, however many losses fall back."""
    log.warning(msg)


def lpips_metric(net: str = "alex") -> torch.nn.Module | None:
    """LPIPS for reporting only where its weights are already cached (never downloads)."""
    if not backbone_cached(net):
        return None
    try:
        return LPIPSLoss(net)
    except Exception:
        return None
