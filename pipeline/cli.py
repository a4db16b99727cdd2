"""`dragedit` command line: one subcommand per stage plus model management.

User errors print one line `dragedit: error: ...` and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

from fileio.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from stylegan2 import load_generator

    from fileio.images import check_writable, save_image, tensor_to_uint8

    from .devices import resolve_device
    from .generators import note_if_default, resolve_generator

    check_writable(args.output)
    if not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed {args.seed} is out of range; use a whole number from 0 to {2 ** 32 - 1}")
    if not math.isfinite(args.psi):
        raise UserError(f"--psi {args.psi} is not a finite number; use a value such as 0.7 (1 = no truncation)")
    device = resolve_device(args.device)
    path = resolve_generator(args.generator)
    G = load_generator(path, device=device)
    note_if_default(path)
    z = torch.from_numpy(np.random.RandomState(args.seed).randn(1, G.z_dim)).float().to(device)
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, truncation_psi=args.psi), noise_mode=args.noise_mode)
    save_image(tensor_to_uint8(img), args.output)
    _report(args, {"output": str(args.output), "seed": args.seed, "psi": args.psi}, f"wrote {args.output}")
    return 0


def _cmd_align(args: argparse.Namespace) -> int:
    from .align import AlignConfig, align_photo, write_alignment
    from .photo import load_photo

    _check_face(args)
    photo = load_photo(args.photo)
    al = align_photo(photo, AlignConfig(**_given(size=args.size, face=args.face, face_at=_face_at(args.face_at))))
    paths = write_alignment(al, args.output)
    faces = "\n".join(f"  face {i}: box {[round(v) for v in f['box']]}{'  <- used' if i == al.face_index else ''}"
                       for i, f in enumerate(al.faces))
    _report(args, {"files": {k: str(v) for k, v in paths.items()}, "faces": al.faces, "face_index": al.face_index,
                   "photo_to_crop": al.photo_to_crop.tolist()},
            f"{len(al.faces)} face(s) found:\n{faces}\nwrote {paths['aligned']} and {paths['alignment']}")
    return 0


def _offline(args: argparse.Namespace) -> bool:
    from fileio.environment import offline

    return bool(getattr(args, "offline", False) or offline())


def _given(**values):
    """The options the user gave: argparse defaults are None, so every default comes from a config dataclass."""
    return {k: v for k, v in values.items() if v is not None}


def _check_face(args: argparse.Namespace) -> None:
    face = args.face
    if face is not None and getattr(args, "face_at", None):
        raise UserError("give either --face N or --face-at X,Y, not both")
    if face is not None and face < 0:
        raise UserError(f"--face {face}: faces are numbered from 0 (the largest); use 0 or more")


def _face_at(spec: str | None) -> tuple[float, float] | None:
    """`--face-at X,Y` (photo pixels) -> (x, y)."""
    if spec is None:
        return None
    try:
        x, y = (float(v) for v in spec.split(","))
    except ValueError:
        raise UserError(f"--face-at {spec!r}: write a photo point as X,Y, e.g. 240,180") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UserError(f"--face-at {spec!r}: the coordinates must be finite numbers")
    return x, y


def _add_face_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--face", type=int, help="which face: 0 = largest box on the photo, equal sizes left to right "
                                             "(`dragedit preview PHOTO` numbers them)")
    sp.add_argument("--face-at", metavar="X,Y", help="the face whose box holds this photo point (instead of --face)")


def _pti_config(args: argparse.Namespace):
    from inversion import PTIConfig

    for name in ("pivot_steps", "tune_steps", "checkpoint_every"):
        low = 0 if name == "tune_steps" else 1
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: use a whole number >= {low}")
    if args.seed is not None and not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed {args.seed} is out of range; use a whole number from 0 to {2 ** 32 - 1}")
    try:
        return PTIConfig(**_given(pivot_steps=args.pivot_steps, tune_steps=args.tune_steps, seed=args.seed,
                                  pivot_space="w+" if args.w_plus else None, locality=args.locality,
                                  checkpoint_every=args.checkpoint_every),
                         allow_download=not _offline(args))
    except ValueError as exc:
        raise UserError(f"invalid inversion settings: {exc}") from None


def _cmd_invert(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .stages import run_invert_stage

    device = resolve_device(args.device)
    metrics = run_invert_stage(args.input, args.generator, args.output, _pti_config(args), device,
                               progress=not args.json)
    t, p = metrics["tuned"], metrics["pivot"]
    _report(args, metrics, f"pivot PSNR {p['psnr']:.2f} dB, tuned PSNR {t['psnr']:.2f} dB "
                           f"(losses: {metrics['losses_used']['pivot']}, {metrics['losses_used']['tune']}); "
                           f"wrote {args.output}")
    return 0


def _add_pti_args(sp: argparse.ArgumentParser) -> None:
    from inversion import PTIConfig as P

    sp.add_argument("--pivot-steps", type=int, help=f"W pivot steps (default {P.pivot_steps})")
    sp.add_argument("--tune-steps", type=int, help=f"pivotal tuning steps at most (default {P.tune_steps})")
    sp.add_argument("--w-plus", action="store_true", default=None, help="W+ pivot instead of PTI's W pivot")
    sp.add_argument("--locality", action="store_true", default=None, help="PTI's locality regulariser")
    sp.add_argument("--seed", type=int, help=f"PTI's random seed (default {P.seed})")
    sp.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints (default {P.checkpoint_every})")
    sp.add_argument("--offline", action="store_true", help="never download LPIPS weights (also: DRAGEDIT_OFFLINE=1)")


def _drag_config(args: argparse.Namespace):
    from draggan import DragConfig

    try:
        return DragConfig(**_given(max_steps=args.steps, lr=args.lr, lambda_mask=args.lambda_mask, r1=args.r1,
                                   r2=args.r2, feature_block=args.feature_block, tracking=args.tracking,
                                   stop_distance=args.stop_distance, precision=args.precision))
    except ValueError as exc:
        raise UserError(f"invalid drag settings: {exc}") from None


def _edit_requests(args: argparse.Namespace):
    from .edits import EditRequest, load_edit_file, parse_drag

    if args.edits and args.drag:
        raise UserError("give points either with --drag or with --edits FILE, not both")
    if args.edits:
        return load_edit_file(args.edits)
    if not args.drag:
        raise UserError("no points given: add --drag X1,Y1:X2,Y2 (photo pixels) or --edits FILE")
    if args.mask and not Path(args.mask).is_file():
        raise UserError(f"mask file not found: {args.mask}")
    return [EditRequest([parse_drag(d) for d in args.drag], args.mask)]


def _add_drag_args(sp: argparse.ArgumentParser, points: bool = True) -> None:
    """The drag loop's settings, and (with `points`) where the points come from."""
    from draggan import DragConfig as D

    if points:
        _add_point_args(sp)
    sp.add_argument("--steps", type=int, help=f"maximum drag steps (default {D.max_steps})")
    sp.add_argument("--lr", type=float, help=f"Adam step size (default {D.lr})")
    sp.add_argument("--lambda-mask", type=float, help=f"weight keeping the unmasked region (default {D.lambda_mask})")
    sp.add_argument("--r1", type=float, help=f"motion supervision radius, pixels at 512 (default {D.r1})")
    sp.add_argument("--r2", type=float, help=f"tracking radius, pixels at 512 (default {D.r2})")
    sp.add_argument("--feature-block", type=int,
                    help="generator block whose features drive the drag (default: the one at min(128, R/2) px)")
    sp.add_argument("--tracking", choices=["l1", "l2"], help=f"tracking distance (default {D.tracking})")
    sp.add_argument("--stop-distance", type=float, help="stop within this many pixels (default: the paper's rule)")
    sp.add_argument("--precision", choices=["fp32", "bf16"],
                    help="bf16: the drag's generator forward under bf16 autocast, about 1.5x faster on CPUs "
                         "with AVX512-BF16 or AMX; results differ slightly (default fp32)")


def _add_point_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--drag", action="append", metavar="X1,Y1:X2,Y2",
                    help="move the photo point (X1,Y1) to (X2,Y2), or a landmark by an offset: @mouth_left:-4%%,-8%% "
                         "(pixels, or %% of the eye distance); repeat for several handles")
    sp.add_argument("--mask", help="image of the photo's size: white = region that may move")
    sp.add_argument("--edits", help="JSON edit file for several edits in a row")
    sp.add_argument("--from", dest="from_spec", default=None, help="start from edit N or 'pivot' (default: latest)")


def _add_paste_arg(sp: argparse.ArgumentParser) -> None:
    """--paste and --overwrite: how the edit reaches the output photo, and whether it may replace the input."""
    sp.add_argument("--paste", choices=["warp", "generated"],
                    help="warp: move the photo's own pixels along the generator's motion (default); "
                         "generated: paste the generator's pixels")
    sp.add_argument("--overwrite", action="store_true",
                    help="allow -o to be the input photo (the original is kept as PHOTO.orig)")


def _add_run_args(sp: argparse.ArgumentParser, generator_help: str | None = None) -> None:
    """--generator, --device and --json, shared by every command that runs a generator."""
    sp.add_argument("--generator", help=generator_help or "checkpoint (.pkl, .pt, .safetensors); default: the embedded one")
    sp.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    sp.add_argument("--threads", type=int, help="CPU threads for torch and OpenCV (default: $DRAGEDIT_THREADS, else "
                                                "the cores available, at most 16); results depend on it, so "
                                                "sessions cache per thread count")
    sp.add_argument("--json", action="store_true", help="print a machine-readable result")


def _session_dir(args: argparse.Namespace) -> Path:
    if args.session:
        return Path(args.session)
    return Path(args.output).parent / f"{Path(args.photo).stem}.dragedit"


def _cmd_edit(args: argparse.Namespace) -> int:
    from .api import edit_photo
    from .devices import resolve_device

    _check_face(args)
    requests = _edit_requests(args)
    result = edit_photo(args.photo, requests, args.output, _session_dir(args), generator=args.generator,
                        pti_config=_pti_config(args), drag_config=_drag_config(args), from_spec=args.from_spec,
                        composite_config=_composite_config(args), device=resolve_device(args.device),
                        progress=not args.json, face=args.face or 0, face_at=_face_at(args.face_at),
                        overwrite=args.overwrite)
    lines = [_edit_line(name, h) for name, h in zip(result.edits, result.history)]
    stages = ", ".join(f"{k} {v}" for k, v in result.stages.items())
    _report(args, result.to_dict(),
            "\n".join(lines + [f"stages: {stages}", f"wrote {args.output} (session {result.session})"]))
    return 0


def _edit_line(name: str, h) -> str:
    """One edit's summary: the handle distances measured independently (LK on the renders), not the tracker's."""
    where = ", ".join(f"{d:.1f}" if d is not None else "?" for d in h.measured_distances)
    lost = sum(h.lost)
    return (f"{name}: {h.steps} steps, stopped by {h.stopped_by}; handles {where or '?'} crop px from their "
            f"targets (measured on the renders)" + (f"; {lost} handle(s) lost by the tracker" if lost else ""))


def _composite_config(args: argparse.Namespace):
    from .composite import CompositeConfig

    return CompositeConfig(**_given(paste=args.paste))


def _cmd_drag(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .session import Session

    requests = _edit_requests(args)
    with Session(args.session, generator=args.generator, device=resolve_device(args.device),
                 progress=not args.json) as s:
        if not s.inverted:
            raise UserError(f"session {args.session} has no inversion yet; run `dragedit edit` or `dragedit invert` first")
        names = s.drag(requests, config=_drag_config(args), from_spec=args.from_spec)
        hist = s.history(names)
    _report(args, {"edits": names, "history": [h.to_dict() for h in hist]},
            "\n".join(_edit_line(n, h) for n, h in zip(names, hist)))
    return 0


def _cmd_composite(args: argparse.Namespace) -> int:
    from fileio.images import check_writable
    from .session import Session

    check_writable(args.output)
    with Session(args.session, progress=False) as s:
        if not s.edit_names():
            raise UserError(f"session {args.session} has no edits to composite")
        res = s.composite(args.edit, args.output, config=_composite_config(args), photo_path=args.photo,
                          overwrite=args.overwrite)
    _report(args, res.to_dict(), f"wrote {args.output} ({res.edit})")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from .session import Session

    with Session(args.session, progress=False, read_only=True) as s:  # reads only: allowed while a run holds it
        hist = s.history()
    text = "\n".join(f"edit {h.edit:03d} from {h.parent}: drags {h.drags} -> handles "
                     f"{[[round(v, 1) for v in p] for p in (h.final_points or [])]}, {h.steps} steps "
                     f"({h.stopped_by})" for h in hist) or "no edits yet"
    _report(args, [h.to_dict() for h in hist], text)
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from fileio.images import check_writable, save_image

    from . import layout as L
    from .preview import edit_preview, photo_preview
    from .session import Session, is_session_folder

    check_writable(args.output)
    target = Path(args.target)
    if target.is_dir():
        if not is_session_folder(target):
            raise UserError(f"{target} is neither a photo nor a dragedit session folder")
        with Session(target, progress=False) as s:
            name, edited, _ = s.composited(args.edit)
            info = json.loads((target / name / L.EDIT_INFO).read_text())
            picture = edit_preview(s.photo.color, edited[..., :3], info["drags_photo"], info["final_points_photo"],
                                   s.alignment().face_box)
            _not_the_photo(args.output, s.photo.path)
        save_image(picture, args.output)
        _report(args, {"output": str(args.output), "edit": name}, f"wrote {args.output} ({name}: original | edited)")
        return 0
    if args.edit is not None:
        raise UserError("--edit needs a session folder, not a photo")
    from .align import FACE_ORDER, AlignConfig, find_faces
    from .photo import load_photo

    _not_the_photo(args.output, target)
    photo = load_photo(target)
    faces = find_faces(photo.pixels, AlignConfig())
    save_image(photo_preview(photo.color, faces), args.output)
    lines = [f"  --face {i}: box {[round(v) for v in f['box']]}" for i, f in enumerate(faces)]
    _report(args, {"output": str(args.output), "faces": faces, "order": FACE_ORDER},
            f"{len(faces)} face(s), {FACE_ORDER}:\n" + "\n".join(lines) + f"\nwrote {args.output}")
    return 0


def _not_the_photo(output, photo) -> None:
    """A preview is never written over the photo it shows."""
    from .originals import same_file

    if same_file(output, photo):
        raise UserError(f"the preview {output} would replace the photo {photo}; choose another output path")


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import BatchConfig, run_batch
    from .devices import resolve_device
    from .edits import load_edit_file

    if args.face == "all":
        face: int | str = "all"
    else:
        try:
            face = int(args.face)
        except ValueError:
            raise UserError(f"--face {args.face}: use a face number (0 = largest) or 'all'") from None
    cfg = BatchConfig(**_given(workers=args.workers, backend=args.backend, address=args.address,
                               gpus_per_photo=args.gpus_per_photo, threads=args.threads), face=face)
    requests = load_edit_file(args.edits)
    device = str(resolve_device(args.device)) if args.device != "auto" or args.backend != "ray" else "auto"

    def say(row) -> None:
        if not args.json and row.status != "done":
            from tqdm import tqdm

            tqdm.write(f"{row.status}: {row.photo}" + (f" (face {row.face})" if row.face is not None else "")
                       + f": {row.reason}")

    res = run_batch(args.inputs, requests, args.output, config=cfg, generator=args.generator,
                    pti_config=_pti_config(args), drag_config=_drag_config(args),
                    composite_config=_composite_config(args), device=device, progress=not args.json, on_row=say)
    c = res.counts()
    _report(args, res.to_dict(), f"{c['done']} done, {c['skipped']} skipped, {c['failed']} failed in "
                                 f"{res.seconds:.0f} s; summary {res.summary_json} and {res.summary_csv}")
    return 1 if c["failed"] else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .server import ServeConfig, serve

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: use a port from 1 to 65535")
    if args.max_upload_mb is not None and args.max_upload_mb <= 0:
        raise UserError(f"--max-upload-mb {args.max_upload_mb}: use a positive size")
    cfg = ServeConfig(**_given(root=args.root, host=args.host, port=args.port, generator=args.generator,
                               token=args.token, max_upload_mb=args.max_upload_mb),
                      device=str(resolve_device(args.device)), pti_config=_pti_config(args),
                      drag_config=_drag_config(args), composite_config=_composite_config(args))
    serve(cfg)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from stylegan2 import zoo

    try:
        reg = zoo.load_registry(args.registry)
        cache = Path(args.cache_dir) if args.cache_dir else None
        if args.models_cmd == "list":
            rows = []
            for e in reg.values():
                p = zoo.model_path(e, cache)
                rows.append({"name": e.name, "resolution": e.resolution, "downloaded": p.exists(), "path": str(p),
                             "url": e.url, "sha256": e.sha256, "description": e.description})
            text = "\n".join(f"{r['name']:<26} {r['resolution']:>5}px  {'downloaded' if r['downloaded'] else '-':<10}"
                             f"  {r['description']}" for r in rows)
            _report(args, rows, text)
            return 0
        if args.name not in reg:
            raise UserError(f"unknown model {args.name!r}; `dragedit models list` shows the known ones")
        entry = reg[args.name]
        if args.models_cmd == "path":
            _report(args, {"name": entry.name, "path": str(zoo.model_path(entry, cache))}, str(zoo.model_path(entry, cache)))
            return 0
        path = zoo.download(entry, cache, sha256=args.sha256, progress=not args.json)
        _report(args, {"name": entry.name, "path": str(path)}, f"{entry.name}: {path}")
        return 0
    except zoo.DownloadError as exc:
        raise UserError(str(exc)) from None


def _report(args: argparse.Namespace, payload, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2))
    else:
        print(text)


def build_parser() -> argparse.ArgumentParser:
    from .align import AlignConfig

    p = argparse.ArgumentParser(prog="dragedit", description="Edit portrait photos by dragging points (DragGAN + PTI).")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="render one image from a generator")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--psi", type=float, default=0.7, help="truncation psi")
    g.add_argument("--noise-mode", default="const", choices=["const", "none", "random"])
    g.add_argument("-o", "--output", required=True)
    _add_run_args(g)
    g.set_defaults(func=_cmd_generate)

    a = sub.add_parser("align", help="find the face and write its FFHQ-aligned crop and transform")
    a.add_argument("photo")
    a.add_argument("-o", "--output", required=True, help="output folder")
    a.add_argument("--size", type=int, help=f"crop size = the generator's resolution (default {AlignConfig.size})")
    _add_face_args(a)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_cmd_align)

    i = sub.add_parser("invert", help="PTI: W pivot + generator tuning for an aligned crop (resumable)")
    i.add_argument("input", help="an align output folder or a square image at the generator's resolution")
    i.add_argument("-o", "--output", required=True, help="output folder (holds the checkpoint while running)")
    _add_run_args(i)
    _add_pti_args(i)
    i.set_defaults(func=_cmd_invert)

    e = sub.add_parser("edit", help="photo -> edited photo: every stage that is needed (cached, resumable)")
    e.add_argument("photo")
    e.add_argument("-o", "--output", required=True, help="edited photo (.jpg or .png)")
    e.add_argument("--session", help="session folder (default: OUTPUT_DIR/PHOTO_STEM.dragedit)")
    _add_face_args(e)
    _add_paste_arg(e)
    _add_run_args(e, "checkpoint; default: the session's, else the embedded one")
    _add_drag_args(e)
    _add_pti_args(e)
    e.set_defaults(func=_cmd_edit)

    d = sub.add_parser("drag", help="add drag edit(s) to a session that has an inversion")
    d.add_argument("session")
    _add_run_args(d, "checkpoint; default: the session's")
    _add_drag_args(d)
    d.set_defaults(func=_cmd_drag)

    c = sub.add_parser("composite", help="paste a session's edit into the full-resolution photo")
    c.add_argument("session")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--edit", default=None, help="edit number (default: latest)")
    c.add_argument("--photo", help="the original photo, if it moved since the session was made")
    _add_paste_arg(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cmd_composite)

    h = sub.add_parser("history", help="list a session's edits")
    h.add_argument("session")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=_cmd_history)

    pv = sub.add_parser("preview", help="PHOTO: its faces, landmarks and a pixel grid; SESSION: an edit's "
                                        "arrows with original | edited")
    pv.add_argument("target", help="a photo, or a session folder")
    pv.add_argument("-o", "--output", required=True, help="the picture to write (.png or .jpg)")
    pv.add_argument("--edit", default=None, help="with a session: edit number (default: latest)")
    pv.add_argument("--json", action="store_true")
    pv.set_defaults(func=_cmd_preview)

    b = sub.add_parser("batch", help="apply an edit file to many photos: one resumable session per photo")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="photos, folders or globs")
    b.add_argument("--edits", required=True, help="JSON edit file; anchored drags (@mouth_left:-4%%,-8%%) fit any face")
    b.add_argument("-o", "--output", required=True, help="output folder: sessions, edited photos, batch.json/.csv")
    b.add_argument("--face", default="0", help="face number (0 = largest) or 'all': one session per face")
    b.add_argument("--workers", type=int, help="photos at once, each with cores/workers threads (default 1)")
    b.add_argument("--backend", choices=["local", "ray"], help="local processes (default) or a Ray cluster")
    b.add_argument("--address", help="Ray cluster address (default: a running or new local instance)")
    b.add_argument("--gpus-per-photo", type=float, help="Ray: GPUs each photo's task asks for (default 0)")
    _add_paste_arg(b)
    _add_run_args(b)
    for action in b._actions:
        if action.dest == "threads":
            action.help = "threads per worker (default: the cores available / workers)"
    _add_drag_args(b, points=False)
    _add_pti_args(b)
    b.set_defaults(func=_cmd_batch, overwrite=False)

    from .server import ServeConfig as W

    sv = sub.add_parser("serve", help="the web editor and HTTP API (pip install 'dragedit[web]')")
    sv.add_argument("--host", default=W.host, help=f"address to listen on (default {W.host}; any other host "
                                                   "requires the token printed in the start URL)")
    sv.add_argument("--port", type=int, default=W.port, help=f"port (default {W.port})")
    sv.add_argument("--root", help=f"folder holding the sessions (default ./{W.root})")
    sv.add_argument("--token", help="the access token (default: random on a non-local host, none on localhost)")
    sv.add_argument("--max-upload-mb", type=float, help=f"largest photo upload (default {W.max_upload_mb:g} MB)")
    _add_paste_arg(sv)
    _add_run_args(sv)
    _add_drag_args(sv, points=False)
    _add_pti_args(sv)
    sv.set_defaults(func=_cmd_serve)

    m = sub.add_parser("models", help="list or download known public checkpoints")
    m.add_argument("--registry", help="JSON file adding or overriding entries (mirrors, known hashes)")
    m.add_argument("--cache-dir", help="where models live (default: $DRAGEDIT_HOME/models or ~/.cache/dragedit/models)")
    m.add_argument("--json", action="store_true")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    msub.add_parser("list")
    for name in ("download", "path"):
        sp = msub.add_parser(name)
        sp.add_argument("name")
        if name == "download":
            sp.add_argument("--sha256", help="expected SHA-256 of the file")
    m.set_defaults(func=_cmd_models, sha256=None)
    return p


def _log_to_stderr() -> None:
    """dragedit's warnings and notes, as plain lines on stderr (they carry their own 'warning:'/'note:')."""
    import logging

    from fileio.environment import log

    class CurrentStderr(logging.StreamHandler):
        """Writes to whatever sys.stderr is at the time (tests and embedding tools swap it)."""

        @property
        def stream(self):
            return sys.stderr

        @stream.setter
        def stream(self, value) -> None:
            pass

    if not any(type(h).__name__ == "CurrentStderr" for h in log.handlers):
        handler = CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _set_threads(args: argparse.Namespace, share) -> None:
    """This process's torch/OpenCV threads: `--threads`, else its share of the cores among the dragedit
    processes running now (a batch gives its workers their own)."""
    from fileio.threads import default_threads, use_threads

    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: use 1 or more")
    if "threads" in args and args.command != "batch":
        use_threads(threads or default_threads(share.running()))


def main(argv: list[str] | None = None) -> int:
    from stylegan2 import CheckpointError

    from fileio.threads import CoreShare

    parser = build_parser()
    args = parser.parse_args(argv)
    _log_to_stderr()
    try:
        with CoreShare() as share:
            _set_threads(args, share)
            return args.func(args)
    except (UserError, CheckpointError) as exc:
        print(f"dragedit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dragedit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
