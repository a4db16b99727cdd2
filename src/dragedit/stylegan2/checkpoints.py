"""Loading and saving generators: official pickles, official state dicts, our safetensors format.

Nothing here executes code from a checkpoint: pickles go through the allow-list unpickler,
`torch.load` always runs with `weights_only=True`.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dragedit.common.atomic import write_with
from dragedit.common.hashing import file_sha256, pack_metadata, unpack_metadata  # stylegan2 re-exports file_sha256

from .networks import Generator, GeneratorConfig
from .safe_pickle import PersistentObject, UnsafePickleError, safe_load

FORMAT_NAME = "dragedit-generator"
FORMAT_VERSION = "1"
ACCEPTED = ("an official StyleGAN2-ADA/DragGAN network pickle (.pkl, G_ema is used), "
            "a Generator state_dict saved with torch.save, or a dragedit .safetensors generator")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and the accepted formats."""


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"cannot load generator {path}: {why}. Accepted: {ACCEPTED}")


def infer_config(state_dict: dict[str, torch.Tensor], conv_clamp: float | None = 256) -> GeneratorConfig:
    """Architecture from tensor shapes (what an official state_dict does not record).

    `conv_clamp` cannot be seen in the weights; 256 is what every official config uses.
    """
    try:
        fc = sorted(int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
        res = sorted(int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
        z_dim = state_dict["mapping.fc0.weight"].shape[1]
        w_dim = state_dict[f"mapping.fc{fc[-1]}.weight"].shape[0]
        chans = {r: state_dict[f"synthesis.b{r}.conv1.weight"].shape[0] for r in res}
        img_channels = state_dict[f"synthesis.b{res[-1]}.torgb.weight"].shape[0]
    except (KeyError, IndexError) as exc:
        raise ValueError(f"not a StyleGAN2 generator state_dict (missing {exc})") from None
    channel_max = max(chans.values())
    below = [r for r in res if chans[r] < channel_max]
    channel_base = chans[below[0]] * below[0] if below else channel_max * res[-1]
    cfg = GeneratorConfig(z_dim=z_dim, w_dim=w_dim, img_resolution=res[-1], img_channels=img_channels,
                          mapping_layers=len(fc), channel_base=channel_base, channel_max=channel_max,
                          conv_clamp=conv_clamp)
    if any(min(channel_base // r, channel_max) != chans[r] for r in res):
        raise ValueError("channel counts per block do not follow min(channel_base // res, channel_max)")
    return cfg


def generator_from_state_dict(state_dict: dict[str, torch.Tensor], config: GeneratorConfig) -> Generator:
    G = Generator(config)
    own = G.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ValueError(f"state_dict does not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in state_dict.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    G.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()})
    return G.eval().requires_grad_(False)


def _official_kwargs(obj: PersistentObject) -> dict[str, Any]:
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"]
    kw = dict(zip(names, obj.init_args))
    kw.update(obj.init_kwargs)
    return kw


def _load_pickle(path: Path) -> tuple[Generator, dict[str, Any]]:
    with open(path, "rb") as fh:
        data = safe_load(fh)
    net = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(net, PersistentObject):
        raise _fail(path, "the pickle holds no G_ema network")
    cfg = GeneratorConfig.from_official_kwargs(_official_kwargs(net))
    return generator_from_state_dict(net.tensors(), cfg), {"source_format": "stylegan2-ada-pickle",
                                                           "class_name": net.class_name}


def _load_state_dict(path: Path, config: GeneratorConfig | None) -> tuple[Generator, dict[str, Any]]:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "G_ema" in sd and isinstance(sd["G_ema"], dict):
        sd = sd["G_ema"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError("the file holds no dictionary of tensors")
    cfg = config or infer_config(sd)
    return generator_from_state_dict(sd, cfg), {"source_format": "state_dict"}


def _load_safetensors(path: Path) -> tuple[Generator, dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = unpack_metadata(fh.metadata())
    if meta.get("format") != FORMAT_NAME:
        raise ValueError("safetensors file without dragedit generator metadata")
    cfg = GeneratorConfig(**meta["config"])
    info = {"source_format": "dragedit-safetensors", "provenance": meta.get("provenance", {})}
    return generator_from_state_dict(load_file(str(path)), cfg), info


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) == 0:
        return "empty"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu",
                   config: GeneratorConfig | None = None, with_info: bool = False):
    """Load a generator from any accepted format; `config` overrides shape inference for state dicts."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"generator file not found: {path}")
    kind = _sniff(path)
    try:
        if kind == "safetensors":
            G, info = _load_safetensors(path)
        elif kind == "zip":
            G, info = _load_state_dict(path, config)
        elif kind == "pickle":
            try:
                G, info = _load_pickle(path)
            except UnsafePickleError:
                raise
            except (pickle.UnpicklingError, AttributeError) as exc:
                # A legacy (non-zip) torch.save file is a pickle too; weights_only decides.
                try:
                    G, info = _load_state_dict(path, config)
                except Exception:
                    raise _fail(path, f"unreadable pickle ({exc})") from None
        elif kind == "empty":
            raise _fail(path, "the file is empty")
        else:
            raise _fail(path, "unrecognised file format")
    except CheckpointError:
        raise
    except UnsafePickleError as exc:
        raise _fail(path, f"unsafe pickle, nothing was executed ({exc})") from None
    except (ValueError, KeyError, EOFError, RuntimeError, SafetensorError, zipfile.BadZipFile,
            pickle.UnpicklingError, OSError) as exc:
        raise _fail(path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'corrupt'}") from None
    G = G.to(device)
    info["sha256"] = file_sha256(path)
    info["path"] = str(path)
    return (G, info) if with_info else G


def save_generator(G: Generator, path: str | os.PathLike, provenance: dict[str, Any] | None = None,
                   dtype: torch.dtype = torch.float32) -> Path:
    """Our format: safetensors weights, the architecture and provenance in its JSON header."""
    path = Path(path)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in G.state_dict().items()}
    meta = pack_metadata({"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": G.config.to_dict(),
                          "provenance": provenance or {}})
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return path

