"""Exact values of a bilinearly upsampled feature map at chosen pixels, without building the map.

DragGAN resizes the block-5 features (128x128 for a 512 generator) to the image size with
`F.interpolate(mode='bilinear', align_corners=False)`, then reads them at a few disc and patch
pixels and samples them again with `grid_sample(align_corners=True)`. Both are linear in the
low-resolution map, so each value needs only 4 (or 16) low-resolution taps.
"""
from __future__ import annotations

import torch


def _axis_taps(dst: torch.Tensor, in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of `interpolate(..., align_corners=False)` along one axis."""
    scale = in_size / out_size
    src = ((dst.to(torch.float32) + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=in_size - 1)
    i1 = (i0 + 1).clamp(max=in_size - 1)
    lam1 = src - i0.to(src.dtype)
    return i0, i1, lam1


def upsampled_at(feat: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`interpolate(feat, size, 'bilinear')[0, :, rows, cols]` for integer pixel indices -> [C, N]."""
    f = feat[0]
    rows, cols = rows.to(f.device), cols.to(f.device)
    h, w = f.shape[-2:]
    if (h, w) == tuple(size):
        return f[:, rows, cols]
    y0, y1, ly = _axis_taps(rows, h, size[0])
    x0, x1, lx = _axis_taps(cols, w, size[1])
    top = f[:, y0, x0] * (1 - lx) + f[:, y0, x1] * lx
    bot = f[:, y1, x0] * (1 - lx) + f[:, y1, x1] * lx
    return top * (1 - ly) + bot * ly


def bilinear_at(feat: torch.Tensor, y: torch.Tensor, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`grid_sample(upsampled, align_corners=True, padding_mode='zeros')` at pixel coords (y, x) -> [C, N]."""
    H, W = size
    y, x = y.to(feat.device, torch.float32), x.to(feat.device, torch.float32)
    y0f, x0f = y.floor(), x.floor()
    wy1, wx1 = y - y0f, x - x0f
    y0, x0 = y0f.long(), x0f.long()
    out = 0
    for dy, wy in ((0, 1 - wy1), (1, wy1)):
        for dx, wx in ((0, 1 - wx1), (1, wx1)):
            yy, xx = y0 + dy, x0 + dx
            valid = ((yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)).to(feat.dtype)
            vals = upsampled_at(feat, yy.clamp(0, H - 1), xx.clamp(0, W - 1), size)
            out = out + vals * (wy * wx * valid)
    return out
