"""Direct tests of small pieces the end-to-end tests only reach through the CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from dragedit.common.errors import UserError
from dragedit.pipeline.imaging.paste import CompositeConfig, blend_mask
from dragedit.pipeline.core.requests import mask_to_crop, parse_drag, points_to_crop
from dragedit.pipeline.imaging.geometry import map_points
from dragedit.pipeline.core.manifest import Manifest, schema_problem

CROP = 64
# photo -> crop: scale 0.25 and an offset, so photo pixel (100, 60) is crop pixel (5, 5)
P2C = np.array([[0.25, 0, -20.0], [0, 0.25, -10.0], [0, 0, 1.0]])


def test_map_points_round_trip():
    pts = np.array([[100.0, 60.0], [351.5, 12.25]])
    np.testing.assert_allclose(map_points(P2C, pts), [[5, 5], [67.875, -6.9375]])
    np.testing.assert_allclose(map_points(np.linalg.inv(P2C), map_points(P2C, pts)), pts)


def test_parse_drag():
    assert parse_drag("201,139:199,133") == (201.0, 139.0, 199.0, 133.0)
    assert parse_drag(" 1.5 , -2 : 3,4 ") == (1.5, -2.0, 3.0, 4.0)
    for bad in ("201,139-199,133", "1,2:3", "a,b:c,d", "nan,1:2,3", ""):
        with pytest.raises(UserError, match="malformed drag"):
            parse_drag(bad)


def test_points_to_crop():
    handles, targets = points_to_crop([(100, 60, 104, 64)], (400, 300), P2C, CROP)
    np.testing.assert_allclose(handles, [[5, 5]])
    np.testing.assert_allclose(targets, [[6, 6]])
    with pytest.raises(UserError, match="outside the 400x300 photo"):
        points_to_crop([(100, 60, 400, 64)], (400, 300), P2C, CROP)
    with pytest.raises(UserError, match="outside the aligned face crop"):
        points_to_crop([(10, 10, 100, 60)], (400, 300), P2C, CROP)  # in the photo, not in the crop


def test_mask_to_crop(tmp_path):
    mask = np.zeros((300, 400), np.uint8)
    mask[60:140, 100:180] = 255  # photo box -> crop rows/cols 5..25
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path)
    m = mask_to_crop(path, (400, 300), np.linalg.inv(P2C), CROP)
    assert m.shape == (CROP, CROP) and set(np.unique(m)) == {0.0, 1.0}
    assert m[6:24, 6:24].all() and not m[30:].any() and not m[:, 30:].any()
    Image.fromarray(mask[:100]).save(tmp_path / "small.png")
    with pytest.raises(UserError, match="draw the mask at the photo's size"):
        mask_to_crop(tmp_path / "small.png", (400, 300), np.linalg.inv(P2C), CROP)
    Image.fromarray(np.zeros_like(mask)).save(tmp_path / "empty.png")
    with pytest.raises(UserError, match="marks nothing"):
        mask_to_crop(tmp_path / "empty.png", (400, 300), np.linalg.inv(P2C), CROP)


def test_blend_mask_covers_the_change_inside_the_face_only():
    rng = np.random.RandomState(0)
    recon = (rng.rand(CROP, CROP, 3) * 255).astype(np.uint8)
    edited = recon.copy()
    edited[28:36, 28:36] = 255 - edited[28:36, 28:36]  # a change in the middle of the face
    edited[58:62, 58:62] = 255 - edited[58:62, 58:62]  # and one in the corner, outside it
    lm = np.array([[20 + 24 * np.cos(a), 24 + 20 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 68)])
    inside = np.ones((CROP, CROP), np.float32)
    m = blend_mask(edited, recon, inside, lm, CompositeConfig(paste="generated", face_margin=0.02))
    assert m[32, 32] > 0.5 and m[60, 60] == 0 and m.min() == 0 and m.max() <= 1
    inside[:, 32:] = 0  # crop pixels from outside the photo are never pasted
    m2 = blend_mask(edited, recon, inside, lm, CompositeConfig(paste="generated", face_margin=0.02))
    assert not m2[:, 32:].any() and m2[32, 30] > 0
    no_change = blend_mask(recon, recon, np.ones((CROP, CROP), np.float32), lm, CompositeConfig())
    assert not no_change.any()


def test_manifest_commit_lookup_and_tampering(tmp_path):
    warnings = []
    man = Manifest(tmp_path, warnings.append)
    out = tmp_path / "align" / "a.txt"
    out.parent.mkdir()
    out.write_text("one")
    man.commit("align", "k1", {"photo": "abc"}, {"size": 64}, [out])
    again = Manifest(tmp_path, warnings.append)  # what a later run reads
    assert again.lookup("align", "k1")["outputs"] == {"align/a.txt": man.stages["align"]["outputs"]["align/a.txt"]}
    assert again.lookup("align", "other-key") is None
    out.write_text("tampered")
    assert again.lookup("align", "k1") is None and "does not match" in warnings[-1]
    out.unlink()
    assert again.lookup("align", "k1") is None and "missing" in warnings[-1]


@pytest.mark.parametrize("data,ok", [
    ({"stages": {}}, True), ([1, 2, 3], False), ({"stages": []}, False), ({"stages": {"a": None}}, False),
    ({"stages": {"a": {"key": "k", "inputs": {}, "params": {}, "outputs": 42}}}, False),
    ({"stages": {"a": {"key": "k", "inputs": {}, "params": {}, "outputs": {"f": 1}}}}, False),
    ({"stages": {"a": {"key": "k", "inputs": {}, "params": {}, "outputs": {"f": "h"}}}}, True),
])
def test_manifest_schema(tmp_path, data, ok):
    assert (schema_problem(data) is None) == ok
    (tmp_path / "session.json").write_text(json.dumps(data))
    warnings = []
    man = Manifest(tmp_path, warnings.append)
    assert (not warnings) == ok and isinstance(man.stages, dict)


def test_field_shape_helpers_agree_with_opencv():
    # map_points and cv2.transform give the same points for an affine map
    pts = np.array([[[3.0, 4.0], [10.0, -2.0]]])
    np.testing.assert_allclose(cv2.transform(pts, P2C[:2])[0], map_points(P2C, pts[0]))
