"""PTI artifacts on disk: pivot, tuned generator as an fp16 delta against its base, images, metrics.

The tuned generator is stored as `tuned - base` in float16 for the synthesis tensors PTI changes,
with the base checkpoint's SHA-256; loading needs that same base. Metrics are computed from the
stored (reloaded) generator, so they describe exactly what a later stage will use.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from dragedit.common import atomic
from dragedit.common.hashing import pack_metadata, unpack_metadata
from dragedit.common.errors import UserError
from dragedit.common.images import save_image, tensor_to_uint8

from .pti import CHECKPOINT_NAME, InversionResult, image_metrics
from .losses import lpips_metric

PIVOT, DELTA, RECON, PIVOT_RECON, METRICS, LOSS_LOG = ("pivot.safetensors", "generator_delta.safetensors",
                                                       "reconstruction.png", "pivot_reconstruction.png",
                                                       "metrics.json", "loss_log.json")
ARTIFACTS = (PIVOT, DELTA, RECON, PIVOT_RECON, METRICS, LOSS_LOG)


def _delta(G_base: torch.nn.Module, G_tuned: torch.nn.Module) -> dict[str, torch.Tensor]:
    base = G_base.synthesis.state_dict()
    out = {}
    for k, v in G_tuned.synthesis.state_dict().items():
        d = (v.detach().float().cpu() - base[k].detach().float().cpu())
        if torch.count_nonzero(d):
            out[f"synthesis.{k}"] = d.to(torch.float16).contiguous()
    return out


def apply_delta(G_base: torch.nn.Module, delta: dict[str, torch.Tensor]) -> torch.nn.Module:
    G = copy.deepcopy(G_base)
    sd = G.state_dict()
    for k, d in delta.items():
        if k not in sd or sd[k].shape != d.shape:
            raise UserError(f"the tuned-generator delta does not fit this base generator (tensor {k})")
        sd[k] = sd[k] + d.to(sd[k].device, torch.float32)
    G.load_state_dict(sd)
    return G.eval().requires_grad_(False)


def save_inversion(result: InversionResult, out_dir: str | os.PathLike, G_base: torch.nn.Module, base_sha256: str,
                   target: torch.Tensor, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write all artifacts (metrics.json last), remove the checkpoint, return the metrics."""
    out = Path(out_dir)
    meta = pack_metadata({"format": "dragedit-pti", "base_sha256": base_sha256, "losses": result.losses_used})
    w = result.w.detach().cpu().contiguous()
    atomic.write_with(out / PIVOT, lambda tmp: save_file({"w": w}, str(tmp), metadata=meta))
    delta = _delta(G_base, result.G)
    atomic.write_with(out / DELTA, lambda tmp: save_file(delta, str(tmp), metadata=meta))
    stored = apply_delta(G_base, delta)
    lp = lpips_metric("alex")
    with torch.no_grad():  # at the resolution PTI worked at (the images and metrics a later stage sees)
        dev_w = result.w.to(target.device)
        pivot_img = G_base.synthesis(dev_w, noise_mode="const", max_resolution=result.cap)
        tuned_img = stored.to(target.device).synthesis(dev_w, noise_mode="const", max_resolution=result.cap)
        if target.shape[-1] > result.resolution:
            target = torch.nn.functional.interpolate(target.float(), size=pivot_img.shape[-2:], mode="area")
    save_image(tensor_to_uint8(pivot_img), out / PIVOT_RECON)
    save_image(tensor_to_uint8(tuned_img), out / RECON)
    metrics = {"pivot": image_metrics(pivot_img, target, lp), "tuned": image_metrics(tuned_img, target, lp),
               "lpips_metric_available": lp is not None, "losses_used": result.losses_used,
               "base_sha256": base_sha256, "delta_tensors": len(delta),
               "delta_bytes": sum(t.numel() * 2 for t in delta.values()), **result.metrics, **(extra or {})}
    atomic.write_json(out / LOSS_LOG, result.loss_log)
    atomic.write_json(out / METRICS, metrics)
    ck = out / CHECKPOINT_NAME
    if ck.exists():
        ck.unlink()
    return metrics


def load_inversion(folder: str | os.PathLike, G_base: torch.nn.Module, base_sha256: str | None = None
                   ) -> tuple[torch.Tensor, torch.nn.Module]:
    """The pivot and tuned generator of a finished inversion, checked against the base generator."""
    folder = Path(folder)
    try:
        with safe_open(str(folder / DELTA), framework="pt") as fh:
            meta = unpack_metadata(fh.metadata())
        w = load_file(str(folder / PIVOT))["w"]
        delta = load_file(str(folder / DELTA))
    except (OSError, SafetensorError) as exc:
        raise UserError(f"{folder} holds no complete inversion ({exc}); invert again") from None
    if base_sha256 and meta.get("base_sha256") != base_sha256:
        raise UserError(f"the inversion in {folder} was made with another generator "
                        f"(sha256 {meta.get('base_sha256', '?')[:12]}...); use that generator or invert again")
    return w, apply_delta(G_base, delta)
