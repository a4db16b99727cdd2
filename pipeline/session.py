"""Sessions: a folder holding every stage's artifacts and a manifest, resumable and cached.

`Session(folder, generator=..., device=...)` holds what every stage needs; its methods are the stages in
order (align -> invert -> drag -> composite), each run through `_cached`: unchanged inputs and parameters
reuse the committed artifacts, anything else recomputes and commits them. The folder's layout is
`layout.py`'s. Use it as a context manager: entering takes the session's lock.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file as save_numpy

from fileio import atomic
from fileio.environment import log
from fileio.threads import compute_signature
from fileio.errors import UserError
from fileio.hashing import file_sha256
from fileio.images import check_writable, output_format, save_image, tensor_to_uint8

from . import layout as L
from .align import AlignConfig, align_photo, read_alignment, write_alignment
from .composite import CompositeConfig, blend_mask, composite, warp_paste, warp_region
from .edit_record import HistoryEntry, handle_report, measured_anchors, repainted_points
from .edits import EditRequest, mask_to_crop, points_to_crop
from .generators import resolve_generator
from .geometry import map_points
from .manifest import MANIFEST_NAME, Manifest, SessionLock, stable_hash
from .photo import Photo, load_photo

STAGE_FORMAT = 2  # bump when a stage's outputs change meaning; keys include it


@dataclass
class CompositeResult:
    """What `Session.composite` wrote: which edit, where, how much of the photo changed."""

    edit: str
    output: str
    paste: str
    changed_pixels: int
    bbox: list[int] | None
    original_backup: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SESSION_MARKERS = {".lock", *L.FOLDERS}


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


StepHook = Callable[[str, int, int], None]  # (stage, step, total): PTI's "pivot" and "tune" steps


class Session:
    """A session folder. `read_only=True` only reads (no lock, nothing created), for `history` on a busy session.
    `on_step(stage, step, total)` hears PTI's steps (a server's progress events; drags have `callback`)."""

    def __init__(self, folder: str | os.PathLike, *, generator: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu", progress: bool = True,
                 warn: Callable[[str], None] | None = None, read_only: bool = False,
                 on_step: StepHook | None = None):
        self.folder = Path(folder)
        self.generator = generator  # None: the session's own (resuming), else the embedded one
        self.device = device
        self.progress = progress
        self.warn = warn or log.warning
        self.read_only = read_only
        self.on_step = on_step
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
    def photo(self) -> Photo | None:
        """The session's original photo, once `align` or `composited` has loaded it."""
        return self._photo

    @property
    def inverted(self) -> bool:
        return L.INVERT in self.manifest.stages

    @property
    def report(self) -> dict[str, str]:
        return self.manifest.report

    def _rel(self, *parts: str) -> Path:
        return self.folder.joinpath(*parts)

    def _cached(self, stage: str, inputs: dict[str, Any], params: dict[str, Any],
                compute: Callable[[], tuple[list[Path], dict[str, Any]]]) -> dict[str, Any]:
        """The stage's committed entry when its key (inputs + parameters) matches and its outputs are intact;
        else `compute()` -> (output paths, extra fields) and commit them, the manifest entry last."""
        params = {**params, "stage_format": STAGE_FORMAT}
        key = stable_hash([inputs, params])
        entry = self.manifest.lookup(stage, key)
        if entry:
            self.manifest.mark(stage, "reused")
            return entry
        outputs, extra = compute()
        self.manifest.mark(stage, "computed")
        return self.manifest.commit(stage, key, inputs, params, outputs, extra)

    # ---- align ---------------------------------------------------------------------------------
    def align(self, photo_path: str | os.PathLike, config: AlignConfig) -> dict[str, Any]:
        photo_path = Path(photo_path)
        self._photo = load_photo(photo_path)

        def compute():
            paths = write_alignment(align_photo(self._photo, config), self._rel(L.ALIGN))
            return list(paths.values()), {"photo_path": str(photo_path.resolve())}

        return self._cached(L.ALIGN, {"photo": file_sha256(photo_path)}, config.to_dict(), compute)

    def alignment(self):
        return read_alignment(self._rel(L.ALIGN))

    # ---- invert --------------------------------------------------------------------------------
    def generator_path(self) -> Path:
        """The session's generator: the one given, else the one it was inverted with (resuming another day)."""
        if self.generator is None:
            recorded = self.manifest.stages.get(L.INVERT, {}).get("generator_path")
            if recorded and Path(recorded).is_file():
                return Path(recorded)
        return resolve_generator(None if self.generator is None else str(self.generator))

    def load_base_generator(self):
        """(base generator, checkpoint info), loaded once per session object."""
        from stylegan2 import load_generator

        path = self.generator_path()
        if ("base", str(path)) not in self._models:
            self._models[("base", str(path))] = load_generator(path, device=self.device, with_info=True)
        return self._models[("base", str(path))]

    def invert(self, *, config=None) -> dict[str, Any]:
        """PTI of the aligned crop (`config`: a PTIConfig; `stages.invert_crop`, which `dragedit invert` runs too)."""
        from inversion import PTIConfig

        from .stages import invert_crop

        cfg = config or PTIConfig()
        G, info = self.load_base_generator()
        al_entry = self.manifest.stages.get(L.ALIGN)
        if not al_entry:
            raise UserError(f"session {self.folder} has no alignment yet; run the align stage first")

        def hook(stage: str, step: int) -> None:
            self.on_step(stage, step + 1, cfg.pivot_steps if stage == "pivot" else cfg.tune_steps)

        def compute():
            outputs = invert_crop(G, info, self.alignment().crop, self._rel(L.INVERT), cfg, self.device,
                                  progress=self.progress, warn=self.warn, step_hook=hook if self.on_step else None)
            self._models.pop("tuned", None)
            return outputs, {"generator_path": str(info["path"])}

        return self._cached(L.INVERT, {"aligned": al_entry["outputs"][L.ALIGNED], "generator": info["sha256"]},
                            {**cfg.result_dict(), "compute": compute_signature(self.device)}, compute)

    def tuned(self):
        """(pivot w, tuned generator) of this session's inversion."""
        from inversion import load_inversion

        if "tuned" not in self._models:
            G, info = self.load_base_generator()
            w, Gt = load_inversion(self._rel(L.INVERT), G, info["sha256"])
            self._models["tuned"] = (w.to(self.device), Gt.to(self.device))
        return self._models["tuned"]

    # ---- drag edits ----------------------------------------------------------------------------
    def edit_names(self) -> list[str]:
        return sorted(k for k in self.manifest.stages if L.is_edit(k))

    def _resolve_from(self, spec: str | int | None, option: str = "--from") -> str:
        if spec in (None, "latest"):
            names = self.edit_names()
            return names[-1] if names else L.PIVOT_STAGE
        if str(spec) == L.PIVOT_STAGE:
            return L.PIVOT_STAGE
        spec = str(spec).removeprefix(L.EDITS + "/")
        name = L.edit_stage(int(spec)) if spec.isdigit() else None
        if not name or name not in self.manifest.stages:
            raise UserError(f"{option} {spec}: no such edit; `dragedit history {self.folder}` lists them"
                            + (", or use 'pivot'" if option == "--from" else ""))
        return name

    def _parent_ws(self, parent: str) -> tuple[torch.Tensor, str]:
        from safetensors.torch import load_file

        path = self._rel(L.INVERT_PIVOT) if parent == L.PIVOT_STAGE else self._rel(parent, L.EDIT_WS)
        return load_file(str(path))["w"].to(self.device), file_sha256(path)

    def drag(self, requests: list[EditRequest], *, config=None, from_spec: str | int | None = None,
             callback: Callable | None = None) -> list[str]:
        """Run the edits in order (`config`: a DragConfig), each from the previous one; re-running the same
        request reuses its edits."""
        from draggan import DragConfig

        cfg = config or DragConfig()
        al = self.alignment()
        requests = [r.resolved(al.landmarks) for r in requests]  # anchors -> this face's photo pixels
        _, Gt = self.tuned()
        try:
            cfg.feature_block_for(list(Gt.synthesis.block_resolutions))
        except ValueError as exc:
            raise UserError(f"invalid drag settings: {exc}") from None
        inv = self.manifest.stages[L.INVERT]
        req_id = stable_hash([self.manifest.stages[L.ALIGN]["key"], inv["key"], [r.to_dict() for r in requests],
                              [file_sha256(r.mask) if r.mask else None for r in requests], cfg.to_dict(),
                              str(from_spec)])
        earlier = {e.get("request_index"): name for name, e in self.manifest.stages.items()
                   if L.is_edit(name) and e.get("request") == req_id}
        parent = (self.manifest.stages[earlier[0]]["inputs"]["parent"] if 0 in earlier
                  else self._resolve_from(from_spec))
        done = []
        for i, req in enumerate(requests):
            ws0, ws_sha = self._parent_ws(parent)
            inputs = {"parent": parent, "parent_ws": ws_sha, "delta": inv["outputs"][L.INVERT_DELTA],
                      "alignment": self.manifest.stages[L.ALIGN]["outputs"][L.ALIGNMENT],
                      "mask": file_sha256(req.mask) if req.mask else None}
            params = {"drags_photo": [list(d) for d in req.drags], "drag": cfg.to_dict(),
                      "compute": compute_signature(self.device)}
            name = earlier.get(i) or self._next_edit_name()
            self._cached(name, inputs, params,
                         lambda: (self._run_edit(name, parent, req, ws0, Gt, cfg, al, callback),
                                  {"request": req_id, "request_index": i}))
            done.append(name)
            parent = name
        return done

    def check_requests(self, requests: list[EditRequest]) -> None:
        """Every point and mask of `requests` fits the aligned face (one-line errors before any long work)."""
        al = self.alignment()
        for req in (r.resolved(al.landmarks) for r in requests):
            points_to_crop(req.drags, al.photo_size, al.photo_to_crop, al.crop_size)
            if req.mask:
                mask_to_crop(req.mask, al.photo_size, al.crop_to_photo, al.crop_size)

    def _next_edit_name(self) -> str:
        """Numbered from committed edits only: a folder a killed run left behind is untrusted and overwritten."""
        nums = [L.edit_number(n) for n in self.edit_names()]
        return L.edit_stage(max(nums + [0]) + 1)

    def _run_edit(self, name: str, parent: str, req: EditRequest, ws0: torch.Tensor, Gt, cfg, al,
                  callback: Callable | None) -> list[Path]:
        """One drag with its artifacts written; returns their paths."""
        from safetensors.torch import save_file
        from tqdm import tqdm

        from draggan import DragDiverged, drag

        handles, targets = points_to_crop(req.drags, al.photo_size, al.photo_to_crop, al.crop_size)
        mask = mask_to_crop(req.mask, al.photo_size, al.crop_to_photo, al.crop_size) if req.mask else None
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
        atomic.write_with(folder / L.EDIT_WS, lambda tmp: save_file({"w": ws}, str(tmp)))
        save_image(tensor_to_uint8(res.image), folder / L.EDIT_CROP)
        outputs = [folder / L.EDIT_WS, folder / L.EDIT_CROP]
        if mask is not None:
            save_image(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), folder / L.EDIT_MASK)
            outputs.append(folder / L.EDIT_MASK)
        info = {"parent": parent, "drags_photo": [list(d) for d in req.drags], **req.extra,
                "handles_crop": handles,
                "targets_crop": targets, "final_points_crop": res.points,
                "final_points_photo": map_points(al.crop_to_photo, res.points).tolist(),
                "steps": res.steps, "stopped_by": res.stopped_by, "mean_distance_crop": res.mean_distance,
                "handles": handle_report(handles, targets, res), "events": res.events,
                "trajectory": res.trajectory, "mask": bool(mask is not None), "config": cfg.to_dict(),
                "feature_block_used": cfg.feature_block_for(list(Gt.synthesis.block_resolutions)),
                "radii_px": list(cfg.radii_for(Gt.img_resolution))}
        atomic.write_json(folder / L.EDIT_INFO, info)
        return outputs + [folder / L.EDIT_INFO]

    # ---- composite -----------------------------------------------------------------------------
    def composite(self, edit: str | int | None, output: str | os.PathLike, *, config: CompositeConfig | None = None,
                  photo_path: str | os.PathLike | None = None, overwrite: bool = False) -> CompositeResult:
        """Paste edit `edit` (default: the latest) into the photo and write `output`, never over the photo
        itself unless `overwrite` (then the original is kept as PHOTO.orig)."""
        from .originals import guard_original

        cfg = config or CompositeConfig()
        check_writable(output)
        photo_path = self._photo_path(photo_path)
        backup = guard_original(output, photo_path, overwrite)
        name, result, entry = self.composited(edit, config=cfg, photo_path=photo_path)
        photo = self._photo
        if photo.bits > 8:
            self.warn(f"note: {photo_path.name} has 16 bits per channel; {Path(output).name} is written with 8")
        if photo.alpha is not None and output_format(output) == "JPEG":
            self.warn(f"note: JPEG has no transparency; {Path(output).name} is flattened onto white (use .png to keep it)")
        save_image(result, output, exif=photo.exif, icc_profile=photo.icc_profile, **photo.jpeg_settings(output))
        if backup is not None:
            self.warn(f"note: overwrote {photo_path}; the original is kept as {backup}")
        return CompositeResult(name, str(output), cfg.paste, int(entry.get("changed_pixels", 0)), entry.get("bbox"),
                               str(backup) if backup else None)

    def _photo_path(self, photo_path: str | os.PathLike | None) -> Path:
        """The session's original photo (or `photo_path`, if it moved), checked against the hash it was aligned from."""
        al_entry = self.manifest.stages[L.ALIGN]
        path = Path(photo_path or al_entry["photo_path"])
        if not path.is_file() or file_sha256(path) != al_entry["inputs"]["photo"]:
            raise UserError(f"the session's photo {path} is missing or changed; pass the original photo")
        return path

    def composited(self, edit: str | int | None = None, *, config: CompositeConfig | None = None,
                   photo_path: str | os.PathLike | None = None) -> tuple[str, np.ndarray, dict[str, Any]]:
        """The composite stage for `edit` (run or reused), without writing an output file:
        (edit stage name, the edited full-resolution photo's pixels, the stage's manifest entry)."""
        cfg = config or CompositeConfig()
        name = self._resolve_from(edit, "--edit")
        if name == L.PIVOT_STAGE:
            raise UserError("nothing to composite: the session has no edits yet")
        photo_path = self._photo_path(photo_path)
        al_entry = self.manifest.stages[L.ALIGN]
        e = self.manifest.stages[name]
        inputs = {"photo": al_entry["inputs"]["photo"], "edit": e["outputs"][L.out(name, L.EDIT_CROP)],
                  "edit_info": e["outputs"][L.out(name, L.EDIT_INFO)],
                  "reconstruction": self.manifest.stages[L.INVERT]["outputs"][L.INVERT_RECON],
                  "alignment": al_entry["outputs"][L.ALIGNMENT]}
        if self._photo is None or self._photo.path != photo_path:
            self._photo = load_photo(photo_path)
        out_png = self._rel(L.composite_file(name, "edit"))
        entry = self._cached(L.composite_stage(name), inputs, cfg.to_dict(),
                             lambda: self._paste(name, self._photo, cfg, out_png))
        with Image.open(out_png) as img:
            return name, np.asarray(img), entry

    def _paste(self, name: str, photo: Photo, cfg: CompositeConfig, out_png: Path) -> tuple[list[Path], dict]:
        """The composite stage's work: the edited photo (and its field and masks) for edit `name`."""
        al = self.alignment()
        edited = np.asarray(Image.open(self._rel(name, L.EDIT_CROP)).convert("RGB"))
        recon = np.asarray(Image.open(self._rel(L.INVERT_RECON)).convert("RGB"))
        lm_crop = map_points(al.photo_to_crop, al.landmarks)
        outputs = [out_png]
        if cfg.paste == "warp":
            info = json.loads(self._rel(name, L.EDIT_INFO).read_text())
            anchors = measured_anchors(info) if info.get("parent") == L.PIVOT_STAGE else []
            region = warp_region(lm_crop, al.inside, cfg, self._edit_chain(name))
            wp = warp_paste(photo.color, al.crop, recon, edited, region, al.photo_to_crop, anchors=anchors,
                            config=cfg, lost=repainted_points(info), drag_lost=info.get("stopped_by") == "lost")
            result, stats = wp.photo, {**wp.stats, "anchors": len(anchors)}
            field_path = self._rel(L.composite_file(name, "field", ".safetensors"))
            arrays = {"field": np.ascontiguousarray(wp.field), "confidence": wp.confidence, "region": region}
            atomic.write_with(field_path, lambda tmp: save_numpy(arrays, str(tmp)))
            gen_path = self._rel(L.composite_file(name, "generated"))
            save_image(np.clip(np.rint(wp.generated * 255), 0, 255).astype(np.uint8), gen_path)
            outputs += [field_path, gen_path]
        else:
            mask = blend_mask(edited, recon, al.inside, lm_crop, cfg)
            result, stats = composite(photo.color, edited, mask, al.photo_to_crop)
            mask_path = self._rel(L.composite_file(name, "mask"))
            save_image(np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8), mask_path)
            outputs.append(mask_path)
        save_image(photo.output_pixels(result), out_png)  # the source's alpha, bit for bit
        return outputs, {"edit": name, **stats}

    def _edit_chain(self, name: str) -> list[tuple[list[list[float]], np.ndarray | None]]:
        """(handles + targets, movable mask or None) in crop pixels of `name` and each edit it was built on."""
        chain = []
        while name != L.PIVOT_STAGE:
            info = json.loads(self._rel(name, L.EDIT_INFO).read_text())
            mask = None
            if info.get("mask") and self._rel(name, L.EDIT_MASK).is_file():
                mask = np.asarray(Image.open(self._rel(name, L.EDIT_MASK)).convert("L"), np.float32) / 255.0
            chain.append((info["handles_crop"] + info["targets_crop"], mask))
            name = info["parent"]
        return chain

    # ---- history -------------------------------------------------------------------------------
    def history(self, names: list[str] | None = None) -> list[HistoryEntry]:
        """Every edit (or those in `names`), oldest first."""
        out = []
        for name in self.edit_names():
            if names is not None and name not in names:
                continue
            try:
                info = json.loads(self._rel(name, L.EDIT_INFO).read_text())
            except (OSError, ValueError):
                info = {}
            out.append(HistoryEntry.from_stage(L.edit_number(name), self.manifest.stages[name], info))
        return out
