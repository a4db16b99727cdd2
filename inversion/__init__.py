"""Pivotal Tuning Inversion (Roich et al. 2022) of an aligned face crop into a StyleGAN2 generator.

The names below load on first use, so importing a config module (`inversion.config`) starts no torch."""
from __future__ import annotations

from dragedit.fileio.lazy import lazy_attributes

_WHERE = {
    "InversionResult": ".pti",
    "PTIConfig": ".config",
    "apply_delta": ".artifacts",
    "invert": ".pti",
    "load_inversion": ".artifacts",
    "save_inversion": ".artifacts",
}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)
