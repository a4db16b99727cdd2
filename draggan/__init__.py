"""DragGAN (Pan et al. 2023): drag handle points to targets by optimising a StyleGAN2 W+ latent."""
from .config import DragConfig
from .loop import DragDiverged, DragResult, DragStep, drag

__all__ = ["DragConfig", "DragDiverged", "DragResult", "DragStep", "drag"]
