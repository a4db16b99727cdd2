"""StyleGAN2 generator (official StyleGAN2-ADA numerics, pure PyTorch) and its checkpoint formats.

The names below load on first use, so importing a config module (its error types, a config) starts no torch."""
from __future__ import annotations

from dragedit.common.lazy import lazy_attributes

__getattr__, __all__ = lazy_attributes(__name__, {
    ".checkpoints": "CheckpointError file_sha256 infer_config load_generator save_generator",
    ".networks": "Generator GeneratorConfig",
})
