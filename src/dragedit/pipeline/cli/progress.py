"""The recipe's progress as tqdm bars on stderr: one bar per stage that counts steps."""
from __future__ import annotations

from typing import Any


class Bars:
    """A `ProgressHook`: opens a bar when a counted stage starts, moves it, closes it when the stage changes."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: Any = None
        self.key: tuple | None = None

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        key = (p.stage, p.edit)
        if key != self.key:
            self.close()
            self.key = key
            if p.total:
                from tqdm import tqdm

                desc = p.stage if p.edit is None else f"{p.stage} edit {p.edit:03d}"
                self.bar = tqdm(total=p.total, desc=desc, unit="step", leave=False)
        if self.bar is not None:
            self.bar.n = p.step
            if p.note:
                self.bar.set_postfix_str(p.note, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
