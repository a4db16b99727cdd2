"""One settings object for an edit: what runs it (generator, device, threads) and every stage's config.

Every front end builds an `EditSettings` (the CLI from its option groups, the server at start, a batch
once for all photos, a library caller by hand) and hands it to the recipe; every default lives in the
dataclasses below and in the stage configs they hold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from dragedit.draggan.config import DragConfig
from dragedit.inversion.config import PTIConfig
from dragedit.pipeline.imaging.align import AlignConfig
from dragedit.pipeline.imaging.paste import CompositeConfig

from .errors import SettingError
from .runtime import DEVICES


@dataclass
class EditSettings:
    """How an edit runs. `generator=None`: the session's own checkpoint (resuming), else the embedded one.
    `threads=None`: the count the session first computed with, else this process's fair share of the cores;
    a number is used and recorded (results depend on it, so a session's torch stages are keyed by it).
    `pti=None`: the settings the session was inverted with (so more edits never redo its PTI), else the
    defaults."""

    generator: str | Path | None = None
    device: str = "auto"
    threads: int | None = None
    offline: bool = False  # never download LPIPS weights (PTI then uses its fallback loss)
    align: AlignConfig = field(default_factory=AlignConfig)  # its `size` is set from the generator
    pti: PTIConfig | None = None
    drag: DragConfig = field(default_factory=DragConfig)
    composite: CompositeConfig = field(default_factory=CompositeConfig)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise SettingError("device", self.device, f"use one of {', '.join(DEVICES)}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise SettingError("threads", self.threads, "use a whole number, 1 or more")
        for part in (self.pti, self.drag, self.composite):
            if part is not None:
                _check_finite(part)

    def with_pti_of(self, recorded: dict[str, Any] | None) -> "EditSettings":
        """These settings with `pti` filled in: as given, else the session's (its invert stage's parameters),
        else the defaults."""
        pti = self.pti
        if pti is None:
            names = {f.name for f in fields(PTIConfig)}
            values = {k: v for k, v in (recorded or {}).items() if k in names}
            if recorded:  # a key left out of the record is at its 'off' value (`PTIConfig.result_dict`)
                values.setdefault("max_resolution", None)
            pti = PTIConfig(**values)
        if self.offline:
            pti = replace(pti, allow_download=False)
        return replace(self, pti=pti)

    def for_generator(self, resolution: int) -> "EditSettings":
        """These settings for a generator of `resolution` px: PTI's resolution cap as it applies to it, and none
        when the generator's own pixels are pasted (`--paste generated` needs the whole image)."""
        pti = self.pti.for_generator(resolution)
        if self.composite.paste == "generated" and pti.max_resolution is not None:
            pti = replace(pti, max_resolution=None)
        return replace(self, pti=pti)

    def check_generator(self, block_resolutions: list[int]) -> None:
        """Settings that depend on the generator's architecture (its blocks), before any work."""
        try:
            self.drag.feature_block_for(block_resolutions)
        except ValueError as exc:
            raise SettingError("feature_block", self.drag.feature_block, str(exc)) from None


def _check_finite(config: Any, prefix: str = "") -> None:
    """A stage config whose numbers are all finite (a NaN learning rate would run for minutes, then fail)."""
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            _check_finite(value, f"{prefix}{f.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise SettingError(f.name, value, "use a finite number")
