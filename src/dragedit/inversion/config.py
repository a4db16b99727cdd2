"""PTI settings. The stage structure and losses are the official implementation's (Roich et al. 2022); the
default schedule is faster (a coarse pivot, a shorter tuning at a higher learning rate, plateau stops),
measured against the official one (`PTIConfig.official()`) by scripts/bench_pti.py."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from dragedit.common.errors import FieldError, check_finite


@dataclass
class PTIConfig:
    # Stage 1: the pivot (the StyleGAN2-ADA projector as PTI runs it)
    pivot_steps: int = 120  # at most; the official schedule runs 450 (see `official()`)
    pivot_lr: float = 0.01
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    noise_start: float = 0.05  # w noise, times std(w), ramped to 0 ...
    noise_ramp: float = 0.75  # ... over this fraction of the steps
    noise_reg_weight: float = 1e5
    w_avg_samples: int = 10000
    pivot_space: str = "w"  # 'w' (PTI) or 'w+'
    loss_size: int = 256  # images are area-downsampled to this for the pivot's perceptual loss
    pivot_skip_blocks: int = 1  # coarse pivot: render only up to R / 2**k (the skip generator's RGB there)
    pivot_fine_steps: int = 20  # ... except for the last this many steps, at full resolution
    # Both stages: invert and tune only the blocks up to this resolution (the skip generator's RGB there; None:
    # all). The warp paste moves the photo's own pixels along the generator's motion, which a 256 px render holds;
    # a 512 or 1024 generator's last blocks would only cost time. `--paste generated` inverts at full resolution.
    max_resolution: int | None = 256
    # Stage 2: pivotal tuning
    tune_steps: int = 100  # at most; the official schedule runs 350 at lr 3e-4 (150 before #24: see the README)
    tune_lr: float = 3e-3
    l2_weight: float = 1.0
    lpips_weight: float = 1.0
    lpips_threshold: float = 0.06  # early stop once the tuning LPIPS falls below this
    # Both stages: stop on a loss plateau (0 = off): the mean loss of the last `plateau_window` steps
    # improved on the window before it by less than `plateau_tol` (relative)
    plateau_window: int = 25
    plateau_tol: float = 0.01
    locality: bool = False  # PTI's optional locality regulariser
    locality_alpha: float = 30.0
    locality_l2_weight: float = 0.1
    locality_lpips_weight: float = 0.1
    locality_interval: int = 1
    # Shared tuning (a clip's sampled frames beside the keyframe, `pti.Companions`); keyed only where used
    companion_pivot_steps: int = 50
    companion_weight: float = 0.25  # (1.0 made the drag on the keyframe larger still; see the README)
    # 'bf16': the generator's forward under bf16 autocast (weights, optimiser and losses stay fp32); faster on
    # CPUs with AVX512-BF16 or AMX and on GPUs, emulated and many times slower on other CPUs (the pipeline
    # then runs fp32 and says so). The result differs slightly, so it is part of the cache key.
    precision: str = "fp32"
    # Running
    seed: int = 0
    checkpoint_every: int = 25
    allow_download: bool = True  # fetch LPIPS backbone weights when missing (needs the network)

    def __post_init__(self) -> None:
        check_finite(self)
        for name, allowed in (("pivot_space", ("w", "w+")), ("precision", ("fp32", "bf16"))):
            if getattr(self, name) not in allowed:
                raise FieldError(name, getattr(self, name), f"use {' or '.join(allowed)}")
        for name, low in (("pivot_steps", 1), ("tune_steps", 0), ("checkpoint_every", 1), ("pivot_skip_blocks", 0),
                          ("pivot_fine_steps", 0), ("plateau_window", 0), ("seed", 0),
                          ("companion_pivot_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise FieldError(name, value, f"use a whole number, {low} or more")
        if isinstance(self.companion_weight, bool) or not isinstance(self.companion_weight, (int, float)) \
                or self.companion_weight < 0:
            raise FieldError("companion_weight", self.companion_weight, "use a number, 0 or more")
        if self.seed >= 2 ** 32:
            raise FieldError("seed", self.seed, f"out of range; use a whole number from 0 to {2 ** 32 - 1}")
        cap = self.max_resolution
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 4):
            raise FieldError("max_resolution", cap, "use a size in pixels (256, say), or none for the full resolution")

    def for_generator(self, resolution: int) -> "PTIConfig":
        """These settings for a generator of `resolution` px, with `max_resolution` as the renders stop: at the
        next block size (a power of two), None where that is the generator's own. Caps that render alike keep
        one cache key."""
        if self.max_resolution is None:
            return self
        block = 1 << (self.max_resolution - 1).bit_length()
        return replace(self, max_resolution=None if block >= resolution else block)

    @classmethod
    def official(cls, **changes: Any) -> "PTIConfig":
        """The official PTI schedule: 450 pivot steps at full resolution, 350 tuning steps at lr 3e-4, no
        plateau stop (what dragedit ran before its faster default; `scripts/bench_pti.py` compares them)."""
        base = {"pivot_steps": 450, "tune_steps": 350, "tune_lr": 3e-4, "pivot_skip_blocks": 0,
                "pivot_fine_steps": 0, "plateau_window": 0, "plateau_tol": 0.0, "max_resolution": None}
        return cls(**{**base, **changes})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """The fields that change the result (what a cache key should hold). The schedule fields added
        later are left out at their 'off' values, so sessions made before them keep their keys."""
        d = self.to_dict()
        for k in ("checkpoint_every", "allow_download", "companion_pivot_steps", "companion_weight"):
            d.pop(k)  # (the companions' fields are keyed by the stage that has companions)
        for k in ("pivot_skip_blocks", "pivot_fine_steps", "plateau_window"):
            if d[k] == 0:
                d.pop(k)
        if "plateau_window" not in d:
            d.pop("plateau_tol")
        if d["max_resolution"] is None:
            d.pop("max_resolution")
        if d["precision"] == "fp32":
            d.pop("precision")
        return d
