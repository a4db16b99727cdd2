"""Alignment stage: dlib landmarks, FFHQ crop geometry, invariance, exact transform, bad inputs."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from dragedit.pipeline.imaging.align import AlignConfig, align_photo, ffhq_quad, map_points
from dragedit.common.errors import UserError
from dragedit.pipeline.imaging.photo import load_photo
from tests.conftest import ASTRONAUT, assert_user_error, run_cli

SIZE = 256


@pytest.fixture(scope="module")
def photo():
    return load_photo(ASTRONAUT)


@pytest.fixture(scope="module")
def base(photo):
    return align_photo(photo, AlignConfig(size=SIZE))


def test_face_and_landmarks_plausible(base):
    lm = base.landmarks
    l, t, r, b = base.face_box
    assert len(base.faces) == 1
    m = 0.2 * (r - l)  # dlib's box is tight: the jaw line often reaches a little past it
    assert ((lm[:, 0] > l - m) & (lm[:, 0] < r + m) & (lm[:, 1] > t - m) & (lm[:, 1] < b + m)).all()
    assert (lm[36:48, 1] > t).all() and (lm[36:48, 1] < b).all()  # the eyes are well inside
    eyes_y = lm[36:48, 1].mean()
    mouth_y = lm[48:68, 1].mean()
    nose_y = lm[27:36, 1].mean()
    assert eyes_y < nose_y < mouth_y
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()  # left eye (in the image) left of right eye


def test_crop_puts_features_where_ffhq_does(base):
    c = map_points(base.photo_to_crop, base.landmarks)
    el, er = c[36:42].mean(0), c[42:48].mean(0)
    mouth = (c[48] + c[54]) / 2
    assert abs(el[1] - er[1]) < 0.01 * SIZE  # level
    # The recipe: half-side = max(2 |e2e|, 1.8 |e2m|), so the eye distance is at most size / 4.
    e2e, e2m = np.hypot(*(er - el)), np.hypot(*(mouth - (el + er) / 2))
    half = max(2 * e2e, 1.8 * e2m)
    assert abs(SIZE / 2 - half * SIZE / (2 * half)) < 1e-9
    assert 0.2 * SIZE < e2e <= 0.25 * SIZE + 0.5
    centre = (el + er) / 2 + 0.1 * (mouth - (el + er) / 2)
    assert np.allclose(centre, [(SIZE - 1) / 2, (SIZE - 1) / 2], atol=0.5)
    assert mouth[1] > el[1] + 0.15 * SIZE
    assert base.inside.min() == 1.0  # the astronaut's crop lies inside the photo


def test_round_trip_points(base):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 512, (100, 2))
    back = map_points(base.crop_to_photo, map_points(base.photo_to_crop, pts))
    assert np.abs(back - pts).max() < 0.01
    assert np.allclose(map_points(base.photo_to_crop, base.quad[[0, 2]]), [[-0.5, -0.5], [SIZE - 0.5, SIZE - 0.5]],
                       atol=1e-6)


def _variant(kind: str, pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    """The transformed photo and the 3x3 map from original to transformed pixel centres."""
    if kind == "rotate":
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0)
        out = cv2.warpAffine(pixels, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        return out, np.vstack([m, [0, 0, 1]])
    if kind in ("scale_up", "scale_down"):
        f = 1.7 if kind == "scale_up" else 0.75
        out = cv2.resize(pixels, (int(w * f), int(h * f)), interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)
        fx, fy = out.shape[1] / w, out.shape[0] / h
        return out, np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]])
    if kind == "shift":
        return cv2.copyMakeBorder(pixels, 37, 0, 90, 11, cv2.BORDER_REFLECT), np.array([[1, 0, 90], [0, 1, 37], [0, 0, 1.0]])
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["rotate", "scale_up", "scale_down", "shift"])
def test_invariance(photo, base, kind):
    pixels, orig_to_new = _variant(kind, photo.pixels)
    al = align_photo(pixels, AlignConfig(size=SIZE))
    diff = np.abs(al.crop.astype(float) - base.crop.astype(float)).mean() / 255
    assert diff < 0.05, diff  # "a few percent": hair texture under sub-pixel landmark jitter dominates
    # Geometry: the crop square found in the new photo, mapped back, is the original one within 2 % of its side.
    quad_back = map_points(np.linalg.inv(orig_to_new), al.quad)
    side = np.hypot(*(base.quad[3] - base.quad[0]))
    assert np.abs(quad_back - base.quad).max() < 0.02 * side


def test_exif_rotated_photo(tmp_path, photo, base):
    rotated = np.ascontiguousarray(np.rot90(photo.pixels, k=1))  # stored sideways
    img = Image.fromarray(rotated)
    exif = Image.Exif()
    exif[0x0112] = 6  # display: rotate 90 clockwise
    path = tmp_path / "sideways.jpg"
    img.save(path, exif=exif.tobytes(), quality=97)
    loaded = load_photo(path)
    assert loaded.size == photo.size
    al = align_photo(loaded, AlignConfig(size=SIZE))
    assert np.abs(al.crop.astype(float) - base.crop.astype(float)).mean() / 255 < 0.05


def test_several_faces_ordered_by_size(tmp_path, photo):
    big = photo.pixels
    small = cv2.resize(big, (300, 300), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 900, 3), 200, np.uint8)
    canvas[:, :512] = big
    canvas[100:400, 560:860] = small
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    first = align_photo(load_photo(path), AlignConfig(size=SIZE))
    second = align_photo(load_photo(path), AlignConfig(size=SIZE, face=1))
    assert len(first.faces) == 2
    assert first.face_box[0] < 512 <= second.face_box[0]
    with pytest.raises(UserError, match="only 2 face"):
        align_photo(load_photo(path), AlignConfig(size=SIZE, face=2))
    out = tmp_path / "out"
    proc = run_cli("align", path, "-o", out, "--size", SIZE, "--face", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "alignment.json").read_text())
    assert meta["face_index"] == 1 and len(meta["faces"]) == 2
    assert len(json.loads(proc.stdout)["faces"]) == 2


def test_face_near_border_is_padded_and_recorded(tmp_path, photo):
    cut = photo.pixels[60:, 150:]  # the quad leaves the photo at the top and left
    al = align_photo(cut, AlignConfig(size=SIZE))
    assert al.inside.min() < 0.01 and al.inside.max() == 1.0
    outside = al.inside < 0.5
    assert outside[0, 0] and not outside[SIZE // 2, SIZE // 2]
    assert al.crop[outside].std() > 1  # reflected + blurred content, not a flat fill


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_photo_modes_are_converted(tmp_path, photo, mode):
    img = Image.fromarray(photo.pixels)
    if mode == "I;16":
        arr = (np.asarray(img.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr)
        assert img.mode.startswith("I;16")
        suffix = ".png"
    else:
        img = img.convert(mode)
        suffix = ".tif" if mode == "CMYK" else ".png"
    path = tmp_path / f"x{suffix}"
    img.save(path)
    p = load_photo(path)
    assert p.pixels.dtype == np.uint8 and p.pixels.shape == (512, 512, 3)
    assert abs(float(p.pixels.mean()) - float(photo.pixels.mean())) < 25


def test_icc_and_exif_are_kept(tmp_path, photo):
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    path = tmp_path / "meta.jpg"
    Image.fromarray(photo.pixels).save(path, exif=exif.tobytes(), icc_profile=b"fake-icc-profile-bytes")
    p = load_photo(path)
    assert p.icc_profile == b"fake-icc-profile-bytes"
    assert Image.Exif() is not None and b"TestCam" in p.exif


def _bad_inputs(tmp_path):
    (tmp_path / "text.png").write_text("this is not an image\n")
    (tmp_path / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.open(ASTRONAUT).save(buf, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    Image.new("RGB", (300, 300), (120, 130, 140)).save(tmp_path / "noface.png")
    return {"text.png": "not an image", "empty.jpg": "empty", "truncated.png": "truncated",
            "one.png": "1x1", "noface.png": "no face", "missing.png": "not found"}


def test_bad_inputs_give_clear_errors(tmp_path):
    cases = _bad_inputs(tmp_path)
    for name, needle in cases.items():
        out = tmp_path / f"out_{name}"
        proc = run_cli("align", tmp_path / name, "-o", out)
        assert_user_error(proc, needle)
        assert not out.exists(), name


def test_cli_writes_artifacts(tmp_path, base):
    out = tmp_path / "al"
    proc = run_cli("align", ASTRONAUT, "-o", out, "--size", SIZE)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "alignment.json").read_text())
    assert meta["crop_size"] == SIZE and np.array(meta["landmarks"]).shape == (68, 2)
    assert np.allclose(np.array(meta["photo_to_crop"]), base.photo_to_crop)
    assert np.array_equal(np.asarray(Image.open(out / "aligned.png")), base.crop)
    assert meta["photo_size"] == [512, 512]


def test_quad_matches_recipe_on_synthetic_landmarks():
    lm = np.zeros((68, 2))
    lm[36:42] = [100, 100]
    lm[42:48] = [140, 100]
    lm[48], lm[54] = [105, 150], [135, 150]
    q = ffhq_quad(lm)
    # eye_to_eye = 40, eye_to_mouth = 50 -> half-side max(80, 90) = 90, centre (120, 105)
    assert np.allclose(q, [[30, 15], [30, 195], [210, 195], [210, 15]])


@pytest.mark.slow
def test_large_photo_detects_on_downscaled_copy(tmp_path, photo, base):
    big = cv2.resize(photo.pixels, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(big, 0, 0, 500, 500, cv2.BORDER_REFLECT)  # 4000 x 3000 = 12 MP
    al = align_photo(canvas, AlignConfig(size=SIZE))
    assert al.photo_size == (4000, 3000)
    assert np.abs(al.crop.astype(float) - base.crop.astype(float)).mean() / 255 < 0.03
