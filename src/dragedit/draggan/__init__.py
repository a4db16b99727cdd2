"""DragGAN (Pan et al. 2023): drag handle points to targets by optimising a StyleGAN2 W+ latent.

The names below load on first use, so importing a config module (`draggan.config`) starts no torch."""
from __future__ import annotations

from dragedit.common.lazy import lazy_attributes

__getattr__, __all__ = lazy_attributes(__name__, {
    ".config": "DragConfig",
    ".loop": "DragDiverged DragResult DragStep drag",
})
