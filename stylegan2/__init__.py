"""StyleGAN2 generator (official StyleGAN2-ADA numerics, pure PyTorch) and its checkpoint formats."""
from .checkpoints import CheckpointError, file_sha256, infer_config, load_generator, save_generator
from .networks import Generator, GeneratorConfig

__all__ = ["CheckpointError", "Generator", "GeneratorConfig", "file_sha256", "infer_config", "load_generator",
           "save_generator"]
