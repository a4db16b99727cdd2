"""PTI settings; defaults are the official implementation's (Roich et al. 2022)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class PTIConfig:
    # Stage 1: the pivot (the StyleGAN2-ADA projector as PTI runs it)
    pivot_steps: int = 450
    pivot_lr: float = 0.01
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    noise_start: float = 0.05  # w noise, times std(w), ramped to 0 ...
    noise_ramp: float = 0.75  # ... over this fraction of the steps
    noise_reg_weight: float = 1e5
    w_avg_samples: int = 10000
    pivot_space: str = "w"  # 'w' (PTI) or 'w+'
    loss_size: int = 256  # images are area-downsampled to this for the pivot's perceptual loss
    # Stage 2: pivotal tuning
    tune_steps: int = 350
    tune_lr: float = 3e-4
    l2_weight: float = 1.0
    lpips_weight: float = 1.0
    lpips_threshold: float = 0.06  # early stop once the tuning LPIPS falls below this
    locality: bool = False  # PTI's optional locality regulariser
    locality_alpha: float = 30.0
    locality_l2_weight: float = 0.1
    locality_lpips_weight: float = 0.1
    locality_interval: int = 1
    # Running
    seed: int = 0
    checkpoint_every: int = 25
    allow_download: bool = True  # fetch LPIPS backbone weights when missing (needs the network)

    def __post_init__(self) -> None:
        if self.pivot_space not in ("w", "w+"):
            raise ValueError("pivot_space must be 'w' or 'w+'")
        if self.pivot_steps < 1 or self.tune_steps < 0 or self.checkpoint_every < 1:
            raise ValueError("pivot_steps >= 1, tune_steps >= 0, checkpoint_every >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """The fields that change the result (what a cache key should hold)."""
        d = self.to_dict()
        for k in ("checkpoint_every", "allow_download"):
            d.pop(k)
        return d
