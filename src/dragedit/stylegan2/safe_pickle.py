"""Reading official StyleGAN2-ADA / DragGAN network pickles without executing their code.

Official snapshots rebuild each network by exec'ing source code stored in the pickle
(`torch_utils.persistence`). Here every global the pickle names is looked up in an allow-list;
persistent networks become `PersistentObject` records (class name + state) and nothing else runs.
"""
from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


@dataclass
class PersistentObject:
    """Plain-data stand-in for a `torch_utils.persistence` object: never instantiated, never executed."""

    class_name: str
    version: int
    state: dict[str, Any]

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and buffers of this module and its submodules under `state_dict` key names."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None:
                    out[prefix + name] = torch.Tensor(value.detach()) if isinstance(value, torch.Tensor) else value
        for name, sub in (self.state.get("_modules") or {}).items():
            if isinstance(sub, PersistentObject):
                out.update(sub.tensors(prefix + name + "."))
        return out


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("unexpected persistent object record")
    return PersistentObject(str(meta.get("class_name")), int(meta.get("version", 0)), dict(meta.get("state") or {}))


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *_: Any) -> torch.Tensor:
    return data.detach()


def _load_storage_from_bytes(b: bytes) -> Any:
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _safe_dtype(name: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dt = np.dtype(name)
    if dt.hasobject:
        raise UnsafePickleError("object dtypes are not allowed in checkpoints")
    return dt


def _safe_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("unexpected numpy scalar record")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
}


class AllowListUnpickler(pickle.Unpickler):
    """Resolves only the globals in ALLOWED_GLOBALS; everything else is refused before it is called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing to load global {module}.{name}: not on the allow-list") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent ids are not used by network pickles")


def safe_load(fh: BinaryIO) -> Any:
    return AllowListUnpickler(fh).load()
