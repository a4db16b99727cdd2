"""Sessions: a folder holding every stage's artifacts and a manifest, resumable and cached.

    SESSION/session.json          manifest (stages, keys, output hashes)
    SESSION/align/                aligned.png, alignment.json, inside_mask.png
    SESSION/invert/               pivot + tuned-generator delta, reconstructions, metrics (PTI checkpoint while running)
    SESSION/edits/NNN/            ws.safetensors, crop.png, edit.json (one folder per drag edit)
    SESSION/composite/edit-NNN.png   the edit pasted into the full-resolution photo

Use it as a context manager: entering takes the session's lock.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file as save_numpy

from fileio.environment import log
from fileio.hashing import file_sha256

from fileio import atomic
from .align import AlignConfig, align_photo, read_alignment, write_alignment
from .geometry import map_points
from .composite import CompositeConfig, blend_mask, composite, warp_paste, warp_region
from .edits import EditRequest, mask_to_crop, points_to_crop
from fileio.errors import UserError
from .generators import resolve_generator
from fileio.images import output_format, save_image, tensor_to_uint8
from .manifest import MANIFEST_NAME, Manifest, SessionLock, stable_hash
from .photo import Photo, load_photo

STAGE_FORMAT = 2  # bump when a stage's outputs change meaning; keys include it
MASK_NAME = "mask.png"  # an edit's movable region in crop pixels, when one was given


SESSION_MARKERS = {".lock", "align", "invert", "edits", "composite"}


def is_session_folder(folder: Path) -> bool:
    """A folder dragedit made: its manifest says so, or it has a session's layout (a broken manifest is
    recomputed, but a folder some other program owns is never written into)."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False
    if names & SESSION_MARKERS:
        return True
    try:
        return json.loads((folder / MANIFEST_NAME).read_text()).get("format") == "dragedit-session"
    except (OSError, ValueError, AttributeError):
        return False


class Session:
    """A session folder. `read_only=True` only reads (no lock, nothing created), for `history` on a busy session."""

    def __init__(self, folder: str | os.PathLike, progress: bool = True, warn: Callable[[str], None] | None = None,
                 read_only: bool = False):
        self.folder = Path(folder)
        self.progress = progress
        self.warn = warn or log.warning
        self.read_only = read_only
        self._lock = SessionLock(self.folder)
        self.manifest: Manifest | None = None
        self._photo: Photo | None = None
        self._models: dict[str, Any] = {}
        self._created = False

    def __enter__(self) -> "Session":
        if self.read_only:
            if not (self.folder / MANIFEST_NAME).is_file():
                raise UserError(f"{self.folder} is not a dragedit session (no {MANIFEST_NAME})")
            self.manifest = Manifest(self.folder, self.warn)
            return self
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"session folder {self.folder} is a file; give a folder path for --session")
        if self.folder.is_dir() and os.listdir(self.folder) and not is_session_folder(self.folder):
            raise UserError(f"{self.folder} is not empty and is not a dragedit session; give a new or empty folder "
                            "for --session")
        self._created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._created = False
            raise atomic.write_error(self.folder, exc) from None
        self._lock.__enter__()
        self.manifest = Manifest(self.folder, self.warn)
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self.read_only:
            return
        self._lock.__exit__(exc_type, *rest)
        if exc_type is not None and self._created and not self.manifest.stages:
            # A first run that failed before committing anything leaves no empty session behind.
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def report(self) -> dict[str, str]:
        return self.manifest.report

    def _rel(self, *parts: str) -> Path:
        return self.folder.joinpath(*parts)

    # ---- align ---------------------------------------------------------------------------------
    def align(self, photo_path: str | os.PathLike, config: AlignConfig) -> dict[str, Any]:
        photo_path = Path(photo_path)
        self._photo = load_photo(photo_path)
        inputs = {"photo": file_sha256(photo_path)}
        params = {**config.to_dict(), "stage_format": STAGE_FORMAT}
        key = stable_hash([inputs, params])
        entry = self.manifest.lookup("align", key)
        if entry:
            self.manifest.mark("align", "reused")
            return entry
        al = align_photo(self._photo, config)
        paths = write_alignment(al, self._rel("align"))
        self.manifest.mark("align", "computed")
        return self.manifest.commit("align", key, inputs, params, list(paths.values()),
                                    {"photo_path": str(photo_path.resolve())})

    def alignment(self):
        return read_alignment(self._rel("align"))

    # ---- invert --------------------------------------------------------------------------------
    def generator_path(self, generator: str | None) -> Path:
        """The given generator, else the one this session was inverted with (resuming another day)."""
        if generator is None:
            recorded = self.manifest.stages.get("invert", {}).get("generator_path")
            if recorded and Path(recorded).is_file():
                return Path(recorded)
        return resolve_generator(generator)

    def load_base_generator(self, generator: str | None, device: torch.device | str = "cpu"):
        from stylegan2 import load_generator

        path = self.generator_path(generator)
        if ("base", str(path)) not in self._models:
            self._models[("base", str(path))] = load_generator(path, device=device, with_info=True)
        return self._models[("base", str(path))]

    def invert(self, generator: str | None, pti_config, device: torch.device | str = "cpu") -> dict[str, Any]:
        from inversion import PTIConfig, invert, save_inversion

        cfg = pti_config or PTIConfig()
        G, info = self.load_base_generator(generator, device)
        al_entry = self.manifest.stages.get("align")
        if not al_entry:
            raise UserError(f"session {self.folder} has no alignment yet; run the align stage first")
        inputs = {"aligned": al_entry["outputs"]["align/aligned.png"], "generator": info["sha256"]}
        params = {**cfg.result_dict(), "stage_format": STAGE_FORMAT}
        key = stable_hash([inputs, params])
        entry = self.manifest.lookup("invert", key)
        if entry:
            self.manifest.mark("invert", "reused")
            return entry
        al = self.alignment()
        if al.crop_size != G.img_resolution:
            raise UserError(f"the session's crop is {al.crop_size}px but the generator makes {G.img_resolution}px "
                            "images; align again with the matching size")
        from .generators import note_if_default

        note_if_default(info["path"])
        from fileio.images import uint8_to_tensor

        target = uint8_to_tensor(al.crop, device)
        out = self._rel("invert")
        out.mkdir(parents=True, exist_ok=True)
        result = invert(G, target, cfg, work_dir=out, progress=self.progress, base_id=info["sha256"], warn=self.warn)
        save_inversion(result, out, G, info["sha256"], target, extra={"config": cfg.to_dict()})
        from inversion.artifacts import DELTA, LOSS_LOG, METRICS, PIVOT, PIVOT_RECON, RECON

        outputs = [out / n for n in (PIVOT, DELTA, RECON, PIVOT_RECON, METRICS, LOSS_LOG)]
        self._models.pop("tuned", None)
        self.manifest.mark("invert", "computed")
        return self.manifest.commit("invert", key, inputs, params, outputs, {"generator_path": str(info["path"])})

    def tuned(self, generator: str | None, device: torch.device | str = "cpu"):
        """(pivot w, tuned generator) of this session's inversion."""
        from inversion import load_inversion

        if "tuned" not in self._models:
            G, info = self.load_base_generator(generator, device)
            w, Gt = load_inversion(self._rel("invert"), G, info["sha256"])
            self._models["tuned"] = (w.to(device), Gt.to(device))
        return self._models["tuned"]

    # ---- drag edits ----------------------------------------------------------------------------
    def edit_names(self) -> list[str]:
        return sorted(k for k in self.manifest.stages if k.startswith("edits/"))

    def _resolve_from(self, spec: str | int | None, option: str = "--from") -> str:
        if spec in (None, "latest"):
            names = self.edit_names()
            return names[-1] if names else "pivot"
        if str(spec) == "pivot":
            return "pivot"
        spec = str(spec).removeprefix("edits/")
        name = f"edits/{int(spec):03d}" if spec.isdigit() else None
        if not name or name not in self.manifest.stages:
            raise UserError(f"{option} {spec}: no such edit; `dragedit history {self.folder}` lists them"
                            + (", or use 'pivot'" if option == "--from" else ""))
        return name

    def _parent_ws(self, parent: str, device) -> tuple[torch.Tensor, str]:
        from safetensors.torch import load_file

        if parent == "pivot":
            path = self._rel("invert", "pivot.safetensors")
        else:
            path = self._rel(parent, "ws.safetensors")
        return load_file(str(path))["w"].to(device), file_sha256(path)

    def drag(self, requests: list[EditRequest], drag_config, generator: str | None = None, from_spec=None,
             device: torch.device | str = "cpu", callback: Callable | None = None) -> list[str]:
        """Run the edits in order, each from the previous one; re-running the same request reuses its edits."""
        from draggan import DragConfig

        cfg = drag_config or DragConfig()
        al = self.alignment()
        _, Gt = self.tuned(generator, device)
        try:
            cfg.feature_block_for(list(Gt.synthesis.block_resolutions))
        except ValueError as exc:
            raise UserError(f"invalid drag settings: {exc}") from None
        inv = self.manifest.stages["invert"]
        req_id = stable_hash([self.manifest.stages["align"]["key"], inv["key"], [r.to_dict() for r in requests],
                              [file_sha256(r.mask) if r.mask else None for r in requests], cfg.to_dict(),
                              str(from_spec)])
        earlier = {e.get("request_index"): name for name, e in self.manifest.stages.items()
                   if name.startswith("edits/") and e.get("request") == req_id}
        parent = (self.manifest.stages[earlier[0]]["inputs"]["parent"] if 0 in earlier
                  else self._resolve_from(from_spec))
        done = []
        for i, req in enumerate(requests):
            handles, targets = points_to_crop(req.drags, al.photo_size, al.photo_to_crop, al.crop_size)
            mask = mask_to_crop(req.mask, al.photo_size, al.crop_to_photo, al.crop_size) if req.mask else None
            ws0, ws_sha = self._parent_ws(parent, device)
            inputs = {"parent": parent, "parent_ws": ws_sha, "delta": inv["outputs"]["invert/generator_delta.safetensors"],
                      "alignment": self.manifest.stages["align"]["outputs"]["align/alignment.json"],
                      "mask": file_sha256(req.mask) if req.mask else None}
            params = {"drags_photo": [list(d) for d in req.drags], "drag": cfg.to_dict(), "stage_format": STAGE_FORMAT}
            key = stable_hash([inputs, params])
            name = earlier.get(i)
            if name and self.manifest.lookup(name, key):
                self.manifest.mark(name, "reused")
            else:
                name = name or self._next_edit_name()
                self._run_edit(name, key, inputs, params, Gt, ws0, handles, targets, mask, cfg, al, req_id, i, callback)
            done.append(name)
            parent = name
        return done

    def check_requests(self, requests: list[EditRequest]) -> None:
        """Every point and mask of `requests` fits the aligned face (one-line errors before any long work)."""
        al = self.alignment()
        for req in requests:
            points_to_crop(req.drags, al.photo_size, al.photo_to_crop, al.crop_size)
            if req.mask:
                mask_to_crop(req.mask, al.photo_size, al.crop_to_photo, al.crop_size)

    def _next_edit_name(self) -> str:
        """Numbered from committed edits only: a folder a killed run left behind is untrusted and overwritten."""
        nums = [int(n.split("/")[1]) for n in self.edit_names()]
        return f"edits/{max(nums + [0]) + 1:03d}"

    def _run_edit(self, name, key, inputs, params, Gt, ws0, handles, targets, mask, cfg, al, req_id, index, callback):
        from safetensors.torch import save_file
        from tqdm import tqdm

        from draggan import DragDiverged, drag

        bar = tqdm(total=cfg.max_steps, desc=f"drag {name}", unit="step", disable=not self.progress)

        def cb(step):
            bar.n = step.step
            bar.set_postfix(dist=f"{sum(step.distances) / len(step.distances):.1f}px")
            bar.refresh()
            return callback(step) if callback else None

        mask_t = torch.from_numpy(mask).to(ws0.device) if mask is not None else None
        try:
            res = drag(Gt, ws0, handles, targets, mask=mask_t, config=cfg, callback=cb)
        except DragDiverged as exc:
            raise UserError(f"{exc}; nothing was saved") from None
        finally:
            bar.close()
        folder = self._rel(name)
        ws = res.ws.detach().cpu().contiguous()
        atomic.write_with(folder / "ws.safetensors", lambda tmp: save_file({"w": ws}, str(tmp)))
        save_image(tensor_to_uint8(res.image), folder / "crop.png")
        outputs = [folder / "ws.safetensors", folder / "crop.png"]
        if mask is not None:
            save_image(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), folder / MASK_NAME)
            outputs.append(folder / MASK_NAME)
        final_photo = map_points(al.crop_to_photo, res.points).tolist()
        info = {"parent": inputs["parent"], "drags_photo": params["drags_photo"], "handles_crop": handles,
                "targets_crop": targets, "final_points_crop": res.points, "final_points_photo": final_photo,
                "steps": res.steps, "stopped_by": res.stopped_by, "mean_distance_crop": res.mean_distance,
                "handles": handle_report(handles, targets, res), "events": res.events,
                "trajectory": res.trajectory, "mask": bool(mask is not None), "config": cfg.to_dict(),
                "feature_block_used": cfg.feature_block_for(list(Gt.synthesis.block_resolutions)),
                "radii_px": list(cfg.radii_for(Gt.img_resolution))}
        atomic.write_json(folder / "edit.json", info)
        self.manifest.mark(name, "computed")
        self.manifest.commit(name, key, inputs, params, outputs + [folder / "edit.json"],
                             {"request": req_id, "request_index": index})

    # ---- composite -----------------------------------------------------------------------------
    def composite(self, edit: str | int | None, output: str | os.PathLike, config: CompositeConfig | None = None,
                  photo_path: str | os.PathLike | None = None, overwrite: bool = False) -> dict[str, Any]:
        """Paste edit `edit` (default: the latest) into the photo and write `output`, never over the photo
        itself unless `overwrite` (then the original is kept as PHOTO.orig)."""
        from fileio.images import check_writable
        from .originals import guard_original

        cfg = config or CompositeConfig()
        check_writable(output)
        name = self._resolve_from(edit, "--edit")
        if name == "pivot":
            raise UserError("nothing to composite: the session has no edits yet")
        al_entry = self.manifest.stages["align"]
        photo_path = Path(photo_path or al_entry["photo_path"])
        if not photo_path.is_file() or file_sha256(photo_path) != al_entry["inputs"]["photo"]:
            raise UserError(f"the session's photo {photo_path} is missing or changed; pass the original photo")
        backup = guard_original(output, photo_path, overwrite)
        e = self.manifest.stages[name]
        inputs = {"photo": al_entry["inputs"]["photo"], "edit": e["outputs"][f"{name}/crop.png"],
                  "edit_info": e["outputs"][f"{name}/edit.json"],
                  "reconstruction": self.manifest.stages["invert"]["outputs"]["invert/reconstruction.png"],
                  "alignment": al_entry["outputs"]["align/alignment.json"]}
        params = {**cfg.to_dict(), "stage_format": STAGE_FORMAT}
        key = stable_hash([inputs, params])
        num = name.split("/")[1]
        stage = f"composite/{num}"
        out_png = self._rel("composite", f"edit-{num}.png")
        entry = self.manifest.lookup(stage, key)
        photo = self._photo if self._photo is not None and self._photo.path == photo_path else load_photo(photo_path)
        if entry:
            self.manifest.mark(stage, "reused")
            with Image.open(out_png) as img:
                result = np.asarray(img)
        else:
            al = self.alignment()
            edited = np.asarray(Image.open(self._rel(name, "crop.png")).convert("RGB"))
            recon = np.asarray(Image.open(self._rel("invert", "reconstruction.png")).convert("RGB"))
            lm_crop = map_points(al.photo_to_crop, al.landmarks)
            outputs = [out_png]
            if cfg.paste == "warp":
                info = json.loads(self._rel(name, "edit.json").read_text())
                anchors = measured_anchors(info) if info.get("parent") == "pivot" else []
                region = warp_region(lm_crop, al.inside, cfg, self._edit_chain(name))
                lost = repainted_points(info)
                wp = warp_paste(photo.color, al.crop, recon, edited, region, al.photo_to_crop, anchors, cfg, lost)
                result, stats = wp.photo, {**wp.stats, "anchors": len(anchors)}
                field_path = self._rel("composite", f"field-{num}.safetensors")
                arrays = {"field": np.ascontiguousarray(wp.field), "confidence": wp.confidence, "region": region}
                atomic.write_with(field_path, lambda tmp: save_numpy(arrays, str(tmp)))
                gen_path = self._rel("composite", f"generated-{num}.png")
                save_image(np.clip(np.rint(wp.generated * 255), 0, 255).astype(np.uint8), gen_path)
                outputs += [field_path, gen_path]
            else:
                mask = blend_mask(edited, recon, al.inside, lm_crop, cfg)
                result, stats = composite(photo.color, edited, mask, al.photo_to_crop)
                mask_path = self._rel("composite", f"mask-{num}.png")
                save_image(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), mask_path)
                outputs.append(mask_path)
            result = photo.output_pixels(result)  # the source's alpha, bit for bit
            save_image(result, out_png)
            self.manifest.mark(stage, "computed")
            entry = self.manifest.commit(stage, key, inputs, params, outputs, {"edit": name, **stats})
        if photo.bits > 8:
            self.warn(f"note: {photo_path.name} has 16 bits per channel; {Path(output).name} is written with 8")
        if photo.alpha is not None and output_format(output) == "JPEG":
            self.warn(f"note: JPEG has no transparency; {Path(output).name} is flattened onto white (use .png to keep it)")
        save_image(result, output, exif=photo.exif, icc_profile=photo.icc_profile, **photo.jpeg_settings(output))
        if backup is not None:
            self.warn(f"note: overwrote {photo_path}; the original is kept as {backup}")
        return {**entry, "edit": name, "output": str(output), "original_backup": str(backup) if backup else None}

    def _edit_chain(self, name: str) -> list[tuple[list[list[float]], np.ndarray | None]]:
        """(handles + targets, movable mask or None) in crop pixels of `name` and each edit it was built on."""
        chain = []
        while name != "pivot":
            info = json.loads(self._rel(name, "edit.json").read_text())
            mask = None
            if info.get("mask") and self._rel(name, MASK_NAME).is_file():
                mask = np.asarray(Image.open(self._rel(name, MASK_NAME)).convert("L"), np.float32) / 255.0
            chain.append((info["handles_crop"] + info["targets_crop"], mask))
            name = info["parent"]
        return chain

    # ---- history -------------------------------------------------------------------------------
    def history(self) -> list[dict[str, Any]]:
        out = []
        for name in self.edit_names():
            e = self.manifest.stages[name]
            try:
                info = json.loads(self._rel(name, "edit.json").read_text())
            except (OSError, ValueError):
                info = {}
            out.append({"edit": int(name.split("/")[1]), "from": e["inputs"]["parent"], "drags": e["params"]["drags_photo"],
                        "final_points": info.get("final_points_photo"), "steps": info.get("steps"),
                        "stopped_by": info.get("stopped_by"), "mean_distance_crop": info.get("mean_distance_crop"),
                        "measured_distances": [h.get("measured_distance") for h in info.get("handles", [])],
                        "lost": [h.get("lost", False) for h in info.get("handles", [])],
                        "completed_at": e.get("completed_at")})
        return out


def handle_report(handles: list[list[float]], targets: list[list[float]], res) -> list[dict[str, Any]]:
    """Per handle: where it started and should go, where the tracker and where LK (independently) put it."""
    import math

    out = []
    for j, (h, t) in enumerate(zip(handles, targets)):
        row = {"start": h, "target": t, "tracker": res.points[j], "tracker_distance": math.dist(res.points[j], t),
               "lost": bool(res.lost[j]) if res.lost else False}
        if res.measured is not None:
            row.update({"measured": res.measured[j], "measured_ok": res.measured_ok[j],
                        "measured_distance": math.dist(res.measured[j], t),
                        "measured_displacement": math.dist(res.measured[j], h)})
        out.append(row)
    return out


def measured_anchors(info: dict[str, Any]) -> list[tuple[list[float], list[float]]]:
    """(start, end) crop points of handles whose motion LK measured reliably (lost by the tracker or not:
    LK knows where the feature went)."""
    return [(h["start"], h["measured"]) for h in info.get("handles", []) if h.get("measured_ok")]


def repainted_points(info: dict[str, Any]) -> list[list[float]]:
    """Crop points around handles the drag lost and LK could not find either: the generator repainted there."""
    return [p for h in info.get("handles", []) if h.get("lost") and not h.get("measured_ok")
            for p in (h["start"], h["tracker"])]
