"""Which generator a command uses when the user names none."""
from __future__ import annotations

from pathlib import Path

from .errors import UserError


def resolve_generator(path: str | None) -> Path:
    """The user's checkpoint, checked to exist (the embedded default generator is not shipped yet)."""
    if path is None:
        raise UserError("no --generator given and no embedded default generator is installed; pass "
                        "--generator PATH (see `dragedit models list`)")
    p = Path(path)
    if not p.is_file():
        raise UserError(f"generator file not found: {p}; pass --generator with an existing checkpoint")
    return p
