"""dragedit: edit real portrait photos by dragging points (dlib alignment, PTI, DragGAN, compositing).

The library entry is this package: `from dragedit import edit_photo, Session, EditRequest, ...` (see
`dragedit.pipeline.api`). The names load on first use, so `import dragedit` (and the `dragedit --help`
that imports it) starts no torch. The parts live in sub-packages: `dragedit.common` (the ground floor),
`dragedit.stylegan2`, `dragedit.inversion`, `dragedit.draggan` (the models) and `dragedit.pipeline`
(photos, sessions and the front ends).
"""
from __future__ import annotations

try:
    from importlib.metadata import version as _version

    __version__ = _version("dragedit")
except Exception:  # running from a checkout that is not installed
    __version__ = "0.1.0"

from dragedit.common.lazy import lazy_attributes

__getattr__, _API = lazy_attributes(__name__, {".pipeline.api": (
    "BatchConfig BatchResult CompositeResult EditJob EditPlan EditRequest EditResult EditSettings PhotoRow Preprocessed "
    "Progress Session check_edit edit edit_photo edit_request preprocess run_batch run_edit VideoConfig VideoJob "
    "VideoResult check_video edit_video run_video")})
__all__ = [*_API, "__version__"]
