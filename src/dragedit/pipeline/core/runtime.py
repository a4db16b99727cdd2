"""What a stage runs on: the torch device and the generator checkpoint (the user's, else the embedded one).

Torch loads only when a device is resolved, so the front ends import this without starting it.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from dragedit.common.environment import log

from .errors import SettingError

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_NAME = "default_generator.safetensors"


def resolve_device(name: str = "auto") -> Any:
    """A torch.device for 'auto', 'cpu', 'cuda' or 'mps'; one asked for but missing is a user error."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in DEVICES:
        raise SettingError("device", name, f"use one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingError("device", name, "no CUDA GPU is available; use cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingError("device", name, "MPS is not available; use cpu or auto")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """The CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it, many times slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False  # not Linux: no way to tell, so no bf16 on the CPU
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_precision(config: Any, device: Any, what: str) -> Any:
    """`config` (a DragConfig or PTIConfig) as it should run: bf16 on a CPU without native bf16 becomes fp32,
    said once per stage (never slower than fp32). `what` names the stage in the note."""
    from dataclasses import replace

    if getattr(config, "precision", "fp32") != "bf16" or device.type != "cpu" or cpu_has_bf16():
        return config
    _say_no_bf16(what)
    return replace(config, precision="fp32")


@functools.lru_cache(maxsize=None)
def _say_no_bf16(what: str) -> None:
    log.warning(f"note: this CPU has no native bf16 (AVX512-BF16 or AMX), where it runs emulated and many times "
                f"slower; {what} runs in fp32")


def default_generator_path() -> Path | None:
    """The small generator shipped in the package (trained on procedural portraits), if installed."""
    path = Path(__file__).resolve().parents[1] / "assets" / DEFAULT_NAME
    return path if path.is_file() else None


def resolve_generator(path: str | Path | None) -> Path:
    """The user's checkpoint, checked to exist; without one, the embedded generator (see `note_if_default`)."""
    if path is None:
        default = default_generator_path()
        if default is None:
            raise SettingError("generator", None, "no embedded default generator is installed; give a checkpoint "
                                                  "(the model registry lists the known ones)")
        return default
    p = Path(path)
    if not p.is_file():
        raise SettingError("generator", str(p), "file not found; give an existing checkpoint")
    return p


def note_if_default(path: str | Path) -> None:
    """Say once, when work with it starts (after the input was validated), that the embedded generator is in use."""
    default = default_generator_path()
    if default is not None and Path(path).resolve() == default:
        _note_once()


@functools.lru_cache(maxsize=1)
def _note_once() -> None:
    log.warning("note: using the embedded demo generator (trained on drawn faces); photo-quality results need a "
                "real FFHQ checkpoint: download the model draggan-ffhq-512 (on the command line: `dragedit models download "
                "draggan-ffhq-512`), then use it as the generator")


_LOADED: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def load_base_generator(path: Path, device: Any) -> tuple[Any, dict[str, Any]]:
    """(generator, checkpoint info), loaded once per process and device (the recipe's checks and its stages
    share it); an unreadable checkpoint is a setting error."""
    from dragedit.stylegan2 import CheckpointError, load_generator

    key = (str(Path(path).resolve()), str(device))
    if key not in _LOADED:
        try:
            _LOADED.clear()  # one generator in memory at a time
            _LOADED[key] = load_generator(path, device=device, with_info=True)
        except CheckpointError as exc:
            raise SettingError("generator", None, str(exc)) from None
    return _LOADED[key]
