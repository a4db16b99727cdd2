"""Sessions end to end: cached stages, multi-edit, compositing, kill -9, tampering, locking, bad input."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from dragedit.pipeline.imaging.align import map_points
from dragedit.pipeline.core.manifest import SessionLock
from tests.conftest import ASTRONAUT, QUICK, REF_PKL, REPO, assert_user_error, run_cli, sha

# The reference network has random weights: its drags change texture, not shape, so there is no motion for the
# warp paste to move; these tests check sessions with the generated paste (warp: test_default_generator.py).
FAST = ["--pivot-steps", "30", "--tune-steps", "20", "--steps", "12", "--offline", "--device", "cpu",
        "--paste", "generated"]
DRAG1 = "220,150:224,141"
DRAG2 = "200,150:197,142"


def edit_cmd(session, out, *drags, extra=()):
    args = ["edit", ASTRONAUT, "--generator", REF_PKL, "--session", session, "-o", out, *FAST, *extra]
    for d in drags:
        args += ["--drag", d]
    return args


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted two-edit session, the baseline for the other tests."""
    root = tmp_path_factory.mktemp("ref")
    s = root / "session"
    first = run_cli(*edit_cmd(s, root / "first.png", DRAG1), "--json")
    assert first.returncode == 0, first.stderr
    second = run_cli(*edit_cmd(s, root / "second.png", DRAG2), "--json")
    assert second.returncode == 0, second.stderr
    return {"root": root, "session": s, "first": json.loads(first.stdout), "second": json.loads(second.stdout)}


@pytest.mark.slow
def test_two_edits_resume_and_composite(reference):
    first, second = reference["first"], reference["second"]
    assert first["stages"] == {"align": "computed", "invert": "computed", "edits/001": "computed",
                               "composite/001": "computed"}
    assert second["stages"] == {"align": "reused", "invert": "reused", "edits/002": "computed",
                                "composite/002": "computed"}
    assert second["history"][0]["from"] == "edits/001"
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    for name, num in (("first.png", "001"), ("second.png", "002")):
        out = np.asarray(Image.open(reference["root"] / name).convert("RGB"))
        assert out.shape == photo.shape
        differs = (out != photo).any(axis=2)
        assert differs.sum() > 50  # the edit shows
        # Outside the blended region the photo is bit-identical: every changed pixel has mask > 0.
        mask_crop = np.asarray(Image.open(reference["session"] / "composite" / f"mask-{num}.png"), np.float32) / 255
        al = json.loads((reference["session"] / "align" / "alignment.json").read_text())
        m = cv2.warpAffine(mask_crop, np.array(al["photo_to_crop"])[:2], (photo.shape[1], photo.shape[0]),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
        assert not (differs & (m == 0)).any()
        assert (m == 0).mean() > 0.5 and np.array_equal(out[m == 0], photo[m == 0])
    # The edit is reported in both coordinate systems.
    edit = json.loads((reference["session"] / "edits" / "001" / "edit.json").read_text())
    al = json.loads((reference["session"] / "align" / "alignment.json").read_text())
    crop_h = map_points(np.array(al["photo_to_crop"]), [[220, 150]])[0]
    assert np.allclose(edit["handles_crop"][0], crop_h)
    back = map_points(np.linalg.inv(np.array(al["photo_to_crop"])), edit["final_points_crop"])
    assert np.allclose(back, edit["final_points_photo"])
    hist = run_cli("history", reference["session"], "--json")
    assert [h["edit"] for h in json.loads(hist.stdout)] == [1, 2]


@pytest.mark.slow
def test_same_command_again_reuses_everything(reference, tmp_path):
    out = tmp_path / "again.png"
    proc = run_cli(*edit_cmd(reference["session"], out, DRAG2), "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert set(res["stages"].values()) == {"reused"} and res["edits"] == ["edits/002"]
    assert sha(out) == sha(reference["root"] / "second.png")


def _wait_and_kill(cmd, ready, timeout=300):
    proc = subprocess.Popen([sys.executable, "-m", "dragedit", *map(str, cmd)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("timed out waiting to kill")


def _manifest(session):
    try:
        return json.loads((session / "session.json").read_text())["stages"]
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
@pytest.mark.parametrize("when", ["inversion", "drag"])
def test_kill9_then_rerun_matches_uninterrupted(reference, tmp_path, when):
    s = tmp_path / "session"
    out = tmp_path / "first.png"
    cmd = edit_cmd(s, out, DRAG1, extra=["--checkpoint-every", "5"])
    if when == "inversion":
        ready = lambda: (s / "invert" / "pti_checkpoint.pt").exists()  # noqa: E731
    else:
        ready = lambda: "invert" in _manifest(s)  # noqa: E731
    _wait_and_kill(cmd, ready)
    stages = _manifest(s)
    assert not any(k.startswith("edits/") for k in stages) and not out.exists()
    proc = run_cli(*cmd, "--json")
    assert proc.returncode == 0, proc.stderr
    ref = reference["session"]
    for rel in ("invert/pivot.safetensors", "invert/generator_delta.safetensors", "edits/001/ws.safetensors",
                "edits/001/crop.png", "composite/edit-001.png"):
        assert sha(s / rel) == sha(ref / rel), rel
    assert sha(out) == sha(reference["root"] / "first.png")
    assert not list(s.rglob(".*.part"))


@pytest.mark.slow
def test_tampered_artifact_is_recomputed(reference, tmp_path):
    import shutil

    s = tmp_path / "session"
    shutil.copytree(reference["session"], s)
    recon = s / "invert" / "reconstruction.png"
    img = np.asarray(Image.open(recon)).copy()
    img[0, 0] ^= 255
    Image.fromarray(img).save(recon)
    out = tmp_path / "o.png"
    proc = run_cli(*edit_cmd(s, out, DRAG1, extra=["--from", "pivot"]), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "does not match the hash" in proc.stderr and "reconstruction.png" in proc.stderr
    assert json.loads(proc.stdout)["stages"]["invert"] == "computed"
    assert sha(recon) == sha(reference["session"] / "invert" / "reconstruction.png")


def test_second_concurrent_run_is_refused(tmp_path):
    s = tmp_path / "session"
    with SessionLock(s):
        proc = run_cli(*edit_cmd(s, tmp_path / "o.png", DRAG1))
    assert_user_error(proc, "busy")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_bad_inputs_leave_session_intact(reference, tmp_path):
    import shutil

    s = tmp_path / "session"
    shutil.copytree(reference["session"], s)
    before = {p.relative_to(s): sha(p) for p in s.rglob("*") if p.is_file() and p.name != ".lock"}
    small_mask = tmp_path / "small.png"
    Image.new("L", (100, 100), 255).save(small_mask)
    cases = [
        (edit_cmd(s, tmp_path / "o.png", "5000,10:5010,10"), "outside"),
        (edit_cmd(s, tmp_path / "o.png", "10,10:12,12"), "outside the aligned face crop"),
        (edit_cmd(s, tmp_path / "o.png", "220,150-224,141"), "malformed --drag"),
        (edit_cmd(s, tmp_path / "o.png", DRAG1, extra=["--mask", small_mask]), "mask"),
        (edit_cmd(s, tmp_path / "o.png", DRAG1, extra=["--mask", tmp_path / "nomask.png"]), "mask file not found"),
        (edit_cmd(s, "/proc/nope/o.png", DRAG1), "cannot write"),
        (edit_cmd(s, tmp_path / "o.gif", DRAG1), "suffix"),
        (["edit", ASTRONAUT, "--generator", tmp_path / "none.pkl", "--session", s, "-o", tmp_path / "o.png",
          "--drag", DRAG1], "not found"),
        (edit_cmd(s, tmp_path / "o.png"), "no points"),
        (edit_cmd(s, tmp_path / "o.png", DRAG1, extra=["--feature-block", "9"]), "--feature-block 9: out of range"),
        (["drag", s, "--drag", DRAG1, "--from", "7"], "no such edit"),
        (["history", tmp_path], "not a dragedit session"),
    ]
    for cmd, needle in cases:
        assert_user_error(run_cli(*cmd), needle)
    after = {p.relative_to(s): sha(p) for p in s.rglob("*") if p.is_file() and p.name != ".lock"}
    assert before == after
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_edit_file_batch_branching_and_library(reference, tmp_path):
    import shutil

    s = tmp_path / "session"
    shutil.copytree(reference["session"], s)
    mask = np.zeros((512, 512), np.uint8)
    mask[100:220, 150:300] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    (tmp_path / "edits.json").write_text(json.dumps({"edits": [
        {"drags": ["220,150:224,141"], "mask": "mask.png"}, {"drags": [[200, 150, 197, 142], [230, 175, 230, 181]]}]}))
    cmd = ["edit", ASTRONAUT, "--session", s, "-o", tmp_path / "b.png", "--edits", tmp_path / "edits.json",
           "--from", "pivot", *FAST, "--json"]
    proc = run_cli(*cmd)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["edits"] == ["edits/003", "edits/004"]
    assert [h["from"] for h in res["history"]] == ["pivot", "edits/003"]
    proc = run_cli(*cmd)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["edits"] == ["edits/003", "edits/004"] and set(again["stages"].values()) == {"reused"}
    # One stage as a library call: align + invert as preprocessing, fully cached here.
    from dragedit.pipeline.api import preprocess

    from dragedit.pipeline.core.settings import EditSettings

    pre = preprocess(ASTRONAUT, s, settings=EditSettings(generator=REF_PKL))
    assert pre.w.shape == (1, 12, 64) and pre.generator_delta_path.is_file()
    G = pre.load_generator()
    assert G.img_resolution == 128 and pre.resolution == 128  # a 128 px generator is never capped
    del pre.metrics["resolution"]  # as in a session inverted before the cap: read off its reconstruction
    assert pre.resolution == 128
    # composite an earlier edit as its own stage, JPEG with the photo's metadata
    proc = run_cli("composite", s, "--edit", "1", "-o", tmp_path / "c.jpg", "--json")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "c.jpg").format == "JPEG"


@pytest.mark.slow
def test_edited_photo_keeps_exif_and_icc(tmp_path):
    """Through a whole edit: the output carries the photo's EXIF (orientation applied, so reset to 1) and ICC."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = 3  # upside down
    src = tmp_path / "p.jpg"
    Image.open(ASTRONAUT).convert("RGB").rotate(180).save(src, exif=exif.tobytes(), icc_profile=b"icc-bytes",
                                                           quality=95)
    proc = run_cli("edit", src, "--drag", "201,139:199,133", "-o", tmp_path / "out.jpg", *QUICK)
    assert proc.returncode == 0, proc.stderr
    img = Image.open(tmp_path / "out.jpg")
    assert img.info.get("icc_profile") == b"icc-bytes"
    assert img.getexif().get(0x010F) == "TestCam" and img.getexif().get(0x0112, 1) == 1