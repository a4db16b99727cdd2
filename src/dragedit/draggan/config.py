"""Drag loop settings, named after the DragGAN paper (Pan et al. 2023)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dragedit.common.errors import FieldError, check_finite


@dataclass
class DragConfig:
    """Defaults are the paper's FFHQ settings. `r1`, `r2` are pixels at 512 resolution; the loop
    scales them by resolution / 512 and rounds, as the official code does, but not below `min_r1`,
    `min_r2`: below 256 px the scaled disc would shrink to the handle pixel alone (r1 = 1 at 128 px) and
    the search patch to +-3 px, which on our 128 px generator made tracking drift (scripts/eval_drag.py).
    `feature_block=None` picks the block at min(128, R / 2) pixels: block 5 (128 px) for 256-1024 px
    generators, as the paper and the official code use, and block 4 (64 px, more channels than the
    last block) on 128 px generators."""

    lr: float = 2e-3
    lambda_mask: float = 20.0
    r1: float = 3.0
    r2: float = 12.0
    feature_block: int | None = None  # None: the block at min(128, R / 2) px
    w_plus: bool = True
    optimize_rows: int = 6
    max_steps: int = 300
    min_r1: float = 2.0  # pixels at the generator's resolution, after scaling
    min_r2: float = 6.0
    stop_distance: float | None = None  # None: the stop_rule decides
    stop_rule: str = "paper"  # 'paper': 1 px for <= 5 handles, else 2; 'official': max(2 * R / 512, 2)
    tracking: str = "l1"  # 'l1' as in the paper, 'l2' as in the official code
    disc_grid: str = "pixel"  # 'pixel': integer pixel grid; 'official': the official code's linspace(0, R, R) grid
    noise_mode: str = "const"
    sparse: bool = True  # sample upsampled features at the needed pixels only (identical results)
    full_synthesis: bool = False  # run every block each step, as the official code does (benchmarks only)
    # Run the late feature blocks only on crops around the handles (their tracking patch and motion disc grown by
    # the blocks' reach): equal features where the loop reads them, a fraction of the cost. Off with a mask,
    # whose term reads the whole map.
    windowed: bool = True
    precision: str = "fp32"  # 'bf16': the generator forward under bf16 autocast (see bench_drag.py; not exact)
    # Honest arrival: before stopping on distance (and when a tracked point jumps), the handles are located
    # independently by Lucas-Kanade on the renders (draggan/verify.py). A handle the two place more than
    # `verify_tolerance` px apart is moved to LK's position and the loop goes on, at most `max_recoveries`
    # times per handle; after that it is flagged lost and the loop stops with stopped_by = 'lost'.
    verify: bool = True
    verify_tolerance: float = 2.0  # pixels at the generator's resolution
    max_recoveries: int = 3
    jump_px: float | None = None  # a tracked point moving further in one step triggers a check; None: max(3, r2 / 2)

    def __post_init__(self) -> None:
        check_finite(self)
        for name, allowed in (("tracking", ("l1", "l2")), ("stop_rule", ("paper", "official")),
                              ("precision", ("fp32", "bf16")), ("disc_grid", ("pixel", "official"))):
            if getattr(self, name) not in allowed:
                raise FieldError(name, getattr(self, name), f"use {' or '.join(allowed)}")
        for name, low, what in (("lr", 0, "a positive number"), ("r1", 0, "a positive number"),
                                ("r2", 0, "a positive number"), ("verify_tolerance", 0, "a positive number")):
            if getattr(self, name) <= low:
                raise FieldError(name, getattr(self, name), f"use {what}")
        for name, low in (("max_steps", 0), ("optimize_rows", 1), ("lambda_mask", 0), ("min_r1", 1), ("min_r2", 1),
                          ("max_recoveries", 0)):
            if getattr(self, name) < low:
                raise FieldError(name, getattr(self, name), f"use {low} or more")
        if self.feature_block is not None and self.feature_block < 0:
            raise FieldError("feature_block", self.feature_block, "use a block number, 0 or more")
        for name in ("jump_px", "stop_distance"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise FieldError(name, getattr(self, name), "use a positive number of pixels")

    def radii_for(self, resolution: int) -> tuple[int, int]:
        """(r1, r2) in pixels at `resolution`: scaled from 512 and rounded as the official code, then floored."""
        r1 = max(round(self.r1 / 512 * resolution), round(self.min_r1))
        r2 = max(round(self.r2 / 512 * resolution), round(self.min_r2))
        return r1, r2

    def feature_block_for(self, block_resolutions: list[int]) -> int:
        if self.feature_block is not None:
            if self.feature_block >= len(block_resolutions):
                raise FieldError("feature_block", self.feature_block,
                                 f"out of range: this generator has blocks 0..{len(block_resolutions) - 1}")
            return self.feature_block
        want = min(128, block_resolutions[-1] // 2)
        return min(range(len(block_resolutions)), key=lambda i: abs(block_resolutions[i] - want))

    def jump_for(self, resolution: int) -> float:
        return float(self.jump_px) if self.jump_px is not None else max(3.0, self.radii_for(resolution)[1] / 2)

    def stop_distance_for(self, num_handles: int, resolution: int) -> float:
        if self.stop_distance is not None:
            return float(self.stop_distance)
        if self.stop_rule == "official":
            return max(2 * resolution / 512, 2.0)
        return 1.0 if num_handles <= 5 else 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def official(cls, **overrides: Any) -> "DragConfig":
        """The official DragGAN GUI's arithmetic: L2 tracking, linspace disc grid, its stop rule, lambda 10,
        block 5, radii scaled from 512 px with no floor beyond 1 px, and no independent arrival check."""
        kw: dict[str, Any] = {"tracking": "l2", "disc_grid": "official", "stop_rule": "official", "lambda_mask": 10.0,
                              "feature_block": 5, "min_r1": 1.0, "min_r2": 1.0,
                              "verify": False}
        kw.update(overrides)
        return cls(**kw)
