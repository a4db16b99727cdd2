"""One settings object for an edit: what runs it (generator, device, threads) and every stage's config.

Every front end builds an `EditSettings` (the CLI from its option groups, the server at start, a batch
once for all photos, a library caller by hand) and hands it to the recipe; every default lives in the
dataclasses below and in the stage configs they hold.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
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
    defaults. Each stage config checks its own fields (a `FieldError` naming the field, finiteness included)."""

    generator: str | Path | None = None
    device: str = "auto"
    threads: int | None = None
    offline: bool = False  # never download LPIPS weights (PTI then uses its fallback loss)
    align: AlignConfig = field(default_factory=AlignConfig)  # its `size` is set from the generator
    pti: PTIConfig | None = None
    drag: DragConfig = field(default_factory=DragConfig)
    composite: CompositeConfig | None = None  # None: as the edit's composite was made, else the defaults

    def __post_init__(self) -> None:
        if self.generator is not None and not isinstance(self.generator, (str, Path)):
            raise SettingError("generator", repr(self.generator), "give a checkpoint path, or None for the session's "
                               "or the embedded one")
        for name, cls, optional in (("align", AlignConfig, False), ("pti", PTIConfig, True),
                                    ("drag", DragConfig, False), ("composite", CompositeConfig, True)):
            value = getattr(self, name)
            if not (isinstance(value, cls) or (optional and value is None)):
                raise SettingError(name, type(value).__name__, f"give a {cls.__name__}" + (" or None" if optional
                                                                                          else ""))
        if not isinstance(self.offline, bool):
            raise SettingError("offline", repr(self.offline), "use True or False")
        if not isinstance(self.device, str) or self.device not in DEVICES:
            raise SettingError("device", self.device, f"use one of {', '.join(DEVICES)}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise SettingError("threads", self.threads, "use a whole number, 1 or more")

    def with_pti_of(self, recorded: dict[str, Any] | None) -> "EditSettings":
        """These settings with `pti` filled in: as given, else the session's (its invert stage's parameters),
        else the defaults."""
        pti = self.pti
        if pti is None:
            values = _recorded_fields(PTIConfig, recorded)
            if recorded and values is not None:  # a key left out of the record is at its 'off' value
                values.setdefault("max_resolution", None)  # (`PTIConfig.result_dict`)
            pti = _config_or_default(PTIConfig, values)
        if self.offline:
            pti = replace(pti, allow_download=False)
        return replace(self, pti=pti)

    def with_composite_of(self, recorded: dict[str, Any] | None) -> "EditSettings":
        """These settings with `composite` filled in: as given, else as the edit's composite was last made (so a
        preview shows the picture the user wrote, `--paste generated` included), else the defaults."""
        if self.composite is not None:
            return self
        config = _config_or_default(CompositeConfig, _recorded_fields(CompositeConfig, recorded))
        return replace(self, composite=config)

    def for_generator(self, resolution: int) -> "EditSettings":
        """These settings for a generator of `resolution` px: PTI's resolution cap as it applies to it, and none
        when the generator's own pixels are pasted (`--paste generated` needs the whole image)."""
        pti = self.pti.for_generator(resolution)
        if self.composite is not None and self.composite.paste == "generated" and pti.max_resolution is not None:
            pti = replace(pti, max_resolution=None)
        return replace(self, pti=pti)

    def check_generator(self, block_resolutions: list[int]) -> None:
        """Settings that depend on the generator's architecture (its blocks), before any work."""
        self.drag.feature_block_for(block_resolutions)  # a FieldError naming feature_block



def _recorded_fields(cls: type, recorded: Any) -> dict[str, Any] | None:
    """A config's fields as a session recorded them, or None where the record is not one this version can
    trust (a hand-edited manifest: a field of another type than its default's, nested configs included)."""
    if recorded is None:
        return {}
    if not isinstance(recorded, dict):
        return None
    values = {}
    for f in fields(cls):
        if f.name not in recorded:
            continue
        value = recorded[f.name]
        default = f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default
        if is_dataclass(default):
            if _recorded_fields(type(default), value) is None:
                return None
        elif default is not None and default is not MISSING:
            want = float if isinstance(default, float) else type(default)
            ok = isinstance(value, want) or (want is float and isinstance(value, int))
            if not ok or (want is not bool and isinstance(value, bool)):
                return None
        values[f.name] = value
    return values


def _config_or_default(cls: type, values: dict[str, Any] | None):
    if values is None:
        return cls()
    try:
        return cls(**values)
    except (TypeError, ValueError):  # FieldError is a ValueError: a record this version cannot use
        return cls()
