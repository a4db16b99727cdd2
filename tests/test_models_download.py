"""Model downloads: resumable, verified, atomic; tested against a loopback server only."""
from __future__ import annotations

import hashlib
import json

import pytest

from dragedit.stylegan2 import load_generator, zoo
from tests.conftest import REF_PKL, assert_user_error, run_cli
from tests.http_server import serve_bytes

DATA = REF_PKL.read_bytes()
SHA = hashlib.sha256(DATA).hexdigest()


def _entry(url: str, sha: str | None = SHA) -> zoo.ModelEntry:
    return zoo.ModelEntry("tiny", url + "/tiny.pkl", "tiny.pkl", sha, 128, "fixture generator")


def test_download_verifies_and_loads(tmp_path):
    with serve_bytes({"/tiny.pkl": DATA}) as url:
        path = zoo.download(_entry(url), tmp_path, progress=False)
    assert path.read_bytes() == DATA
    assert load_generator(path).img_resolution == 128
    assert not list(tmp_path.glob("*.part"))


def test_resume_uses_range_and_completes(tmp_path):
    (tmp_path / "tiny.pkl.part").write_bytes(DATA[:700_000])
    log: list = []
    with serve_bytes({"/tiny.pkl": DATA}, log=log) as url:
        path = zoo.download(_entry(url), tmp_path, progress=False)
    assert log == [("/tiny.pkl", "bytes=700000-")]
    assert path.read_bytes() == DATA


def test_interrupted_download_leaves_only_part_then_resumes(tmp_path):
    with serve_bytes({"/tiny.pkl": DATA}, cut_after=500_000) as url:
        with pytest.raises(zoo.DownloadError):
            zoo.download(_entry(url), tmp_path, progress=False)
        assert not (tmp_path / "tiny.pkl").exists()
        assert 0 < (tmp_path / "tiny.pkl.part").stat().st_size < len(DATA)
        path = zoo.download(_entry(url), tmp_path, progress=False)
    assert path.read_bytes() == DATA


def test_hash_mismatch_is_rejected_and_removed(tmp_path):
    with serve_bytes({"/tiny.pkl": DATA}) as url:
        with pytest.raises(zoo.DownloadError, match="expected"):
            zoo.download(_entry(url, sha="0" * 64), tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


def test_unknown_hash_is_pinned_on_first_download(tmp_path):
    with serve_bytes({"/tiny.pkl": DATA}) as url:
        path = zoo.download(_entry(url, sha=None), tmp_path, progress=False)
    assert (tmp_path / "tiny.pkl.sha256").read_text().strip() == SHA
    path.write_bytes(DATA[:-1] + b"\x00")  # tampered later
    with pytest.raises(zoo.DownloadError, match="SHA-256"):
        zoo.download(_entry("http://127.0.0.1:9", sha=None), tmp_path, progress=False)


def test_cli_models_download_list_and_path(tmp_path):
    with serve_bytes({"/tiny.pkl": DATA}) as url:
        reg = tmp_path / "reg.json"
        reg.write_text(json.dumps({"tiny": {"url": url + "/tiny.pkl", "filename": "tiny.pkl", "sha256": SHA}}))
        cache = tmp_path / "cache"
        proc = run_cli("models", "--registry", reg, "--cache-dir", cache, "--json", "download", "tiny")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["path"] == str(cache / "tiny.pkl")
    proc = run_cli("models", "--registry", reg, "--cache-dir", cache, "--json", "list")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["tiny"]["downloaded"] and not rows["draggan-ffhq-512"]["downloaded"]
    assert rows["draggan-ffhq-512"]["url"].startswith("https://")
    proc = run_cli("models", "--cache-dir", cache, "path", "stylegan2-ada-ffhq-1024")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("stylegan2-ada-ffhq-1024.pkl")
    assert_user_error(run_cli("models", "download", "no-such-model"), "unknown model")


def test_cli_download_unreachable_is_one_line(tmp_path):
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps({"tiny": {"url": "http://127.0.0.1:9/tiny.pkl"}}))
    assert_user_error(run_cli("models", "--registry", reg, "--cache-dir", tmp_path, "download", "tiny"), "failed")
