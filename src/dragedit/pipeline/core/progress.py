"""What the recipe tells a front end while it works: the CLI draws bars from it, the server sends events."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Progress:
    stage: str  # load | align | invert (pivot) | invert (tune) | drag | composite | done
    step: int = 0
    total: int = 0
    edit: int | None = None  # the edit a drag or composite is making
    points: list[list[float]] | None = None  # drag: the handles now, photo pixels
    targets: list[list[float]] | None = None
    render: Callable[[], Any] | None = None  # drag: the current crop (uint8 RGB), rendered only if asked
    note: str = ""  # a short figure for a bar (the mean handle distance)


ProgressHook = Callable[[Progress], None]


def ignore(_: Progress) -> None:
    """The hook when nobody listens."""
