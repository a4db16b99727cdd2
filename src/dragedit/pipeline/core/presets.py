"""Named edits shipped with dragedit (`pipeline/assets/presets.json`): anchored drags that fit any face, with
the face region they may move. `strength` scales their offsets: 0 is no edit, 1 as shipped, 2 twice as far.

Why these eight: the expressions people ask a portrait editor for most (a smile, a wider one, the corners
down), the brows both ways, wider eyes, and the two jaw-line changes (a lifted chin, a slimmer jaw). Each
uses only landmarks dlib places reliably and keeps its drags short (3-8 % of the eye distance), where a
DragGAN edit stays an edit of the same person.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from dragedit.pipeline.imaging.anchors import AnchoredDrag, parse_anchored

from .errors import RequestError

MAX_STRENGTH = 2.0
DEFAULT_STRENGTH = 1.0  # the offsets as shipped


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    drags: tuple[str, ...]  # anchored drag specs, `@NAME:DX,DY`
    mask_region: str | None

    def drags_at(self, strength: float = 1.0) -> list[AnchoredDrag]:
        """The preset's drags, their offsets scaled by `strength` (`EditRequest.from_preset` makes the edit)."""
        strength = check_strength(strength)
        return [scaled(parse_anchored(spec), strength) for spec in self.drags]


@functools.lru_cache(maxsize=1)
def presets() -> dict[str, Preset]:
    data = json.loads((Path(__file__).resolve().parents[1] / "assets" / "presets.json").read_text())
    return {name: Preset(name, p["description"], tuple(p["drags"]), p.get("mask_region")) for name, p in data.items()}


def preset(name: str) -> Preset:
    found = presets().get(name) if isinstance(name, str) else None
    if found is None:
        raise RequestError("preset", name, f"no such preset; use one of {', '.join(presets())}")
    return found


def check_strength(strength: float = DEFAULT_STRENGTH) -> float:
    if (isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength)
            or not 0 <= strength <= MAX_STRENGTH):
        raise RequestError("strength", strength, f"use a number from 0 (no edit) to {MAX_STRENGTH:g} (1 = as shipped)")
    return float(strength)


def scaled(drag: AnchoredDrag, strength: float) -> AnchoredDrag:
    """The same anchored drag with its offset times `strength`, its spec written out as scaled."""
    dx, dy = drag.dx * strength, drag.dy * strength
    head = drag.spec.split(":", 1)[0]
    spec = f"{head}:{dx:g}{'%' if drag.dx_percent else ''},{dy:g}{'%' if drag.dy_percent else ''}"
    return AnchoredDrag(spec, drag.index, dx, dy, drag.dx_percent, drag.dy_percent)
