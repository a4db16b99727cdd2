"""Option groups by concern, each added only to the commands it acts on, and the one translation of parsed
options into the core's settings (`settings_from`). argparse defaults are None: every default comes from
the config dataclasses, and help texts read them from there.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import MISSING, fields, replace
from typing import Any

from dragedit.common.errors import FieldError, UserError

# the core's field names -> this command line's flags, where they differ from --field-name
FLAGS = {"seed": "--pti-seed", "max_steps": "--steps", "drags": "--drag", "from": "--from", "photo": "PHOTO",
         "edit": "--edit",
         "session": "--session", "until": "the command", "max_resolution": "--invert-resolution"}


def whole(text: str) -> int:
    """An argparse type: a whole number in ASCII digits (int() would take '١' as 1)."""
    body = text[1:] if text[:1] in "+-" else text
    if not (body.isascii() and body.isdigit()):
        raise argparse.ArgumentTypeError(f"{text} is not a whole number")
    return int(text)


def number(text: str) -> float:
    """An argparse type: a finite number in ASCII (1e309 is not taken as inf, nor 'nan' as a number)."""
    try:
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def flag(field: str) -> str:
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def worded(exc: UserError) -> str:
    """A core error in this command line's words (its flags for the fields it names)."""
    return exc.worded(flag(exc.field)) if isinstance(exc, FieldError) else str(exc)


def default(config: type, name: str) -> Any:
    """A config dataclass's default for `name` (for help texts; the value itself comes from the dataclass)."""
    f = next(f for f in fields(config) if f.name == name)
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave."""
    return {k: v for k, v in values.items() if v is not None}


# ---- the groups ------------------------------------------------------------------------------------------
def add_output(p: argparse.ArgumentParser, what: str, *, overwrite: bool = False, required: bool = True) -> None:
    g = p.add_argument_group("output")
    g.add_argument("-o", "--output", required=required, help=what)
    if overwrite:
        g.add_argument("--overwrite", action="store_true",
                       help="allow -o to be the input photo (the original is kept as PHOTO.orig), and, "
                            "with -o left out, replace an existing PHOTO_edited")
    add_json(g)


def add_json(p) -> None:
    p.add_argument("--json", action="store_true", help="print one machine-readable JSON document on stdout")


def add_compute(p: argparse.ArgumentParser, generator_help: str = "checkpoint (.pkl, .pt, .safetensors); default: "
                                                                  "the session's, else the embedded one") -> None:
    from dragedit.pipeline.core.runtime import DEVICES
    from dragedit.pipeline.core.settings import EditSettings

    g = p.add_argument_group("compute")
    g.add_argument("--generator", help=generator_help)
    g.add_argument("--device", choices=DEVICES, help=f"default {default(EditSettings, 'device')}")
    g.add_argument("--threads", type=whole, help="CPU threads for torch and OpenCV; default: the count the session "
                                               "first computed with, else this process's share of the cores "
                                               "($DRAGEDIT_THREADS fixes it). Results depend on it")


def add_face(p: argparse.ArgumentParser, every: bool = False) -> None:
    g = p.add_argument_group("face")
    g.add_argument("--face", help="which face: 0 = largest box, equal sizes left to right (`dragedit preview PHOTO` numbers "
                        "them); default: the session's, else 0" + ("; 'all': every face, one session each, one "
                                                                   "output" if every else ""))
    g.add_argument("--face-at", metavar="X,Y", help="the face whose box holds this photo point (instead of --face)")


def add_points(p: argparse.ArgumentParser, presets: bool = True) -> None:
    g = p.add_argument_group("points")
    g.add_argument("--drag", action="append", metavar="X1,Y1:X2,Y2",
                   help="move the photo point (X1,Y1) to (X2,Y2), or a landmark by an offset: @mouth_left:-4%%,-8%% "
                        "(pixels, or %% of the eye distance); repeat for several handles")
    g.add_argument("--mask", help="with --drag: image of the photo's size, white = the region that may move")
    g.add_argument("--edits", help="JSON edit file for several edits in a row (masks go in the file)")
    if presets:
        g.add_argument("--preset", help="a named edit (`dragedit presets` lists them), instead of --drag")
        g.add_argument("--strength", type=number, help="with --preset: how far, 0 = no edit, 1 = as shipped (default), "
                                                      "up to 2")
        g.add_argument("--mask-region", help="the movable region by face region: mouth, eyes, brows, nose, jaw or "
                                             "face (instead of --mask; a preset has its own)")
    g.add_argument("--from", dest="from_spec", help="start from edit N or 'pivot' (default: the latest edit)")


def add_drag(p: argparse.ArgumentParser) -> None:
    from dragedit.draggan.config import DragConfig as D

    g = p.add_argument_group("drag")
    g.add_argument("--steps", type=whole, help=f"maximum drag steps (default {default(D, 'max_steps')})")
    g.add_argument("--lr", type=number, help=f"Adam step size (default {default(D, 'lr')})")
    g.add_argument("--lambda-mask", type=number,
                   help=f"weight keeping the unmasked region (default {default(D, 'lambda_mask')})")
    g.add_argument("--r1", type=number, help=f"motion supervision radius, pixels at 512 (default {default(D, 'r1')})")
    g.add_argument("--r2", type=number, help=f"tracking radius, pixels at 512 (default {default(D, 'r2')})")
    g.add_argument("--feature-block", type=whole,
                   help="generator block whose features drive the drag (default: the one at min(128, R/2) px)")
    g.add_argument("--tracking", choices=["l1", "l2"], help=f"tracking distance (default {default(D, 'tracking')})")
    g.add_argument("--stop-distance", type=number, help="stop within this many pixels (default: the paper's rule)")
    g.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: the drag's generator forward under bf16 autocast, faster on CPUs with AVX512-BF16 "
                        f"or AMX (elsewhere it runs fp32, said in a note); results differ slightly (default "
                        f"{default(D, 'precision')})")


def add_pti(p: argparse.ArgumentParser) -> None:
    from dragedit.inversion.config import PTIConfig as P

    g = p.add_argument_group("inversion (PTI)")
    g.add_argument("--pivot-steps", type=whole, help=f"W pivot steps at most (default: the session's, else "
                                                   f"{default(P, 'pivot_steps')}; likewise below)")
    g.add_argument("--tune-steps", type=whole, help=f"pivotal tuning steps at most (default {default(P, 'tune_steps')})")
    g.add_argument("--w-plus", action="store_true", default=None, help="W+ pivot instead of PTI's W pivot")
    g.add_argument("--locality", action="store_true", default=None, help="PTI's locality regulariser")
    g.add_argument("--pti-seed", type=whole, help=f"PTI's random seed (default {default(P, 'seed')})")
    g.add_argument("--invert-resolution", type=whole, metavar="PX",
                   help="invert and tune a larger generator only up to this many pixels: the warp paste needs only "
                        "its motion (0: its full resolution, as --paste generated always uses; default "
                        f"{default(P, 'max_resolution')})")
    g.add_argument("--invert-precision", choices=["fp32", "bf16"],
                   help="bf16: PTI's generator forward under bf16 autocast, about 1.5x faster on CPUs with "
                        "AVX512-BF16 or AMX (elsewhere it runs fp32, said in a note); results differ slightly "
                        f"(default {default(P, 'precision')})")
    g.add_argument("--checkpoint-every", type=whole,
                   help=f"steps between checkpoints (default {default(P, 'checkpoint_every')})")
    g.add_argument("--offline", action="store_true", help="never download LPIPS weights (also: DRAGEDIT_OFFLINE=1)")


def add_paste(p: argparse.ArgumentParser) -> None:
    from dragedit.pipeline.imaging.paste import PASTE_MODES, CompositeConfig

    p.add_argument_group("paste").add_argument(
        "--paste", choices=PASTE_MODES, help="warp: move the photo's own pixels along the generator's motion; "
                                             "generated: paste the generator's pixels "
                                             f"(default {default(CompositeConfig, 'paste')})")


# ---- parsed options -> the core's objects ----------------------------------------------------------------
def settings_from(args: argparse.Namespace):
    """An EditSettings from whichever groups the command has; bad values are one-line errors naming the flag."""
    from dragedit.pipeline.core.settings import EditSettings

    from dragedit.common.environment import offline

    parts: dict[str, Any] = given(generator=getattr(args, "generator", None), device=getattr(args, "device", None),
                                  threads=getattr(args, "threads", None))
    if hasattr(args, "pivot_steps"):
        parts["offline"] = bool(args.offline or offline())
        if any(getattr(args, k) is not None for k in PTI_FLAGS):  # else: the session's PTI settings
            parts["pti"] = _pti(args)
    if hasattr(args, "steps"):
        parts["drag"] = _config("drag", "draggan.config", "DragConfig", max_steps=args.steps, lr=args.lr,
                                lambda_mask=args.lambda_mask, r1=args.r1, r2=args.r2, feature_block=args.feature_block,
                                tracking=args.tracking, stop_distance=args.stop_distance, precision=args.precision)
    if getattr(args, "paste", None) is not None:  # else: as the edit's composite was made, or the defaults
        parts["composite"] = _config("paste", "pipeline.imaging.paste", "CompositeConfig", paste=args.paste)
    return EditSettings(**parts)


PTI_FLAGS = ("pivot_steps", "tune_steps", "w_plus", "locality", "pti_seed", "checkpoint_every", "invert_resolution",
             "invert_precision")


def _pti(args: argparse.Namespace):
    cap = args.invert_resolution
    pti = _config("inversion", "inversion.config", "PTIConfig", pivot_steps=args.pivot_steps,
                  tune_steps=args.tune_steps, seed=args.pti_seed, pivot_space="w+" if args.w_plus else None,
                  locality=args.locality, checkpoint_every=args.checkpoint_every, precision=args.invert_precision,
                  max_resolution=cap or None)  # None (not given, or 0) keeps the default here ...
    return replace(pti, max_resolution=None) if cap == 0 else pti  # ... and 0 is the full resolution


def _config(what: str, module: str, name: str, **values: Any):
    """A stage config from the flags given (defaults for the rest); its own checks name the field, worded here
    as the flag."""
    import importlib

    return config_of(getattr(importlib.import_module(f"dragedit.{module}"), name), **values)


def config_of(cls: type, **values: Any):
    """A config dataclass from the options given (defaults for the rest), its errors worded as flags."""
    try:
        return cls(**given(**values))
    except FieldError as exc:
        raise UserError(worded(exc)) from None


def face(args: argparse.Namespace, every: bool = False) -> int | str | None:
    """`--face N` (or 'all' where `every`), checked with `--face-at` by the core's one rule."""
    from dragedit.pipeline.imaging.faces import face_number

    try:
        return face_number(args.face, getattr(args, "face_at", None), every=every)
    except FieldError as exc:
        raise UserError(worded(exc)) from None


def face_at(spec: str | None) -> tuple[float, float] | None:
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


def requests_from(args: argparse.Namespace) -> list:
    """The edits asked for: --drag (with --mask or --mask-region), --preset, or --edits FILE; one of them. The
    request's own rules are `EditRequest.build`'s, worded here with this command line's flags."""
    from pathlib import Path

    from dragedit.pipeline.core.requests import EditRequest, load_edit_file

    preset, strength = getattr(args, "preset", None), getattr(args, "strength", None)
    region = getattr(args, "mask_region", None)
    given_ = [name for name, v in (("--drag", args.drag), ("--edits", args.edits), ("--preset", preset)) if v]
    if len(given_) > 1:
        raise UserError(f"give points one way: {' or '.join(given_)}, not both")
    if args.edits:
        if args.mask or region:
            raise UserError("--mask and --mask-region go with --drag or --preset; with --edits FILE, put \"mask\" "
                            "or \"mask_region\" in the file's edits")
        if strength is not None:
            raise UserError("--strength goes with --preset; with --edits FILE, put \"strength\" in the file's edits")
        return load_edit_file(args.edits)
    if not args.drag and not preset and strength is None:
        raise UserError("no points given: add --drag X1,Y1:X2,Y2 (photo pixels), --preset NAME or --edits FILE")
    if args.mask and not Path(args.mask).is_file():
        raise UserError(f"mask file not found: {args.mask}")
    try:
        return [EditRequest.build(drags=args.drag, mask=args.mask, mask_region=region, preset=preset,
                                  strength=strength)]
    except FieldError as exc:
        raise UserError(worded(exc).replace("--drag: malformed drag", "malformed --drag", 1)) from None


def report(args: argparse.Namespace, payload: Any, text: str) -> None:
    """The command's result: one JSON document with --json, else the text."""
    import json

    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2), file=getattr(args, "stdout", sys.stdout))
    else:
        print(text)
