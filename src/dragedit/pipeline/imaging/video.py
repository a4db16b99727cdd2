"""Clips in and out through PyAV (FFmpeg): recognised by their content, decoded frame by frame (never the whole
clip in memory), and written back with every frame's own timestamp, the sound's packets copied unchanged and
the rotation kept, so only the edited pixels differ.

Outputs by suffix: `.mp4`/`.mov` H.264 yuv420p at a quality near the source's (`crf`), `.mkv` lossless FFV1
(RGB, so the frames outside the edit are the decoded source's pixels exactly), or a folder of numbered PNG
frames with their timestamps (`frames.json`), for photo tools. No torch here.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from dragedit.common.errors import UserError, one_line

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
IMAGE_FORMATS = ("image2", "gif", "webp", "apng", "jpeg_pipe", "png_pipe", "tiff_pipe", "bmp_pipe")  # FFmpeg's
# ISO-BMFF brands of still images (HEIC, AVIF): FFmpeg opens them as "mp4", but they are photos
IMAGE_BRANDS = ("heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis", "miaf")
DEFAULT_CRF = 18  # x264's "visually lossless" end of its scale; the source's own quality is the limit anyway


@dataclass
class VideoInfo:
    """What a clip is: its size as stored, rotation (degrees, applied for display), frames, timing and sound."""

    path: Path
    width: int
    height: int
    frames: int  # counted by decoding when the container does not say
    time_base: Fraction
    duration_s: float
    rotation: int
    codec: str
    audio: list[str]  # codec names of the audio streams, copied as they are
    times: list[float]  # each frame's time in seconds, from the first frame's

    @property
    def fps(self) -> float:
        return self.frames / self.duration_s if self.duration_s > 0 else 0.0


def _open(path: Path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UserError(f"{path} could not be read as a video ({one_line(exc)}); the file may be truncated or "
                        "corrupt") from None


def is_video(path: str | os.PathLike) -> bool:
    """A clip (by content, not suffix): FFmpeg opens it as a container that holds a video stream and is not an
    image format (a still, an animated GIF or WebP, a HEIC or AVIF stay photos)."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return False
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(str(p)) as c:
            names = set(c.format.name.split(","))
            brand = str(c.metadata.get("major_brand", "")).strip().lower()
            return (bool(c.streams.video) and not names & set(IMAGE_FORMATS) and brand not in IMAGE_BRANDS
                    and not any(n.endswith("_pipe") for n in names))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return False


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The clip's facts, with its frames decoded once to count them (and to find a truncated clip now, not an
    hour into the work): a one-line `UserError` for anything FFmpeg cannot decode."""
    import av

    p = Path(path)
    with _open(p) as c:
        if not c.streams.video:
            raise UserError(f"{p} holds no video stream; pass a clip (.mp4, .mov, .mkv)")
        v = c.streams.video[0]
        audio = [a.codec_context.name for a in c.streams.audio]
        frames, last, rotation, pts = 0, 0, 0, []
        try:
            for frame in c.decode(video=0):
                if frames == 0:
                    rotation = int(getattr(frame, "rotation", 0) or 0)
                frames += 1
                last = frame.pts if frame.pts is not None else last
                pts.append(last)
        except av.error.FFmpegError as exc:
            raise UserError(f"{p} could not be decoded past frame {frames} ({one_line(exc)}); the clip may be "
                            "truncated or corrupt") from None
        if frames == 0:
            raise UserError(f"{p} holds no decodable video frame; the clip may be truncated or use a codec this "
                            "FFmpeg lacks")
        tb = v.time_base or Fraction(1, 1000)
        rate = v.average_rate or v.guessed_rate or Fraction(30)
        duration = float((last - (v.start_time or 0)) * tb) + float(1 / rate)
        times = [float((t - pts[0]) * tb) for t in pts]
        return VideoInfo(p, v.codec_context.width, v.codec_context.height, frames, Fraction(tb), duration,
                         rotation % 360, v.codec_context.name, audio, times)


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Stored pixels -> as displayed (faces upright, for detection); `_stored` undoes it exactly."""
    return np.ascontiguousarray(np.rot90(rgb, k=(rotation // 90) % 4)) if rotation % 360 else rgb


def _stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90) % 4)) if rotation % 360 else rgb


def frames(path: str | os.PathLike, rotation: int = 0) -> Iterator[tuple[int, int | None, np.ndarray]]:
    """(index, pts, RGB uint8 as displayed) for every frame, decoded one at a time."""
    with _open(Path(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            yield i, frame.pts, _upright(frame.to_ndarray(format="rgb24"), rotation)


# a hard cut between two frames: their 64x36 HSV thumbnails differ by more than this on average (0-255 levels;
# PySceneDetect's content detector uses the same measure at 27). On ../shared/clips the three cuts scored 46-54,
# and no other frame more than 18 (fast pans, a talking head turning).
CUT_SCORE = 30.0


class Shots:
    """Which shot each frame of a clip is in, fed the frames in order: a shot is named by the index of its first
    frame, so processes that each read a part of the clip from its start agree on the names."""

    def __init__(self, threshold: float = CUT_SCORE) -> None:
        self.threshold, self.start, self._last = threshold, 0, None

    def see(self, index: int, rgb: np.ndarray) -> int:
        """The shot of frame `index` (the frame after the one seen last)."""
        import cv2

        small = cv2.cvtColor(cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
        small = small.astype(np.float32)
        if self._last is not None and float(np.abs(small - self._last).mean()) > self.threshold:
            self.start = index
        self._last = small
        return self.start


def frame_at(path: str | os.PathLike, index: int, rotation: int = 0) -> np.ndarray:
    for i, _, rgb in frames(path, rotation):
        if i == index:
            return rgb
    raise UserError(f"{path} has no frame {index}")


def output_kind(output: str | os.PathLike) -> str:
    """'h264' (.mp4, .mov), 'ffv1' (.mkv) or 'frames' (a folder: no suffix, or an existing folder)."""
    p = Path(output)
    suffix = p.suffix.lower()
    if p.is_dir() or not suffix:
        return "frames"
    if suffix in (".mp4", ".mov"):
        return "h264"
    if suffix == ".mkv":
        return "ffv1"
    raise UserError(f"{p.name}: a clip is written as .mp4 or .mov (H.264), .mkv (lossless FFV1) or a folder of "
                    "PNG frames; name one of those")


def write_video(info: VideoInfo, output: Path, edited: Callable[[int, np.ndarray], np.ndarray],
                crf: int = DEFAULT_CRF, on_frame: Callable[[int], None] | None = None) -> None:
    """The clip again, each frame `edited(index, rgb as displayed)`, with the source's timestamps, rotation and
    sound; written to a temporary name beside `output` and renamed, so a kill leaves no half clip there."""
    kind = output_kind(output)
    if kind == "frames":
        return _write_frames(info, output, edited, on_frame)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.part{output.suffix}")
    try:
        _write_container(info, tmp, kind, edited, crf, on_frame)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _write_container(info: VideoInfo, out_path: Path, kind: str, edited, crf: int, on_frame) -> None:
    import av

    # bitexact: no random segment id or encoder stamp, so the same frames give the same bytes (a resumed run's too)
    with _open(info.path) as src, av.open(str(out_path), "w", container_options={"fflags": "+bitexact"}) as out:
        vin = src.streams.video[0]
        if kind == "h264":
            vout = out.add_stream("libx264", rate=vin.average_rate or vin.guessed_rate)
            vout.pix_fmt = "yuv420p"
            vout.options = {"crf": str(int(crf)), "preset": "medium"}
        else:
            vout = out.add_stream("ffv1", rate=vin.average_rate or vin.guessed_rate)
            vout.pix_fmt = "bgr0"  # RGB kept exactly: pixels outside the edit are the decoded source's
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        if info.rotation:  # the display matrix (FFmpeg 7 and later ignore a "rotate" tag)
            if hasattr(vout, "set_display_rotation"):
                vout.set_display_rotation(info.rotation)
            else:  # an older PyAV has no setter; the FFmpeg it carried read this tag
                vout.metadata["rotate"] = str((-info.rotation) % 360)
        audio_out = {a.index: out.add_stream_from_template(a) for a in src.streams.audio}
        streams = [vin, *src.streams.audio]
        index = 0
        for packet in src.demux(streams):
            if packet.stream.type == "audio":
                if packet.dts is None:
                    continue
                packet.stream = audio_out[packet.stream.index]
                out.mux(packet)
                continue
            for frame in packet.decode():
                rgb = edited(index, _upright(frame.to_ndarray(format="rgb24"), info.rotation))
                new = av.VideoFrame.from_ndarray(_stored(rgb, info.rotation), format="rgb24")
                new.pts, new.time_base = frame.pts, vin.time_base
                out.mux(vout.encode(new))
                if on_frame:
                    on_frame(index)
                index += 1
        out.mux(vout.encode(None))


def _write_frames(info: VideoInfo, folder: Path, edited, on_frame) -> None:
    """frame-000000.png, ... and frames.json (each frame's pts and seconds), each file written atomically."""
    from dragedit.common import atomic
    from dragedit.common.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    times: list[dict[str, Any]] = []
    for i, pts, rgb in frames(info.path, info.rotation):
        save_image(edited(i, rgb), folder / f"frame-{i:06d}.png")
        times.append({"frame": i, "pts": pts, "seconds": float(pts * info.time_base) if pts is not None else None})
        if on_frame:
            on_frame(i)
    atomic.write_text(folder / "frames.json", json.dumps({"time_base": str(info.time_base), "frames": times}))


def timestamps(path: str | os.PathLike) -> tuple[list[float], list[tuple[str, int]]]:
    """(every video frame's time in seconds from the first frame's, (codec, packet count) per audio stream):
    what an edit must keep. From the first frame, since Matroska shifts every stream alike to keep AAC's
    priming delay non-negative (sync is kept, the origin moves)."""
    with _open(Path(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts for f in c.decode(video=0) if f.pts is not None]
        times = [float((t - pts[0]) * v.time_base) for t in pts]
    with _open(Path(path)) as c:
        audio = []
        for a in c.streams.audio:
            audio.append((a.codec_context.name, sum(1 for p in c.demux(a) if p.size)))
    return times, audio
