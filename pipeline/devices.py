"""Choosing the torch device from `--device auto|cpu|cuda|mps`."""
from __future__ import annotations

import torch

from fileio.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for but MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)
