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
    """`interpolate(feat, size, 'bilinear')[0, :, rows, cols]` for integer pixel indices -> [C, N].

    All taps are read in one gather: its backward scatters into one map-sized gradient, not one per tap."""
    f = feat[0]
    rows, cols = rows.to(f.device), cols.to(f.device)
    h, w = f.shape[-2:]
    if (h, w) == tuple(size):
        return f[:, rows, cols]
    y0, y1, ly = _axis_taps(rows, h, size[0])
    x0, x1, lx = _axis_taps(cols, w, size[1])
    taps = torch.cat([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1])
    v00, v01, v10, v11 = f.reshape(f.shape[0], -1).index_select(1, taps).chunk(4, dim=1)
    top = v00 * (1 - lx) + v01 * lx
    bot = v10 * (1 - lx) + v11 * lx
    return top * (1 - ly) + bot * ly


def bilinear_at(feat: torch.Tensor, y: torch.Tensor, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`grid_sample(upsampled, align_corners=True, padding_mode='zeros')` at pixel coords (y, x) -> [C, N]."""
    H, W = size
    y, x = y.to(feat.device, torch.float32), x.to(feat.device, torch.float32)
    y0f, x0f = y.floor(), x.floor()
    wy1, wx1 = y - y0f, x - x0f
    y0, x0 = y0f.long(), x0f.long()
    corners, weights = [], []
    for dy, wy in ((0, 1 - wy1), (1, wy1)):
        for dx, wx in ((0, 1 - wx1), (1, wx1)):
            yy, xx = y0 + dy, x0 + dx
            valid = ((yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)).to(feat.dtype)
            corners.append((yy.clamp(0, H - 1), xx.clamp(0, W - 1)))
            weights.append(wy * wx * valid)
    values = upsampled_at(feat, torch.cat([c[0] for c in corners]), torch.cat([c[1] for c in corners]), size)
    out = 0
    for vals, wgt in zip(values.chunk(4, dim=1), weights):  # one gather for the four corners
        out = out + vals * wgt
    return out
