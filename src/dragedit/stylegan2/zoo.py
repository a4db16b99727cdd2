"""Known public checkpoints and a resumable, verified, atomic downloader.

NVIDIA publishes no SHA-256 for these files. Where the registry has none, the first complete
download pins its hash beside the file (trust on first use) and every later use is checked
against it; `--sha256` or a registry file can supply a known hash instead.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from dragedit.common.environment import models_dir
from dragedit.common.hashing import file_sha256


@dataclass(frozen=True)
class ModelEntry:
    name: str
    url: str
    filename: str
    sha256: str | None
    resolution: int
    description: str


KNOWN_MODELS: dict[str, ModelEntry] = {
    e.name: e for e in [
        ModelEntry("draggan-ffhq-512",
                   "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
                   "stylegan2-ffhq-512x512.pkl",
                   "stylegan2-ffhq-512x512.pkl", None, 512,
                   "StyleGAN2 FFHQ 512x512, the face model DragGAN uses (about 360 MB)"),
        ModelEntry("stylegan2-ada-ffhq-1024",
                   "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl",
                   "stylegan2-ada-ffhq-1024.pkl", None, 1024,
                   "NVIDIA StyleGAN2-ADA FFHQ 1024x1024 (about 380 MB)"),
    ]
}


class DownloadError(RuntimeError):
    pass


def default_cache_dir() -> Path:
    """$DRAGEDIT_HOME/models, else $XDG_CACHE_HOME/dragedit/models, else ~/.cache/dragedit/models."""
    return models_dir()


def load_registry(extra: str | os.PathLike | None = None) -> dict[str, ModelEntry]:
    """Built-in entries, plus or overridden by a JSON file: {"name": {"url": ..., "sha256": ...}, ...}."""
    reg = dict(KNOWN_MODELS)
    if extra:
        try:
            data = json.loads(Path(extra).read_text())
            for name, fields in data.items():
                base = asdict(reg[name]) if name in reg else {"name": name, "filename": f"{name}.pkl",
                                                               "sha256": None, "resolution": 0, "description": ""}
                base.update(fields)
                base["name"] = name
                reg[name] = ModelEntry(**base)
        except (OSError, ValueError, TypeError) as exc:
            raise DownloadError(f"cannot read model registry {extra}: {exc}") from None
    return reg


def model_path(entry: ModelEntry, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / entry.filename


def _pinned_hash(path: Path) -> str | None:
    pin = path.with_name(path.name + ".sha256")
    return pin.read_text().strip() if pin.exists() else None


def verify(entry: ModelEntry, path: Path, expected: str | None = None) -> str:
    digest = file_sha256(path)
    want = expected or entry.sha256 or _pinned_hash(path)
    if want and digest != want.lower():
        raise DownloadError(f"{path} has SHA-256 {digest}, expected {want}; delete it and download again")
    return digest


def download(entry: ModelEntry, cache_dir: Path | None = None, sha256: str | None = None,
             progress: bool = True, timeout: float = 60.0, chunk: int = 1 << 20) -> Path:
    """Fetch `entry` into the cache, resuming a `.part` file with an HTTP Range request."""
    dest = model_path(entry, cache_dir)
    if dest.exists():
        verify(entry, dest, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(entry.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            resp = None
        else:
            raise DownloadError(f"download of {entry.name} failed: HTTP {exc.code} from {entry.url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"download of {entry.name} failed: {exc} ({entry.url}); "
                            "check the network, or download the file yourself and use it as the generator") from None
    if resp is not None:
        with resp:
            if have and resp.status != 206:
                have = 0  # the server ignored the range: start over
            total = resp.headers.get("Content-Length")
            total = int(total) + have if total is not None else None
            mode = "ab" if have else "wb"
            with open(part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                              desc=entry.name, disable=not progress) as bar:
                while block := resp.read(chunk):
                    fh.write(block)
                    bar.update(len(block))
                fh.flush()
                os.fsync(fh.fileno())
            if total is not None and part.stat().st_size != total:
                raise DownloadError(f"download of {entry.name} stopped early; run the command again to resume")
    digest = file_sha256(part)
    want = (sha256 or entry.sha256 or "").lower()
    if want and digest != want:
        part.unlink()
        raise DownloadError(f"download of {entry.name} has SHA-256 {digest}, expected {want}; the file was removed")
    os.replace(part, dest)
    if not want:
        from dragedit.common.atomic import write_text
        write_text(dest.with_name(dest.name + ".sha256"), digest + "\n")
    return dest
