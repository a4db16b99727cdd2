"""The drag stage: DragGAN edits in a row, each from the previous one, under the numbers the recipe reserved."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dragedit.common import atomic
from dragedit.common.errors import UserError
from dragedit.common.hashing import file_sha256
from dragedit.common.images import save_image, tensor_to_uint8
from dragedit.common.threads import compute_signature
from dragedit.pipeline.imaging.align import Alignment
from dragedit.pipeline.imaging.geometry import map_points
from dragedit.pipeline.imaging.regions import region_mask

from .. import layout as L
from ..progress import Progress, ProgressHook
from ..records import handle_report
from ..requests import EditRequest, mask_to_crop, points_to_crop
from ..session import Session


def parent_ws(s: Session, parent: str, device: torch.device) -> tuple[torch.Tensor, str]:
    from safetensors.torch import load_file

    path = s.path(L.INVERT_PIVOT) if parent == L.PIVOT else s.path(parent, L.EDIT_WS)
    return load_file(str(path))["w"].to(device), file_sha256(path)


def run_drags(s: Session, requests: list[EditRequest], names: list[str], parent: str, Gt: torch.nn.Module,
              config, device: torch.device, request_id: str, on_progress: ProgressHook,
              image_resolution: int | None = None) -> list[str]:
    """Edit `names[i]` = `requests[i]` (photo pixels, anchors resolved) from `parent`, then from each other;
    `image_resolution`: the size the generator was tuned at, when below its own (its renders stop there)."""
    from .align import alignment

    al = alignment(s)
    inv, align_entry = s.stages[L.INVERT], s.stages[L.ALIGN]
    for i, (req, name) in enumerate(zip(requests, names)):
        ws0, ws_sha = parent_ws(s, parent, device)
        inputs = {"parent": parent, "parent_ws": ws_sha, "delta": inv["outputs"][L.INVERT_DELTA],
                  "alignment": align_entry["outputs"][L.ALIGNMENT],
                  "mask": file_sha256(req.mask) if req.mask else None}
        params = {"drags_photo": [list(d) for d in req.drags], "drag": config.to_dict(),
                  "compute": compute_signature(device)}
        if req.mask_region:
            params["mask_region"] = req.mask_region
        extra = {"request": request_id, "request_index": i, "align_key": align_entry["key"], "invert_key": inv["key"]}
        s.cached(name, inputs, params,
                 lambda: (_one_drag(s, name, parent, req, ws0, Gt, config, al, on_progress, image_resolution), extra))
        parent = name
    return list(names)


def _one_drag(s: Session, name: str, parent: str, req: EditRequest, ws0: torch.Tensor, Gt, cfg, al: Alignment,
              on_progress: ProgressHook, image_resolution: int | None) -> list[Path]:
    """One drag with its artifacts written; returns their paths."""
    from dragedit.draggan import DragDiverged, drag

    handles, targets = points_to_crop(req.drags, al.photo_size, al.photo_to_crop, al.crop_size)
    # A painted mask is DragGAN's (features outside it held still) and the photo's movable region; a face region
    # is the photo's region only: held-still features stall the drag on a small generator (README, presets).
    if req.mask:
        mask = loss_mask = mask_to_crop(req.mask, al.photo_size, al.crop_to_photo, al.crop_size)
    elif req.mask_region:
        mask = region_mask(req.mask_region, map_points(al.photo_to_crop, al.landmarks), (al.crop_size, al.crop_size))
        loss_mask = None
    else:
        mask = loss_mask = None
    number = L.edit_number(name)

    def callback(step) -> None:
        on_progress(Progress("drag", step.step, cfg.max_steps, number,
                             map_points(al.crop_to_photo, step.points).tolist(),
                             map_points(al.crop_to_photo, step.targets).tolist(),
                             lambda: tensor_to_uint8(step.render()),
                             f"{sum(step.distances) / max(1, len(step.distances)):.1f}px"))

    mask_t = torch.from_numpy(loss_mask).to(ws0.device) if loss_mask is not None else None
    try:
        res = drag(Gt, ws0, handles, targets, mask=mask_t, config=cfg, callback=callback,
                   image_resolution=image_resolution)
    except DragDiverged as exc:
        raise UserError(f"{exc}; nothing was saved") from None
    folder = s.path(name)
    ws = res.ws.detach().cpu().contiguous()
    from safetensors.torch import save_file

    atomic.write_with(folder / L.EDIT_WS, lambda tmp: save_file({"w": ws}, str(tmp)))
    save_image(tensor_to_uint8(res.image), folder / L.EDIT_CROP)
    outputs = [folder / L.EDIT_WS, folder / L.EDIT_CROP]
    if mask is not None:
        save_image(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), folder / L.EDIT_MASK)
        outputs.append(folder / L.EDIT_MASK)
    atomic.write_json(folder / L.EDIT_INFO, _edit_info(parent, req, handles, targets, res, mask, cfg, Gt, al))
    return outputs + [folder / L.EDIT_INFO]


def _edit_info(parent: str, req: EditRequest, handles, targets, res, mask, cfg, Gt, al: Alignment) -> dict[str, Any]:
    """edit.json: what was asked, where the handles went (tracker and LK), how the loop ended."""
    return {"parent": parent, "drags_photo": [list(d) for d in req.drags], **req.extra,
            "handles_crop": handles, "targets_crop": targets, "final_points_crop": res.points,
            "final_points_photo": map_points(al.crop_to_photo, res.points).tolist(),
            "steps": res.steps, "stopped_by": res.stopped_by, "mean_distance_crop": res.mean_distance,
            "handles": handle_report(handles, targets, res), "events": res.events,
            "trajectory": res.trajectory, "mask": bool(mask is not None), "mask_region": req.mask_region,
            "config": cfg.to_dict(), "image_resolution": int(res.image.shape[-1]),
            "feature_block_used": cfg.feature_block_for(list(Gt.synthesis.block_resolutions)),
            "radii_px": list(cfg.radii_for(Gt.img_resolution))}

