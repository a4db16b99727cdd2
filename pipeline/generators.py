"""Which generator a command uses: the user's checkpoint, else the embedded demo generator."""
from __future__ import annotations

import functools
from pathlib import Path

from fileio.environment import log
from fileio.errors import UserError

DEFAULT_NAME = "default_generator.safetensors"


def default_generator_path() -> Path | None:
    """The small generator shipped in the package (trained on procedural portraits), if installed."""
    path = Path(__file__).resolve().parent / "assets" / DEFAULT_NAME
    return path if path.is_file() else None


def resolve_generator(path: str | None) -> Path:
    """The user's checkpoint, checked to exist; without one, the embedded generator (see `note_if_default`)."""
    if path is None:
        default = default_generator_path()
        if default is None:
            raise UserError("no --generator given and no embedded default generator is installed; pass "
                            "--generator PATH (see `dragedit models list`)")
        return default
    p = Path(path)
    if not p.is_file():
        raise UserError(f"generator file not found: {p}; pass --generator with an existing checkpoint")
    return p


def note_if_default(path: str | Path) -> None:
    """Say once, when work with it starts (after the input was validated), that the embedded generator is in use."""
    default = default_generator_path()
    if default is not None and Path(path).resolve() == default:
        _note_once()


@functools.lru_cache(maxsize=1)
def _note_once() -> None:
    log.warning("note: using the embedded demo generator (trained on drawn faces); photo-quality results need a "
                "real FFHQ checkpoint: `dragedit models download draggan-ffhq-512`, then --generator")
