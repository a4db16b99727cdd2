"""The library's entry points, re-exported (also as `from dragedit import ...`, which loads this
module lazily); no module of dragedit's rooms imports it. Options are keyword-only and every default lives in the config dataclasses
(`EditSettings` holds them all). Drags may be anchored on the face: `edit_request("@mouth_left:-4%,-8%")`.
"""
from __future__ import annotations

from dragedit.pipeline.batch.run import BatchConfig, BatchResult, PhotoRow, run_batch
from dragedit.pipeline.core.edit import EditJob, EditPlan, EditResult, check_edit, edit, run_edit
from dragedit.pipeline.core.library import Preprocessed, edit_photo, edit_request, preprocess
from dragedit.pipeline.core.progress import Progress
from dragedit.pipeline.core.requests import EditRequest
from dragedit.pipeline.core.session import Session
from dragedit.pipeline.core.settings import EditSettings
from dragedit.pipeline.core.stages.composite import CompositeResult
from dragedit.pipeline.core.video import VideoConfig, VideoJob, VideoResult, check_video, edit_video, run_video

__all__ = ["BatchConfig", "BatchResult", "CompositeResult", "EditJob", "EditPlan", "EditRequest", "EditResult",
           "EditSettings", "PhotoRow", "Preprocessed", "Progress", "Session", "check_edit", "edit", "edit_photo",
           "edit_request", "preprocess", "run_batch", "run_edit", "VideoConfig", "VideoJob", "VideoResult",
           "check_video", "edit_video", "run_video"]
