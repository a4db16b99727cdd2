from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import REF_PKL, REF_STATE_DICT, assert_user_error, run_cli


def test_generate_writes_image(tmp_path):
    out = tmp_path / "out.png"
    proc = run_cli("generate", "--generator", REF_PKL, "--seed", "3", "--psi", "0.7", "-o", out)
    assert proc.returncode == 0, proc.stderr
    img = np.asarray(Image.open(out))
    assert img.shape == (128, 128, 3) and img.std() > 5
    out2 = tmp_path / "out2.png"
    assert run_cli("generate", "--generator", REF_STATE_DICT, "--seed", "3", "-o", out2).returncode == 0
    assert np.array_equal(np.asarray(Image.open(out2)), img)  # same network through the state_dict path
    out3 = tmp_path / "out3.jpg"
    assert run_cli("generate", "--generator", REF_PKL, "--seed", "4", "-o", out3).returncode == 0
    assert Image.open(out3).format == "JPEG"


def test_generate_bad_inputs(tmp_path):
    assert_user_error(run_cli("generate", "--generator", tmp_path / "missing.pkl", "-o", tmp_path / "a.png"), "not found")
    assert_user_error(run_cli("generate", "--generator", REF_PKL, "-o", tmp_path / "a.bmpx"), "suffix")
    assert_user_error(run_cli("generate", "--generator", REF_PKL, "-o", "/proc/forbidden/a.png"), "cannot write")
    assert not list(tmp_path.iterdir())
