"""One place for each rule, seen from the doors: the face rule, `--face all` checking every face before any work,
the step-by-step `align --session` / `invert --session`, the preview showing the picture the user wrote, the race
a waiting edit can lose, and a batch giving the bytes `dragedit edit` gives."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, QUICK, assert_user_error, run_main, sha

DRAG = "201,139:199,133"


def two_faces(tmp_path: Path) -> Path:
    face = Image.open(ASTRONAUT).convert("RGB")
    two = Image.new("RGB", (1024, 512))
    two.paste(face, (0, 0))
    two.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    two.save(tmp_path / "two.png")
    return tmp_path / "two.png"


# ---- the face rule, one for every door ---------------------------------------------------------------------
@pytest.mark.parametrize("value,ok", [(0, 0), (3, 3), ("2", 2), ("all", None), (-1, None), ("²", None), ("١", None),
                                      (True, None), (1.0, None), ("x", None)])
def test_one_face_rule(value, ok):
    from dragedit.common.errors import FieldError
    from dragedit.pipeline.imaging.faces import face_number

    if ok is None:
        with pytest.raises(FieldError, match="numbered from 0"):
            face_number(value)
    else:
        assert face_number(value) == ok
    assert face_number("all", every=True) == "all"
    with pytest.raises(FieldError, match="not both"):
        face_number(0, (10.0, 10.0))


@pytest.mark.parametrize("door", ["edit", "batch"])
def test_non_ascii_face_is_refused_by_every_cli_door(tmp_path, door):
    if door == "edit":
        proc = run_main("edit", ASTRONAUT, "--drag", DRAG, "-o", tmp_path / "o.png", "--face", "²")
    else:
        (tmp_path / "e.json").write_text(json.dumps({"edits": [{"drags": [DRAG]}]}))
        proc = run_main("batch", ASTRONAUT, "--edits", tmp_path / "e.json", "-o", tmp_path / "out", "--face", "١")
    assert_user_error(proc, "--face")
    assert "numbered from 0" in proc.stderr


def test_from_with_a_non_ascii_digit_names_no_edit(tmp_path):
    from dragedit.pipeline.core.errors import RequestError
    from dragedit.pipeline.core.session import Session

    with Session(tmp_path / "s", read_only=True) as s:
        for spec in ("²", "١", "1²"):
            with pytest.raises(RequestError, match="no such edit"):
                s.resolve_edit(spec)


def test_server_does_not_read_session_files():
    """The store and routes reach a session's files only through `Session`: no manifest, no layout file names."""
    import inspect

    from dragedit.pipeline.server import routes, store

    for module in (routes, store):
        source = inspect.getsource(module)
        for word in ("Manifest(", "MANIFEST_NAME", "L.ALIGNMENT", "L.EDIT_CROP", "L.composite_file", "L.ALIGN]"):
            assert word not in source, f"{module.__name__} uses {word}"


# ---- --face all: everything checked before any work -------------------------------------------------------
def test_face_all_refuses_photo_pixel_drags_on_several_faces_before_any_work(tmp_path):
    photo = two_faces(tmp_path)
    proc = run_main("edit", photo, "--face", "all", "--drag", DRAG, "-o", tmp_path / "o.png", *QUICK)
    assert_user_error(proc, "anchored drags")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.png"]  # no session, no output


def test_face_all_request_that_misses_a_crop_leaves_no_inversion_or_edit_anywhere(tmp_path):
    """An anchored drag whose target leaves the face crop: refused after alignment, before any face's PTI."""
    face = Image.open(ASTRONAUT).convert("RGB")
    photo = Image.new("RGB", (1024, 560))
    photo.paste(face, (0, 0))
    photo.paste(face.resize((256, 256)), (700, 304))
    photo.save(tmp_path / "two.png")
    proc = run_main("edit", tmp_path / "two.png", "--face", "all", "--drag", "@chin:0,120%", "-o", tmp_path / "o.png",
                    *QUICK)
    assert_user_error(proc, "outside the aligned face crop")
    for folder in tmp_path.glob("two_face*.dragedit"):
        manifest = json.loads((folder / "session.json").read_text())
        assert sorted(manifest["stages"]) == ["align"], folder
    assert not (tmp_path / "o.png").exists()


def test_face_all_at_strength_zero_writes_the_photo_unchanged(tmp_path):
    photo = two_faces(tmp_path)
    proc = run_main("edit", photo, "--face", "all", "--preset", "smile", "--strength", "0", "-o", tmp_path / "o.png",
                    *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert sha(tmp_path / "o.png") == sha(photo)
    assert not list(tmp_path.glob("*.dragedit"))


# ---- the step-by-step path ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_align_then_invert_then_drag_session_by_session(tmp_path):
    s = tmp_path / "s"
    proc = run_main("align", ASTRONAUT, "--session", s, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stages"] == {"align": "computed"}
    proc = run_main("invert", "--session", s, *QUICK[:4], "--offline", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stages"] == {"align": "reused", "invert": "computed"}
    inverted = sha(s / "invert" / "pivot.safetensors")
    proc = run_main("drag", s, "--drag", DRAG, "--steps", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["edits"] == ["edits/001"]
    assert sha(s / "invert" / "pivot.safetensors") == inverted  # the drag built on the inversion, not a new one


# ---- the preview shows what the user wrote ------------------------------------------------------------------
@pytest.mark.slow
def test_preview_after_paste_generated_shows_the_generated_picture(tmp_path):
    s, out = tmp_path / "s", tmp_path / "gen.png"
    proc = run_main("edit", ASTRONAUT, "--session", s, "--drag", DRAG, "-o", out, "--paste", "generated", *QUICK)
    assert proc.returncode == 0, proc.stderr
    made = s / "composite" / "edit-001.png"
    before = sha(made)
    proc = run_main("preview", s, "-o", tmp_path / "preview.png", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sha(made) == before  # not recomputed with the default (warp) paste
    assert np.array_equal(np.asarray(Image.open(made).convert("RGB")), np.asarray(Image.open(out).convert("RGB")))
    manifest = json.loads((s / "session.json").read_text())
    assert manifest["stages"]["composite/001"]["params"]["paste"] == "generated"


# ---- the race a waiting edit can lose -----------------------------------------------------------------------
@pytest.mark.slow
def test_an_edit_planned_before_another_committed_is_refused(tmp_path):
    from dragedit.pipeline.core.edit import EditJob, check_edit, run_edit
    from dragedit.pipeline.core.errors import SessionBusy
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig

    settings = EditSettings(device="cpu", offline=True, pti=PTIConfig(pivot_steps=10, tune_steps=5),
                            drag=DragConfig(max_steps=3))
    s = tmp_path / "s"
    first = check_edit(EditJob(s, requests=[edit_request(DRAG)], photo=ASTRONAUT), settings)
    second = check_edit(EditJob(s, requests=[edit_request("246,141:249,135")], photo=ASTRONAUT), settings)
    assert first.edits == second.edits == ["edits/001"]  # both reserved the same number
    run_edit(first)
    with pytest.raises(SessionBusy, match="changed while this edit waited"):
        run_edit(second)


# ---- a batch makes the bytes `dragedit edit` makes ----------------------------------------------------------
@pytest.mark.slow
def test_batch_output_is_byte_identical_to_edit(tmp_path):
    (tmp_path / "e.json").write_text(json.dumps({"edits": [{"drags": [DRAG]}]}))
    threads = ["--threads", "1"]
    proc = run_main("edit", ASTRONAUT, "--session", tmp_path / "s", "--edits", tmp_path / "e.json",
                    "-o", tmp_path / "edit.png", *QUICK, *threads)
    assert proc.returncode == 0, proc.stderr
    proc = run_main("batch", ASTRONAUT, "--edits", tmp_path / "e.json", "-o", tmp_path / "out", *QUICK, *threads)
    assert proc.returncode == 0, proc.stderr
    assert sha(tmp_path / "out" / "astronaut_edited.png") == sha(tmp_path / "edit.png")

