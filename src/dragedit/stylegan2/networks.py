"""StyleGAN2 generator (mapping + skip-architecture synthesis) in the StyleGAN2-ADA PyTorch layout.

Parameter and buffer names equal the official ones, so an official `state_dict` loads as is.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from .ops import bias_act, modulated_conv2d, setup_filter, upsample2d

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1): half-open pixel rows and columns at one block's resolution
# Output pixels next to a crop's inner edge that a block computes wrong (the up-conv and its blur reach 3, conv1 1).
WINDOW_MARGIN = 4


@dataclass
class GeneratorConfig:
    """Constructor arguments of the official `Generator` (the subset this generator supports)."""

    z_dim: int = 512
    w_dim: int = 512
    img_resolution: int = 512
    img_channels: int = 3
    c_dim: int = 0
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = 256
    architecture: str = "skip"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_official_kwargs(cls, kw: dict[str, Any]) -> "GeneratorConfig":
        """Build from the official `Generator(**init_kwargs)` dictionary, refusing what we cannot run."""
        mk = dict(kw.get("mapping_kwargs") or {})
        sk = dict(kw.get("synthesis_kwargs") or {})
        arch = sk.pop("architecture", "skip")
        if arch != "skip":
            raise ValueError(f"unsupported synthesis architecture {arch!r} (only 'skip', as in the FFHQ checkpoints)")
        if int(kw.get("c_dim", 0)) != 0:
            raise ValueError("conditional generators (c_dim > 0) are not supported")
        known_mk = {"num_layers", "lr_multiplier", "w_avg_beta", "embed_features", "layer_features", "activation"}
        known_sk = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "fp16_channels_last",
                    "resample_filter", "use_noise"}
        unknown = (set(mk) - known_mk) | (set(sk) - known_sk)
        if unknown:
            raise ValueError(f"unsupported generator arguments: {sorted(unknown)}")
        return cls(
            z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]), img_resolution=int(kw["img_resolution"]),
            img_channels=int(kw.get("img_channels", 3)), c_dim=0,
            mapping_layers=int(mk.get("num_layers", 8)),
            mapping_lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
            channel_base=int(sk.get("channel_base", 32768)), channel_max=int(sk.get("channel_max", 512)),
            conv_clamp=sk.get("conv_clamp", None), architecture="skip",
        )


class FullyConnectedLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                         lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        x = z.to(torch.float32)
        x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None, kernel_size: int = 3):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.register_buffer("resample_filter", setup_filter())
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", fused: bool = True,
                windows: Sequence[Box] | None = None) -> torch.Tensor:
        """`windows`: the parts of the output map that the crops stacked in `x` make (const noise is cut to match)."""
        styles = self.affine(w)
        noise = None
        if windows is not None and noise_mode == "random":
            raise ValueError("windowed features need noise_mode 'const' or 'none'")
        if noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            const = self.noise_const if windows is None else torch.stack(
                [self.noise_const[y0:y1, x0:x1] for y0, y1, x0, x1 in windows])[:, None]
            noise = const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be const, none or random, not {noise_mode!r}")
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused)
        return bias_act(x, self.bias.to(x.dtype), act="lrelu", clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter())
        self.num_conv = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_torgb = 1

    def forward_features(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str, fused: bool,
                         windows: Sequence[Box] | None = None) -> torch.Tensor:
        """The block's feature output `x` only (no RGB branch): what DragGAN reads. With `windows`, `x` stacks
        crops of the previous block's map (of one image), each half of its window, and the result those windows
        of this block's map (exact but for `WINDOW_MARGIN` pixels along edges inside the map)."""
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            return self.conv1(x, ws[:, 0], noise_mode=noise_mode, fused=fused)
        x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, fused=fused, windows=windows)
        return self.conv1(x, ws[:, 1], noise_mode=noise_mode, fused=fused, windows=windows)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "const",
                fused: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.forward_features(x, ws, noise_mode, fused)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, ws[:, self.num_conv], fused=fused).to(torch.float32)
        img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, conv_clamp: float | None = None):
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if 2 ** log2 != img_resolution or img_resolution < 4:
            raise ValueError(f"img_resolution must be a power of two >= 4, not {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_ch, channels[res], w_dim, res, img_channels, conv_clamp=conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last block's toRGB
        self.channels = [channels[r] for r in self.block_resolutions]

    def resolution_at(self, max_resolution: int | None) -> int:
        """The image size `forward(max_resolution=...)` returns."""
        if max_resolution is None:
            return self.img_resolution
        return next((r for r in self.block_resolutions if r >= max_resolution), self.img_resolution)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def _block_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Rows of W+ each block reads: its convs and its toRGB (which shares the next block's first row)."""
        out, idx = [], 0
        for block in self.blocks():
            out.append(ws.narrow(1, idx, block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def _fused(self, ws: torch.Tensor, fused: bool | None) -> bool:
        return ws.shape[0] == 1 if fused is None else fused

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", return_features: bool = False,
                fused: bool | None = None, max_resolution: int | None = None):
        """The image; with `max_resolution`, the skip architecture's RGB sum after that block (a coarser image
        that costs none of the later, largest blocks: PTI's coarse pivot steps)."""
        ws = ws.to(torch.float32)
        fused = self._fused(ws, fused)
        x = img = None
        feats = []
        for block, cur in zip(self.blocks(), self._block_ws(ws)):
            x, img = block(x, img, cur, noise_mode=noise_mode, fused=fused)
            feats.append(x)
            if max_resolution is not None and block.resolution >= max_resolution:
                break
        return (img, feats) if return_features else img

    def features(self, ws: torch.Tensor, upto: int, noise_mode: str = "const",
                 fused: bool | None = None) -> list[torch.Tensor]:
        """Feature outputs of blocks 0..upto, computing no RGB branch and no later block."""
        if not 0 <= upto < len(self.block_resolutions):
            raise ValueError(f"block index {upto} out of range 0..{len(self.block_resolutions) - 1}")
        ws = ws.to(torch.float32)
        fused = self._fused(ws, fused)
        x = None
        feats = []
        for block, cur in list(zip(self.blocks(), self._block_ws(ws)))[: upto + 1]:
            x = block.forward_features(x, cur, noise_mode, fused)
            feats.append(x)
        return feats

    def features_in(self, ws: torch.Tensor, upto: int, boxes: Sequence[Box], noise_mode: str = "const") -> torch.Tensor:
        """Block `upto`'s feature map of one image, exact inside `boxes` (at its resolution) and zero elsewhere.

        DragGAN reads the features near its handles only; the large late blocks run here on crops around the
        boxes (each grown by the blocks' reach), the early ones on the whole map, where crops would cover most
        of it anyway. Equal to `features(...)[-1]` inside the boxes up to float rounding."""
        if not 0 <= upto < len(self.block_resolutions):
            raise ValueError(f"block index {upto} out of range 0..{len(self.block_resolutions) - 1}")
        if ws.shape[0] != 1:
            raise ValueError("windowed features are for one image at a time")
        ws = ws.to(torch.float32)
        res = self.block_resolutions
        boxes = _merge_boxes([_clip_box(b, res[upto]) for b in boxes])
        crops, first = _crop_plan(boxes, res, upto)
        if first > upto:  # crops would not pay: the whole map
            return self.features(ws, upto=upto, noise_mode=noise_mode)[-1]
        blocks, block_ws = self.blocks(), self._block_ws(ws)
        below = self.features(ws, upto=first - 1, noise_mode=noise_mode)[-1]
        x = torch.cat([below[:, :, y0:y1, x0:x1] for y0, y1, x0, x1 in crops[0]])
        for k, block in enumerate(blocks[first:upto + 1]):
            windows = [(2 * y0, 2 * y1, 2 * x0, 2 * x1) for y0, y1, x0, x1 in crops[k]]
            x = block.forward_features(x, block_ws[first + k], noise_mode, True, windows=windows)
            keep = crops[k + 1] if k + 1 < len(crops) else boxes
            x = [x[i:i + 1, :, y0 - w[0]:y1 - w[0], x0 - w[2]:x1 - w[2]]
                 for i, ((y0, y1, x0, x1), w) in enumerate(zip(keep, windows))]
            if k + 1 < len(crops):
                x = torch.cat(x)
        out = below.new_zeros([1, self.channels[upto], res[upto], res[upto]])
        for (y0, y1, x0, x1), part in zip(boxes, x):
            out[:, :, y0:y1, x0:x1] = part
        return out


def _clip_box(box: Box, size: int) -> Box:
    y0, y1, x0, x1 = (int(v) for v in box)
    return max(y0, 0), min(y1, size), max(x0, 0), min(x1, size)


def _merge_boxes(boxes: list[Box]) -> list[Box]:
    """Overlapping boxes joined into their bounding box (until none overlap); empty ones dropped."""
    boxes = [b for b in boxes if b[1] > b[0] and b[3] > b[2]]
    i = 0
    while i < len(boxes):
        a = boxes[i]
        j = next((j for j in range(i + 1, len(boxes)) if a[0] < boxes[j][1] and boxes[j][0] < a[1]
                  and a[2] < boxes[j][3] and boxes[j][2] < a[3]), None)
        if j is None:
            i += 1
            continue
        b = boxes.pop(j)
        boxes[i] = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
        i = 0
    return boxes


def _same_size(crops: list[Box], size: int) -> list[Box] | None:
    """The crops grown (inside the map) to the largest one's height and width, so they stack in one batch."""
    h = max(c[1] - c[0] for c in crops)
    w = max(c[3] - c[2] for c in crops)
    if h > size or w > size:
        return None
    out = []
    for y0, y1, x0, x1 in crops:
        y0 = min(max(y0 - (h - (y1 - y0)) // 2, 0), size - h)
        x0 = min(max(x0 - (w - (x1 - x0)) // 2, 0), size - w)
        out.append((y0, y0 + h, x0, x0 + w))
    return out


def _crop_plan(boxes: list[Box], res: list[int], upto: int, worth: float = 0.5) -> tuple[list[list[Box]], int]:
    """The input crops of every windowed block (one per box, all of one size per block) and the first windowed
    block's index (`upto + 1`: none pays).

    Walking down from block `upto`: block b's input crops are what b must produce grown by `WINDOW_MARGIN` and
    halved outwards, clipped to the map; blocks run on crops while those cover less than `worth` of the map."""
    plan: list[list[Box]] = []
    needed = boxes
    b = upto
    while b >= 1 and needed:
        size = res[b - 1]
        crops = _same_size([_clip_box(((y0 - WINDOW_MARGIN) // 2, -((-y1 - WINDOW_MARGIN) // 2),
                                       (x0 - WINDOW_MARGIN) // 2, -((-x1 - WINDOW_MARGIN) // 2)), size)
                            for y0, y1, x0, x1 in needed], size)
        if crops is None or len(crops) * (crops[0][1] - crops[0][0]) * (crops[0][3] - crops[0][2]) >= worth * size ** 2:
            break
        plan.insert(0, crops)
        needed = crops
        b -= 1
    return plan, b + 1


class Generator(nn.Module):
    """z -> ws -> image. `mapping` and `synthesis` are exposed as in the official code."""

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        cfg = config or GeneratorConfig()
        self.config = cfg
        self.z_dim, self.w_dim, self.c_dim = cfg.z_dim, cfg.w_dim, 0
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.synthesis = SynthesisNetwork(cfg.w_dim, cfg.img_resolution, cfg.img_channels, cfg.channel_base,
                                          cfg.channel_max, cfg.conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_multiplier)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)

    @torch.no_grad()
    def mean_w(self, num_samples: int = 10000, seed: int = 0, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of w over random z (PTI's starting point and noise scale)."""
        gen = torch.Generator().manual_seed(seed)
        dev = self.mapping.w_avg.device
        ws = []
        for i in range(0, num_samples, batch):
            z = torch.randn(min(batch, num_samples - i), self.z_dim, generator=gen).to(dev)
            ws.append(self.mapping(z)[:, 0])
        w = torch.cat(ws)
        mean = w.mean(0, keepdim=True)
        std = ((w - mean).square().sum() / num_samples) ** 0.5
        return mean, std
