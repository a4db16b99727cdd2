"""Pivotal Tuning Inversion (Roich et al. 2022) of an aligned face crop into a StyleGAN2 generator.

The names below load on first use, so importing a config module (`inversion.config`) starts no torch."""
from __future__ import annotations

from dragedit.common.lazy import lazy_attributes

__getattr__, __all__ = lazy_attributes(__name__, {
    ".pti": "Companions InversionResult invert",
    ".config": "PTIConfig",
    ".artifacts": "apply_delta load_inversion save_inversion",
})
