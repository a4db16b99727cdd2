"""The embedded generator: shipped, loadable, used without --generator, and the eval harness on it."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from dragedit.pipeline.core.runtime import default_generator_path
from dragedit.stylegan2 import load_generator
from tests.conftest import ASTRONAUT, run_cli


def test_embedded_generator_is_shipped_and_small():
    path = default_generator_path()
    assert path is not None, "src/dragedit/pipeline/assets/default_generator.safetensors is missing"
    assert path.stat().st_size < 8 * 2**20
    G, info = load_generator(path, with_info=True)
    assert G.img_resolution == 128 and info["provenance"]["kimg"] > 0


def test_generate_without_generator(tmp_path):
    proc = run_cli("generate", "--seed", "1", "-o", tmp_path / "g.png", fresh=True)  # the note is said once per process
    assert proc.returncode == 0, proc.stderr
    assert "embedded demo generator" in proc.stderr and "models download" in proc.stderr
    assert Image.open(tmp_path / "g.png").size == (128, 128)


@pytest.mark.slow
def test_edit_without_generator_offline(tmp_path):
    out = tmp_path / "edited.jpg"
    proc = run_cli("edit", ASTRONAUT, "--drag", "201,139:199,133", "--drag", "246,141:249,135", "-o", out,
                   "--pivot-steps", "40", "--tune-steps", "20", "--steps", "30", "--offline", "--json")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "astronaut.dragedit" / "session.json").is_file()
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert np.asarray(Image.open(out)).shape == photo.shape


def test_eval_harness_without_steps_equals_no_edit():
    from dragedit.draggan.evaluation import evaluate

    G = load_generator(default_generator_path())
    res = evaluate(G, [5], samples=1, seed=3, sigma=0.1, max_steps=0, psi=0.3, drag_kwargs={}, progress=False)
    m = res["settings"]["5"]["mean"]
    assert m["mse_edit"] == pytest.approx(m["mse_none"], abs=1e-12)
    assert m["dist_edit"] == pytest.approx(m["dist_none"], abs=0.05)
    assert m["dist_none"] > 1.0  # the sampled flow vectors are real motions


def test_eval_flow_pairs_are_textured_consistent_motions():
    """A textured square moved by (+3, +2) px on a flat background: every pair must sit on the square
    and point along the true motion; flat background is never sampled even though Farneback spreads flow there."""
    from dragedit.draggan.evaluation import flow_pairs

    rng = np.random.RandomState(0)
    tex = (rng.rand(24, 24) * 255).astype(np.uint8)
    tex = np.asarray(Image.fromarray(tex).resize((48, 48), Image.BILINEAR))
    i1 = np.full((128, 128), 120, np.uint8)
    i2 = i1.copy()
    i1[40:88, 40:88] = tex
    i2[42:90, 43:91] = tex
    i1, i2 = np.repeat(i1[..., None], 3, 2), np.repeat(i2[..., None], 3, 2)
    handles, targets = flow_pairs(i1, i2, 16, np.random.RandomState(1), margin=8)
    assert ((handles >= 40 - 4) & (handles < 88 + 4)).all()  # on the square or its edge (structure window)
    np.testing.assert_allclose(targets - handles, np.tile([[3.0, 2.0]], (16, 1)), atol=0.5)


@pytest.mark.slow
def test_drags_on_embedded_generator_beat_no_edit():
    """Quality regression on the shipped generator: paired reconstruction, 5 handles, larger motions."""
    from dragedit.draggan.evaluation import evaluate

    G = load_generator(default_generator_path())
    res = evaluate(G, [5], samples=3, seed=0, sigma=0.5, max_steps=100, psi=0.3, drag_kwargs={}, progress=False)
    m = res["settings"]["5"]["mean"]
    assert m["dist_edit"] < 0.7 * m["dist_none"], m
    assert m["mse_edit"] < 0.9 * m["mse_none"], m


def _face_box(session):
    al = json.loads((session / "align" / "alignment.json").read_text())
    return [int(round(v)) for v in al["face_box"]]


@pytest.mark.slow
def test_warp_paste_moves_the_photos_own_pixels(tmp_path):
    """The default paste keeps the photo's detail, changes only where the field or generated weight is, and
    a drag of zero steps gives back the original bit for bit."""
    import cv2

    s = tmp_path / "s"
    base = ["edit", ASTRONAUT, "--session", s, "--pivot-steps", "60", "--tune-steps", "40", "--offline", "--json",
            "--drag", "201,139:199,133", "--drag", "246,141:249,135", "--from", "pivot"]
    proc = run_cli(*base, "--steps", "40", "-o", tmp_path / "warp.png")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    out = np.asarray(Image.open(tmp_path / "warp.png"))
    changed = (out != photo).any(axis=2)
    assert changed.sum() > 100  # the edit shows
    field = load_file(str(s / "composite" / "field-001.safetensors"))
    gen = np.asarray(Image.open(s / "composite" / "generated-001.png"), np.float32) / 255
    active = ((np.abs(field["field"]).sum(axis=2) > 0) | (gen > 0)).astype(np.float32)
    al = json.loads((s / "align" / "alignment.json").read_text())
    reach = cv2.warpAffine(cv2.dilate(active, np.ones((3, 3))), np.array(al["photo_to_crop"])[:2],
                           (photo.shape[1], photo.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert not (changed & (reach == 0)).any()  # nothing changes outside the field and generated weight
    x0, y0, x1, y1 = _face_box(s)
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(im[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY),
                                   cv2.CV_64F).var()
    assert lap(out) > 0.85 * lap(photo)  # the photo's own detail, not the 128 px render's
    edit = json.loads((s / "edits" / "001" / "edit.json").read_text())
    assert all("measured_distance" in h and "tracker_distance" in h for h in edit["handles"])
    if edit["stopped_by"] == "distance":  # an arrival is only reported where LK agrees with the tracker
        assert all(np.hypot(*np.subtract(h["measured"], h["tracker"])) <= 2.0 for h in edit["handles"])
    assert res["history"][0]["measured_distances"]
    # The generated paste still exists and differs from the warp.
    proc = run_cli("composite", s, "--paste", "generated", "-o", tmp_path / "gen.png")
    assert proc.returncode == 0, proc.stderr
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "gen.png")), out)
    # Zero drag steps: the render equals the reconstruction, so the photo comes back bit for bit.
    proc = run_cli(*base, "--steps", "0", "-o", tmp_path / "zero.png")
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zero.png")), photo)


@pytest.mark.slow
def test_inverting_below_the_generators_size_still_moves_the_photo(tmp_path):
    """PTI's resolution cap (--invert-resolution, 256 by default for 512/1024 generators; 64 here on the 128 px
    one): the last block is left as it was, every render stops at the cap, the warp paste reads the motion from
    those renders, zero steps still give the photo back bit for bit, and --paste generated inverts at full size."""
    from safetensors import safe_open

    s = tmp_path / "s"
    base = ["edit", ASTRONAUT, "--session", s, "--pivot-steps", "40", "--tune-steps", "20", "--offline", "--json",
            "--drag", "201,139:199,133", "--drag", "246,141:249,135", "--from", "pivot", "--invert-resolution", "64"]
    proc = run_cli(*base, "--steps", "20", "-o", tmp_path / "warp.png")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(s / "invert" / "reconstruction.png").size == (64, 64)
    assert Image.open(s / "edits" / "001" / "crop.png").size == (64, 64)
    assert json.loads((s / "invert" / "metrics.json").read_text())["resolution"] == 64
    assert json.loads((s / "edits" / "001" / "edit.json").read_text())["image_resolution"] == 64
    with safe_open(str(s / "invert" / "generator_delta.safetensors"), "np") as fh:
        tuned = list(fh.keys())
    assert tuned and not any(k.startswith("synthesis.b128.") for k in tuned)
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert (np.asarray(Image.open(tmp_path / "warp.png")) != photo).any(axis=2).sum() > 100
    proc = run_cli(*base, "--steps", "0", "-o", tmp_path / "zero.png")
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zero.png")), photo)
    proc = run_cli("composite", s, "--paste", "generated", "-o", tmp_path / "soft.png")  # the 64 px renders, said so
    assert proc.returncode == 0 and "tuned at 64 px" in proc.stderr, proc.stderr
    proc = run_cli(*base, "--steps", "5", "--paste", "generated", "-o", tmp_path / "gen.png")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stages"]["invert"] == "computed"
    assert Image.open(s / "invert" / "reconstruction.png").size == (128, 128)
