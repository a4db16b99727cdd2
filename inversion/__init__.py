"""Pivotal Tuning Inversion (Roich et al. 2022) of an aligned face crop into a StyleGAN2 generator."""
from .artifacts import apply_delta, load_inversion, save_inversion
from .config import PTIConfig
from .pti import InversionResult, invert

__all__ = ["InversionResult", "PTIConfig", "apply_delta", "invert", "load_inversion", "save_inversion"]
