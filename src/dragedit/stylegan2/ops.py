"""Pure-PyTorch versions of the StyleGAN2-ADA custom ops (bias_act, upfirdn2d, modulated conv).

They reproduce the reference kernels numerically without compiling any extension, so the
generator runs the same on CPU, CUDA and MPS.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_GAIN = math.sqrt(2.0)
STYLES_ONLY_MAX_ACTIVATIONS = 1 << 24  # see modulated_conv2d


def setup_filter(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> torch.Tensor:
    """The normalised 2-D FIR filter that the reference stores as `resample_filter`."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def bias_act(x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, dim: int = 1) -> torch.Tensor:
    """Bias, activation, gain and clamp in the reference order."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
        gain = LRELU_GAIN if gain is None else gain
    elif act != "linear":
        raise ValueError(f"unsupported activation {act!r}")
    else:
        gain = 1.0 if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _depthwise(f: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    return f.to(dtype).flip([0, 1])[None, None].expand(channels, 1, *f.shape)


def blur(x: torch.Tensor, f: torch.Tensor, pad: int, gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d with up = down = 1 and symmetric padding: a depthwise correlation."""
    w = _depthwise(f * gain, x.shape[1], x.dtype)
    return F.conv2d(x, w, padding=pad, groups=x.shape[1])


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """upfirdn2d.upsample2d(x, f, up=2): zero insertion + FIR, done as one transposed conv.

    With a 4-tap filter the reference pads (2, 1); a stride-2 transposed convolution with the
    (unflipped) filter followed by a crop of one pixel per side gives the same numbers.
    """
    c = x.shape[1]
    w = (f * 4).to(x.dtype)[None, None].expand(c, 1, *f.shape)
    return F.conv_transpose2d(x, w, stride=2, padding=1, groups=c)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     fused: bool = True) -> torch.Tensor:
    """Modulated convolution (StyleGAN2 eq. 1-3), optional 2x upsampling as in conv2d_resample.

    `fused` runs one grouped convolution with per-sample weights (the reference's inference path);
    otherwise activations are scaled before and after a shared convolution (its training path). With one
    style, the cheaper of the two runs: modulating the weights costs their size (a 512-channel 3x3 layer
    holds 2.4 M numbers, forward and backward), scaling the activations theirs (a 16x16 map, or the
    drag's crops, far fewer). Where the styles need a gradient and the weights do not (the pivot, the drag),
    the activations are scaled wherever the layer's input and output hold up to 16 M numbers each (a 512 px
    map of 64 channels): through modulated weights the backward would compute their gradient, a whole
    convolution's work, only to reduce it to the styles'. On larger maps (a 1024 generator's last block) the
    activation-sized tensors that path keeps for the backward cost about what it saves, and 1 GB more
    memory per pivot step. Both paths give the same numbers up to float rounding.
    """
    n = styles.shape[0]
    out_c, in_c, kh, kw = weight.shape
    styles_only = (torch.is_grad_enabled() and styles.requires_grad and not weight.requires_grad
                   and max(x.numel(), x.numel() // in_c * out_c * up * up) <= STYLES_ONLY_MAX_ACTIVATIONS)
    if fused and n == 1 and (x.numel() < weight.numel() or styles_only):
        fused = False
    if fused:
        wts = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
        if demodulate:
            wts = wts * (wts.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, -1, 1, 1, 1)
        # One style: a plain convolution, which also serves a batch of crops of one image (windowed features).
        xg = x if n == 1 else x.reshape(1, -1, *x.shape[2:])
        if up == 1:
            y = F.conv2d(xg, wts.reshape(-1, in_c, kh, kw), padding=padding, groups=n)
        else:
            wt = wts.transpose(1, 2).reshape(n * in_c, out_c, kh, kw)
            y = F.conv_transpose2d(xg, wt, stride=2, groups=n)
            y = blur(y, resample_filter, pad=1, gain=4)
        y = y.reshape(x.shape[0], -1, *y.shape[2:])
        if noise is not None:
            y = y + noise
        return y
    # sum over (i, k) of (w_oik s_i)^2 = sum over i of s_i^2 (sum over k of w_oik^2): [N, O], never [N, O, I, k, k];
    # elementwise, so an autocast region leaves it in float32
    dcoefs = ((styles.square()[:, None, :] * weight.square().sum(dim=[2, 3])[None]).sum(dim=2) + 1e-8).rsqrt() \
        if demodulate else None
    x = x * styles.reshape(n, -1, 1, 1)
    if up == 1:
        y = F.conv2d(x, weight, padding=padding)
    else:
        y = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        y = blur(y, resample_filter, pad=1, gain=4)
    if demodulate:
        y = y * dcoefs.reshape(n, -1, 1, 1)
    if noise is not None:
        y = y + noise
    return y
