"""What an edit's `edit.json` says about its handles, read for reports and for compositing."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


def handle_report(handles: list[list[float]], targets: list[list[float]], res) -> list[dict[str, Any]]:
    """Per handle: where it started and should go, where the tracker and where LK (independently) put it."""
    out = []
    for j, (h, t) in enumerate(zip(handles, targets)):
        row = {"start": h, "target": t, "tracker": res.points[j], "tracker_distance": math.dist(res.points[j], t),
               "lost": bool(res.lost[j]) if res.lost else False}
        if res.measured is not None:
            row.update({"measured": res.measured[j], "measured_ok": res.measured_ok[j],
                        "measured_distance": math.dist(res.measured[j], t),
                        "measured_displacement": math.dist(res.measured[j], h)})
        out.append(row)
    return out


def measured_anchors(info: dict[str, Any]) -> list[tuple[list[float], list[float]]]:
    """(start, end) crop points of handles whose motion LK measured reliably (lost by the tracker or not:
    LK knows where the feature went)."""
    return [(h["start"], h["measured"]) for h in info.get("handles", []) if h.get("measured_ok")]


def repainted_points(info: dict[str, Any]) -> list[list[float]]:
    """Crop points around handles the drag lost and LK could not find either: the generator repainted there."""
    return [p for h in info.get("handles", []) if h.get("lost") and not h.get("measured_ok")
            for p in (h["start"], h["tracker"])]


@dataclass
class HistoryEntry:
    """One edit of a session, as `dragedit history` lists it."""

    edit: int
    parent: str  # 'pivot' or 'edits/NNN'
    drags: list[list[float]]  # photo pixels, [x1, y1, x2, y2]
    final_points: list[list[float]] | None  # the tracker's, photo pixels
    steps: int | None
    stopped_by: str | None
    mean_distance_crop: float | None
    measured_distances: list[float | None] = field(default_factory=list)  # LK, crop px to each target
    lost: list[bool] = field(default_factory=list)
    completed_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["from"] = d.pop("parent")
        return d

    @classmethod
    def from_stage(cls, number: int, entry: dict[str, Any], info: dict[str, Any]) -> "HistoryEntry":
        handles = info.get("handles", [])
        return cls(number, entry["inputs"]["parent"], entry["params"]["drags_photo"], info.get("final_points_photo"),
                   info.get("steps"), info.get("stopped_by"), info.get("mean_distance_crop"),
                   [h.get("measured_distance") for h in handles], [h.get("lost", False) for h in handles],
                   entry.get("completed_at"))
