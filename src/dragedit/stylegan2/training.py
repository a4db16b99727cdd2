"""Training our StyleGAN2 generator: non-saturating logistic loss, lazy R1, EMA generator,
optional path-length regularisation and style mixing, mixed precision on CUDA, resumable.

The data source is any callable `batch(seeds) -> uint8 [N, H, W, 3]` (deterministic per seed), so a
resumed run sees exactly the images an uninterrupted one would.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from dragedit.common.atomic import write_with

from .discriminator import Discriminator
from .networks import Generator, GeneratorConfig

CHECKPOINT = "train_checkpoint.pt"


@dataclass
class TrainConfig:
    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(
        z_dim=128, w_dim=128, img_resolution=128, mapping_layers=4, channel_base=2048, channel_max=128))
    batch: int = 16
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    r1_gamma: float = 0.2
    r1_interval: int = 16
    pl_weight: float = 0.0  # 2.0 in StyleGAN2; off by default for speed on CPU
    pl_interval: int = 4
    style_mixing: float = 0.9
    ema_kimg: float = 5.0
    ema_rampup: float | None = 0.05
    seed: int = 0
    amp: bool = False  # bfloat16 autocast on CUDA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _adam(params, lr: float, interval: int) -> torch.optim.Adam:
    c = interval / (interval + 1) if interval > 0 else 1.0  # lazy regularisation correction (StyleGAN2 app. B)
    return torch.optim.Adam(params, lr=lr * c, betas=(0.0, 0.99**c), eps=1e-8)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: Callable[[np.ndarray], np.ndarray], run_dir: str | Path,
                 device: torch.device | str = "cpu"):
        self.cfg, self.data, self.run_dir, self.device = cfg, data, Path(run_dir), torch.device(device)
        torch.manual_seed(cfg.seed)
        g = cfg.generator
        self.G = Generator(g).to(self.device).train()
        self.D = Discriminator(g.img_resolution, g.img_channels, g.channel_base, g.channel_max).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = _adam(self.G.parameters(), cfg.g_lr, cfg.pl_interval if cfg.pl_weight > 0 else 0)
        self.opt_d = _adam(self.D.parameters(), cfg.d_lr, cfg.r1_interval)
        self.step = 0
        self.images_seen = 0
        self.elapsed = 0.0
        self.pl_mean = torch.zeros([], device=self.device)
        self.gen = torch.Generator().manual_seed(cfg.seed + 7)
        self.log: list[dict[str, Any]] = []

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000

    def _reals(self) -> torch.Tensor:
        seeds = np.arange(self.images_seen, self.images_seen + self.cfg.batch) + self.cfg.seed * 10**9
        arr = self.data(seeds)
        x = torch.from_numpy(arr).to(self.device, torch.float32).permute(0, 3, 1, 2) / 127.5 - 1
        return x

    def _ws(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.G.z_dim, generator=self.gen).to(self.device)
        ws = self.G.mapping(z, update_w_avg=True)
        if self.cfg.style_mixing > 0 and torch.rand([], generator=self.gen) < self.cfg.style_mixing:
            cutoff = int(torch.randint(1, ws.shape[1], [], generator=self.gen))
            z2 = torch.randn(n, self.G.z_dim, generator=self.gen).to(self.device)
            ws[:, cutoff:] = self.G.mapping(z2)[:, cutoff:]
        return ws

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        n = cfg.batch
        # Discriminator: logistic loss, lazy R1 on reals.
        reals = self._reals()
        with torch.no_grad():
            fakes = self.G.synthesis(self._ws(n), noise_mode="random")
        do_r1 = cfg.r1_gamma > 0 and self.step % cfg.r1_interval == 0
        reals.requires_grad_(do_r1)
        with self._autocast():
            d_real = self.D(reals).float()
            d_fake = self.D(fakes).float()
        d_loss = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        r1 = torch.zeros([])
        if do_r1:
            (grad,) = torch.autograd.grad(d_real.sum(), reals, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            d_loss = d_loss + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # Generator: non-saturating loss, optional lazy path-length regularisation.
        self.D.requires_grad_(False)
        with self._autocast():
            fakes = self.G.synthesis(self._ws(n), noise_mode="random")
            g_loss = F.softplus(-self.D(fakes).float()).mean()
        if cfg.pl_weight > 0 and self.step % cfg.pl_interval == 0:
            g_loss = g_loss + self._path_length() * cfg.pl_weight * cfg.pl_interval
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        # EMA of the generator.
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            ema_nimg = min(ema_nimg, self.images_seen * cfg.ema_rampup)
        beta = 0.5 ** (n / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.copy_(p.detach().lerp(pe, beta))
            for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
                be.copy_(b)
        self.step += 1
        self.images_seen += n
        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()), "r1": float(r1.detach()),
                "d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean())}

    def _path_length(self) -> torch.Tensor:
        n = max(self.cfg.batch // 2, 1)
        ws = self._ws(n)
        img = self.G.synthesis(ws, noise_mode="random")
        noise = torch.randn(img.shape, generator=self.gen).to(self.device) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        self.pl_mean = self.pl_mean.lerp(lengths.mean().detach(), 0.01)
        return (lengths - self.pl_mean).square().mean()

    # ---- persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "step": self.step,
                "images_seen": self.images_seen, "elapsed": self.elapsed, "pl_mean": self.pl_mean.cpu(),
                "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else torch.zeros(0),
                "cfg": json.dumps(self.cfg.to_dict()), "log": json.dumps(self.log)}

    def save(self) -> Path:
        path = self.run_dir / CHECKPOINT
        state = self.state()
        write_with(path, lambda tmp: torch.save(state, tmp))
        return path

    def load(self, path: str | Path) -> bool:
        path = Path(path)
        if not path.exists():
            return False
        st = torch.load(path, map_location="cpu", weights_only=True)
        saved = json.loads(st["cfg"])
        if saved["generator"] != self.cfg.to_dict()["generator"]:
            raise ValueError(f"{path} was trained with another generator architecture")
        self.G.load_state_dict(st["G"])
        self.D.load_state_dict(st["D"])
        self.G_ema.load_state_dict(st["G_ema"])
        self.opt_g.load_state_dict(st["opt_g"])
        self.opt_d.load_state_dict(st["opt_d"])
        self.step, self.images_seen, self.elapsed = st["step"], st["images_seen"], st["elapsed"]
        self.pl_mean = st["pl_mean"].to(self.device)
        self.gen.set_state(st["gen"])
        if "torch_rng" in st:  # random noise inputs draw from the global generator
            torch.set_rng_state(st["torch_rng"].cpu())
        if self.device.type == "cuda" and st.get("cuda_rng", torch.zeros(0)).numel():
            torch.cuda.set_rng_state(st["cuda_rng"].cpu(), self.device)
        self.log = json.loads(st["log"])
        return True

    def sample_grid(self, seeds: list[int], psi: float = 1.0) -> np.ndarray:
        from dragedit.common.images import tensor_to_uint8

        with torch.no_grad():
            z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(self.G.z_dim) for s in seeds])).float()
            imgs = self.G_ema.synthesis(self.G_ema.mapping(z.to(self.device), truncation_psi=psi), noise_mode="const")
        return np.stack([tensor_to_uint8(im) for im in imgs])

    def fit(self, kimg: float, snap_kimg: float = 2.0, max_seconds: float | None = None,
            on_snapshot: Callable[["Trainer"], None] | None = None, progress: bool = True) -> None:
        """Train until `kimg` thousand images (in total, resumes included) or `max_seconds` of this call."""
        from tqdm import tqdm

        start = time.perf_counter()
        last_snap = self.kimg
        bar = tqdm(total=kimg, initial=self.kimg, unit="kimg", disable=not progress, bar_format="{l_bar}{bar}| {n:.2f}/{total} kimg [{elapsed}<{remaining}] {postfix}")
        while self.kimg < kimg:
            t0 = time.perf_counter()
            stats = self.train_step()
            self.elapsed += time.perf_counter() - t0
            bar.n = round(self.kimg, 3)
            bar.set_postfix(d=f"{stats['d_loss']:.3f}", g=f"{stats['g_loss']:.3f}")
            if self.step % 20 == 0:
                self.log.append({"kimg": self.kimg, "seconds": self.elapsed, **stats})
            done = max_seconds is not None and time.perf_counter() - start > max_seconds
            if self.kimg - last_snap >= snap_kimg or done or self.kimg >= kimg:
                self.save()
                if on_snapshot:
                    on_snapshot(self)
                last_snap = self.kimg
            if done:
                break
        bar.close()
