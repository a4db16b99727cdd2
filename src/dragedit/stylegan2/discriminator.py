"""StyleGAN2 residual discriminator (for training the embedded generator), equalised learning rate."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .networks import FullyConnectedLayer
from .ops import bias_act, blur, setup_filter


class Conv2dLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", setup_filter())

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down:
            if w.shape[-1] == 1:  # downsample first, then 1x1
                c = x.shape[1]
                f = self.resample_filter.to(x.dtype)[None, None].expand(c, 1, 4, 4)
                x = F.conv2d(F.conv2d(x, f, stride=2, padding=1, groups=c), w.to(x.dtype))
            else:
                x = F.conv2d(blur(x, self.resample_filter, pad=2), w.to(x.dtype), stride=2)
        else:
            x = F.conv2d(x, w.to(x.dtype), padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        act_gain = (math.sqrt(2) if self.activation == "lrelu" else 1.0) * gain
        return bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int, first: bool,
                 conv_clamp: float | None):
        super().__init__()
        self.first = first
        if first:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=True, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class Discriminator(nn.Module):
    def __init__(self, img_resolution: int, img_channels: int = 3, channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = 256, mbstd_group: int = 4):
        super().__init__()
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        for i, res in enumerate(self.block_resolutions):
            setattr(self, f"b{res}", DiscriminatorBlock(ch[res], ch[res], ch[res // 2], img_channels, i == 0, conv_clamp))
        self.mbstd_group = mbstd_group
        self.conv = Conv2dLayer(ch[4] + 1, ch[4], 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(ch[4] * 16, ch[4], activation="lrelu")
        self.out = FullyConnectedLayer(ch[4], 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n)
        while n % g:
            g -= 1
        y = x.reshape(g, -1, 1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        x = self.conv(torch.cat([x, y], dim=1))
        return self.out(self.fc(x.flatten(1)))
