"""Checkpoints never execute code, and unreadable files give one clear error."""
from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from dragedit.stylegan2 import CheckpointError, load_generator
from dragedit.stylegan2.safe_pickle import UnsafePickleError, safe_load
from tests.conftest import REF_PKL, assert_user_error, run_cli


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_pickle(tmp_path, payload_in_g_ema: bool = True):
    marker = tmp_path / "pwned"
    obj = {"G_ema": _Evil(marker)} if payload_in_g_ema else _Evil(marker)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj))
    return path, marker


def test_os_system_pickle_is_refused_and_nothing_runs(tmp_path):
    path, marker = _evil_pickle(tmp_path)
    with pytest.raises(CheckpointError, match="not on the allow-list"):
        load_generator(path)
    assert not marker.exists()
    # Sanity: the same file really would run the command under plain pickle.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("subprocess", "Popen"),
                                         ("torch_utils.persistence", "persistent_class"), ("numpy", "load")])
def test_any_other_global_is_refused(module, name):
    data = b"\x80\x04c" + module.encode() + b"\n" + name.encode() + b"\n."
    import io

    with pytest.raises(UnsafePickleError):
        safe_load(io.BytesIO(data))


def test_cli_reports_unsafe_pickle_without_traceback(tmp_path):
    path, marker = _evil_pickle(tmp_path)
    proc = run_cli("generate", "--generator", path, "-o", tmp_path / "x.png")
    assert_user_error(proc, "allow-list")
    assert not marker.exists() and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("content", [b"", b"hello world, not a checkpoint", b"\x80\x04\x95garbage",
                                     b"PK\x03\x04broken zip"])
def test_corrupt_files_give_clear_error(tmp_path, content):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_generator(path)
    msg = str(exc.value)
    assert str(path) in msg and "Accepted:" in msg and "\n" not in msg


def test_truncated_official_pickle(tmp_path):
    path = tmp_path / "trunc.pkl"
    path.write_bytes(REF_PKL.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match=str(path)):
        load_generator(path)


def test_state_dict_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "sd.pt"
    torch.save({"x": _Evil(marker)}, path)
    with pytest.raises(CheckpointError):
        load_generator(path)
    assert not marker.exists()
    assert zipfile.is_zipfile(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope.pkl")
