"""Named edits, masks by face region, photos straight from a phone, and every face of a photo at once."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, QUICK, assert_user_error, run_main


def _lm():
    from dragedit.pipeline.imaging.faces import find_faces
    from dragedit.pipeline.imaging.photo import load_photo

    return np.asarray(find_faces(load_photo(ASTRONAUT).pixels)[0]["landmarks"])


def test_presets_are_listed_and_resolve_on_the_face():
    from dragedit.pipeline.core.presets import presets
    from dragedit.pipeline.core.requests import EditRequest

    assert len(presets()) == 8
    proc = run_main("presets", "--json")
    assert proc.returncode == 0 and {r["name"] for r in json.loads(proc.stdout)} == set(presets())
    lm = _lm()
    smile = EditRequest.from_preset("smile").resolved(lm)
    (l1, ly1, l2, ly2), (r1, ry1, r2, ry2) = smile.drags
    assert ly2 < ly1 and ry2 < ry1 and l2 < l1 and r2 > r1  # corners up and out
    half = EditRequest.from_preset("smile", 0.5).resolved(lm).drags[0]
    assert np.isclose(half[3] - half[1], (ly2 - ly1) / 2)
    assert not EditRequest.from_preset("smile", 0).moves


@pytest.mark.parametrize("args,needle", [
    (["--preset", "smiel"], "--preset smiel: no such preset; use one of smile, smile_wide"),
    (["--preset", "smile", "--strength", "5"], "--strength 5"),
    (["--preset", "smile", "--strength", "nan"], "--strength nan"),
    (["--strength", "0.5", "--drag", "201,139:199,133"], "--strength 0.5: goes with a preset"),
    (["--preset", "smile", "--drag", "201,139:199,133"], "not both"),
    (["--drag", "201,139:199,133", "--mask-region", "ears"], "--mask-region ears: use one of mouth"),
])
def test_bad_presets_are_one_line(tmp_path, args, needle):
    proc = run_main("edit", ASTRONAUT, "-o", tmp_path / "o.png", *args)
    assert_user_error(proc, needle)
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1
    assert not (tmp_path / "o.png").exists()


def test_strength_zero_gives_the_original_bit_for_bit(tmp_path):
    photo = tmp_path / "me.png"
    photo.write_bytes(ASTRONAUT.read_bytes())
    proc = run_main("edit", photo, "--preset", "smile", "--strength", "0", "-o", tmp_path / "same.png", *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "same.png").read_bytes() == photo.read_bytes()
    assert not (tmp_path / "me.dragedit").exists()  # no work, no session


def test_mouth_region_covers_the_mouth_not_the_eyes():
    from dragedit.pipeline.imaging.regions import region_mask

    lm = _lm()
    m = region_mask("mouth", lm, (512, 512))
    assert all(m[int(round(y)), int(round(x))] == 1 for x, y in lm[48:68])
    assert not any(m[int(round(y)), int(round(x))] for x, y in lm[36:48])


@pytest.mark.slow
def test_an_edit_in_the_mouth_region_leaves_the_eyes_bit_identical(tmp_path):
    proc = run_main("edit", ASTRONAUT, "--preset", "smile_wide", "-o", tmp_path / "o.png", "--session", tmp_path / "s",
                    *QUICK, "--steps", "40")
    assert proc.returncode == 0, proc.stderr
    lm = _lm()
    out = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"))
    src = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    x0, y0 = lm[36:48].min(0).astype(int) - 4
    x1, y1 = lm[36:48].max(0).astype(int) + 5
    assert np.array_equal(out[y0:y1, x0:x1], src[y0:y1, x0:x1])  # the eyes did not move
    assert (out != src).any()  # the mouth did
    info = json.loads((tmp_path / "s" / "edits" / "001" / "edit.json").read_text())
    assert info["mask_region"] == "mouth" and info["preset"] == "smile_wide" and info["mask"]


def _oriented(fmt: str, path):
    """The astronaut, cropped to 512 x 400, stored turned on its side with an EXIF orientation that turns it back."""
    img = Image.open(ASTRONAUT).convert("RGB").crop((0, 40, 512, 440))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.transpose(Image.Transpose.ROTATE_90).save(path, format=fmt, quality=80, exif=exif.tobytes())
    return img


@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix", [("HEIF", ".heic"), ("AVIF", ".avif")])
def test_phone_photos_edit_end_to_end(tmp_path, fmt, suffix):
    if fmt == "HEIF":
        pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is a dependency; pip install it")
        pillow_heif.register_heif_opener()
    photo = tmp_path / f"phone{suffix}"
    upright = _oriented(fmt, photo)
    assert photo.stat().st_size < 200_000
    proc = run_main("edit", photo, "--preset", "smile", *QUICK, "--json")  # -o left out: the default output
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / ("phone_edited.jpg" if suffix == ".heic" else "phone_edited.avif")
    assert json.loads(proc.stdout)["output"] == str(out)
    if suffix == ".heic":
        assert "phone.heic is written as phone_edited.jpg" in proc.stderr
    with Image.open(out) as img:
        assert img.size == upright.size  # upright: the orientation was applied, not lost
        near = np.abs(np.asarray(img.convert("RGB")).astype(int) - np.asarray(upright).astype(int)).mean()
    assert near < 12  # the same picture, the right way up


@pytest.mark.slow
def test_every_face_of_a_photo_in_one_output(tmp_path):
    face = Image.open(ASTRONAUT).convert("RGB")
    two = Image.new("RGB", (1024, 512))
    two.paste(face, (0, 0))
    two.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    two.save(tmp_path / "two.png")
    proc = run_main("edit", tmp_path / "two.png", "--face", "all", "--preset", "smile_wide", "-o", tmp_path / "o.png",
                    *QUICK, "--steps", "40", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["faces"]) == 2
    assert (tmp_path / "two_face0.dragedit").is_dir() and (tmp_path / "two_face1.dragedit").is_dir()
    out = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"))
    src = np.asarray(two)
    changed = (out != src).any(axis=2)
    assert changed[:, :512].any() and changed[:, 512:].any()  # both faces edited, in one photo


def test_presets_in_edit_files_and_the_http_api(tmp_path):
    from dragedit.pipeline.core.requests import load_edit_file

    (tmp_path / "e.json").write_text(json.dumps({"edits": [{"preset": "brows_up", "strength": 0.5}]}))
    (req,) = load_edit_file(tmp_path / "e.json")
    assert req.mask_region == "brows" and req.extra == {"preset": "brows_up", "strength": 0.5}
    (tmp_path / "bad.json").write_text(json.dumps({"edits": [{"preset": "brows_up", "drags": ["1,2:3,4"]}]}))
    from dragedit.common.errors import UserError

    with pytest.raises(UserError, match="without"):
        load_edit_file(tmp_path / "bad.json")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from dragedit.pipeline.server.app import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(root=tmp_path / "root")), base_url="http://127.0.0.1:7860") as client:
        names = [p["name"] for p in client.get("/api/presets").json()["presets"]]
        assert "smile" in names
        with open(ASTRONAUT, "rb") as f:
            sid = client.post("/api/sessions", files={"photo": ("a.png", f, "image/png")}).json()["id"]
        res = client.get(f"/api/sessions/{sid}/presets/smile?strength=0.5")
        assert res.status_code == 200 and len(res.json()["drags"]) == 2 and res.json()["mask_region"] == "mouth"
        assert client.get(f"/api/sessions/{sid}/presets/nope").status_code == 404
        bad = client.post(f"/api/sessions/{sid}/edits", json={"preset": "nope"})
        assert bad.status_code == 400 and "smile" in bad.json()["error"]
        assert client.post(f"/api/sessions/{sid}/edits", json={"preset": "smile", "strength": 0}).status_code == 400
