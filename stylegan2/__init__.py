"""StyleGAN2 generator (official StyleGAN2-ADA numerics, pure PyTorch) and its checkpoint formats.

The names below load on first use, so importing a config module (its error types, a config) starts no torch."""
from __future__ import annotations

from dragedit.fileio.lazy import lazy_attributes

_WHERE = {
    "CheckpointError": ".checkpoints",
    "Generator": ".networks",
    "GeneratorConfig": ".networks",
    "file_sha256": ".checkpoints",
    "infer_config": ".checkpoints",
    "load_generator": ".checkpoints",
    "save_generator": ".checkpoints",
}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)
