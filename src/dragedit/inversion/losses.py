"""Perceptual losses for PTI: LPIPS (VGG for the pivot, AlexNet for tuning) or a recorded fallback.

LPIPS's linear heads ship in the `lpips` package; its backbones are torchvision's ImageNet weights,
which torchvision keeps in the torch hub cache and downloads on first use. Where they are missing
and cannot be fetched, one warning line is printed and L1 + multi-scale SSIM is used instead; the
name of the loss actually used is part of every result.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from dragedit.common.environment import log, offline

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


class Perceptual(torch.nn.Module):
    """A perceptual distance, per image. PTI compares every step's render with one fixed target: `against`
    prepares what depends on the target once."""

    name = "perceptual"

    def against(self, target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The distance of an image to `target` (what `self(x, target)` gives)."""
        return lambda x: self(x, target)


class FallbackPerceptual(Perceptual):
    """L1 + (1 - MS-SSIM), per image: what PTI uses when LPIPS weights are unavailable."""

    name = "l1+ms-ssim"

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scales = 4 if min(x.shape[-2:]) >= 64 else 2
        return (x - y).abs().mean(dim=[1, 2, 3]) + (1 - ms_ssim(x, y, scales))


class LPIPSLoss(Perceptual):
    """LPIPS (Zhang et al. 2018) from the `lpips` package. `backbone_weights=False` leaves the backbone
    random (no download): the same cost, for benchmarks and tests, not a meaningful distance."""

    def __init__(self, net: str, backbone_weights: bool = True):
        super().__init__()
        import warnings

        import lpips

        self.name = f"lpips-{net}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation notes
            self.model = lpips.LPIPS(net=net, pnet_rand=not backbone_weights, verbose=False).eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y, normalize=False).reshape(-1)

    def against(self, target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """LPIPS to a fixed target whose backbone features are computed once, as the official projector does
        (the `lpips` package runs the backbone on both images every call: at 256 px with VGG, a third of a
        PTI pivot step's perceptual loss)."""
        import lpips

        m = self.model
        if m.version != "0.1" or not m.lpips or m.spatial:
            return super().against(target)
        with torch.no_grad():
            ref = [lpips.normalize_tensor(f) for f in m.net(m.scaling_layer(target))]

        def distance(x: torch.Tensor) -> torch.Tensor:
            feats = m.net(m.scaling_layer(x))
            layers = [lpips.spatial_average(m.lins[k]((lpips.normalize_tensor(f) - r) ** 2), keepdim=True)
                      for k, (f, r) in enumerate(zip(feats, ref))]
            return sum(layers).reshape(-1)

        return distance


FETCH_RETRY_S = 24 * 3600  # after a failed fetch, runs use the fallback for a day instead of trying again
FETCH_TIMEOUT_S = 15.0  # a network that drops packets answers nothing: give up after this long


def perceptual_loss(net: str, allow_download: bool = True, warn: Callable[[str], None] | None = None) -> Perceptual:
    """LPIPS with the `net` backbone if its weights are cached or can be fetched; else the fallback.

    A failed fetch is remembered (`fetch_failed_marker`) and not tried again for a day, so a machine behind
    a firewall does not wait on every run; `dragedit models download lpips` fetches them now."""
    if backbone_cached(net):
        try:
            return LPIPSLoss(net)
        except Exception as exc:  # noqa: BLE001 - a corrupt cache file surfaces as many exception types
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    elif not allow_download or offline():
        reason = "downloads disabled"
    elif _recent_failure() is not None:
        reason = (f"a fetch failed {_recent_failure()}; dragedit tries again after a day, or run "
                  "`dragedit models download lpips`")
    else:
        try:
            return fetch_lpips(net)
        except Exception as exc:  # noqa: BLE001 - a failed download surfaces as many exception types
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    _say_once("lpips-fallback", f"warning: LPIPS backbone weights ({', '.join(BACKBONE_FILES.values())}) are not in "
              f"{torch.hub.get_dir()}/checkpoints and could not be fetched ({reason}); PTI uses the L1 + MS-SSIM "
              "fallback loss instead (recorded in metrics.json)", warn)
    return FallbackPerceptual()


def fetch_lpips(net: str) -> "LPIPSLoss":
    """LPIPS with its backbone fetched now (a short timeout); a failure is remembered for a day."""
    import socket

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(FETCH_TIMEOUT_S)
    try:
        loss = LPIPSLoss(net)
    except Exception as exc:
        from dragedit.common import atomic

        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        try:
            atomic.write_json(fetch_failed_marker(), {"at": time.time(), "net": net, "reason": reason})
        except Exception:  # noqa: BLE001 - remembering is a courtesy; a read-only home must not break the run
            pass
        raise
    finally:
        socket.setdefaulttimeout(previous)
    fetch_failed_marker().unlink(missing_ok=True)
    return loss


def fetch_failed_marker() -> Path:
    from dragedit.common.environment import models_dir

    return models_dir() / "lpips-fetch-failed.json"


def _recent_failure() -> str | None:
    """When the last fetch failed, if within the retry interval ('3 h ago'), else None."""
    try:
        age = time.time() - float(json.loads(fetch_failed_marker().read_text())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not 0 <= age < FETCH_RETRY_S:
        return None
    return f"{age / 3600:.0f} h ago" if age >= 3600 else f"{age / 60:.0f} min ago"


_SAID: set[str] = set()


def said_once() -> list[str]:
    """The notes this process has said (their keys): a worker it starts is told them, so it does not say them
    again."""
    return sorted(_SAID)


def already_said(keys: list[str]) -> None:
    _SAID.update(keys)


def _say_once(key: str, msg: str, warn: Callable[[str], None] | None) -> None:
    """One line per process, however many losses fall back and whoever listens."""
    if key not in _SAID:
        _SAID.add(key)
        (warn or log.warning)(msg)


def lpips_metric(net: str = "alex") -> torch.nn.Module | None:
    """LPIPS for reporting only where its weights are already cached (never downloads)."""
    if not backbone_cached(net):
        return None
    try:
        return LPIPSLoss(net)
    except Exception:
        return None
