"""Never lose a photo: the original is sacred, bad numbers are refused, every failure is one line.

Each case asserts exit status 2, a single `dragedit: error:` line on stderr (no traceback) and, where it
applies, that neither the photo nor the session changed.
"""
from __future__ import annotations

import errno
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, QUICK, assert_user_error, run_cli, sha

DRAG = "201,139:199,133"


def tree_hash(folder) -> dict:
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A photo with a finished one-edit session (embedded generator, few steps)."""
    root = tmp_path_factory.mktemp("done")
    photo = root / "in" / "photo.png"
    photo.parent.mkdir()
    shutil.copy(ASTRONAUT, photo)
    proc = run_cli("edit", photo, "--drag", DRAG, "-o", root / "out.png", "--session", root / "s", *QUICK)
    assert proc.returncode == 0, proc.stderr
    return {"root": root, "photo": photo, "session": root / "s", "photo_sha": sha(photo)}


# ---- 1. the output is never the input photo ---------------------------------------------------------------
@pytest.mark.slow
def test_output_equal_to_input_is_refused_in_every_spelling(done, tmp_path):
    photo, s = done["photo"], done["session"]
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    hard = tmp_path / "hard.png"
    os.link(photo, hard)
    before = tree_hash(s)
    spellings = [photo, photo.parent / ".." / "in" / "photo.png", link, hard]
    for out in spellings:
        assert_user_error(run_cli("edit", photo, "--drag", DRAG, "-o", out, "--session", s, *QUICK), "is the input photo")
    assert_user_error(run_cli("composite", s, "-o", photo), "is the input photo")
    assert_user_error(run_cli("composite", s, "-o", link), "is the input photo")
    assert sha(photo) == done["photo_sha"] and tree_hash(s) == before
    assert not (photo.parent / "photo.png.orig").exists()


@pytest.mark.slow
def test_overwrite_keeps_the_original(done, tmp_path):
    photo = tmp_path / "p.png"
    shutil.copy(done["photo"], photo)
    s = tmp_path / "s"
    shutil.copytree(done["session"], s)
    proc = run_cli("composite", s, "-o", photo, "--photo", photo, "--overwrite", "--paste", "generated")
    assert proc.returncode == 0, proc.stderr
    assert "original is kept as" in proc.stderr
    assert sha(tmp_path / "p.png.orig") == done["photo_sha"]
    assert sha(photo) != done["photo_sha"]


# ---- 2. alpha and 16-bit input ----------------------------------------------------------------------------
@pytest.mark.slow
def test_rgba_in_gives_rgba_out_with_alpha_bit_identical(tmp_path):
    rgba = np.dstack([np.asarray(Image.open(ASTRONAUT).convert("RGB")), np.full((512, 512), 255, np.uint8)])
    rgba[:40, :40] = (216, 210, 207, 0)  # a transparent corner with colour under it
    rgba[40:60, :40, 3] = 128
    src = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(src)
    proc = run_cli("edit", src, "--drag", DRAG, "-o", tmp_path / "o.png", *QUICK)
    assert proc.returncode == 0, proc.stderr
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (512, 512, 4)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    assert np.array_equal(out[:40, :40], rgba[:40, :40])  # the hidden colour survives too
    proc = run_cli("composite", tmp_path / "a.dragedit", "-o", tmp_path / "o.jpg")
    assert proc.returncode == 0 and "flattened onto white" in proc.stderr


@pytest.mark.slow
def test_16_bit_input_says_the_output_is_8_bit(tmp_path):
    gray = np.asarray(Image.open(ASTRONAUT).convert("L")).astype(np.uint16) * 257
    src = tmp_path / "g16.png"
    Image.fromarray(gray).save(src)  # a 16-bit grayscale PNG
    assert Image.open(src).mode.startswith("I")
    proc = run_cli("edit", src, "--drag", DRAG, "-o", tmp_path / "o.png", *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert "16 bits per channel" in proc.stderr


# ---- 3 and 6. numbers are finite and in range -------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--lr", "inf"], "finite"), (["--lr", "nan"], "finite"), (["--r1", "nan"], "finite"),
    (["--pivot-steps", "0"], "--pivot-steps 0"), (["--checkpoint-every", "0"], "--checkpoint-every 0"),
    (["--pti-seed", "-1"], "--pti-seed -1"), (["--face", "-1"], "numbered from 0"),
])
def test_bad_numbers_in_edit(tmp_path, args, needle):
    photo = tmp_path / "p.png"
    shutil.copy(ASTRONAUT, photo)
    assert_user_error(run_cli("edit", photo, "--drag", DRAG, "-o", tmp_path / "o.png", *args), needle)
    assert sha(photo) == sha(ASTRONAUT) and sorted(os.listdir(tmp_path)) == ["p.png"]


@pytest.mark.parametrize("args,needle", [(["--psi", "nan"], "--psi"), (["--seed", "-1"], "--seed -1"),
                                         (["--seed", str(2 ** 64)], "out of range")])
def test_bad_numbers_in_generate(tmp_path, args, needle):
    assert_user_error(run_cli("generate", "-o", tmp_path / "g.png", *args), needle)
    assert not (tmp_path / "g.png").exists()


# ---- 4. a manifest of the wrong shape is recomputed, not a traceback --------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("manifest", ["[1, 2, 3]", '{"stages": {"align": {"outputs": 42}}}',
                                      '{"stages": {"align": null}}'])
def test_malformed_manifest_is_recomputed(done, tmp_path, manifest):
    s = tmp_path / "s"
    shutil.copytree(done["session"], s)
    (s / "session.json").write_text(manifest)
    proc = run_cli("history", s)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "recomputed" in proc.stderr
    proc = run_cli("edit", done["photo"], "--drag", DRAG, "-o", tmp_path / "o.png", "--session", s, *QUICK, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "recomputed" in proc.stderr and json.loads(proc.stdout)["stages"]["align"] == "computed"
    assert proc.stderr.count("will be recomputed") == 1  # said once, though the checks and the work both read it


# ---- 5. a full disk while writing the PTI checkpoint ------------------------------------------------------
def test_full_disk_during_pti_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    import torch

    import dragedit.common.atomic as atomic
    from dragedit.pipeline.cli.main import main

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 1344 vs 1296")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 0))
    code = main(["invert", str(ASTRONAUT), "-o", str(tmp_path / "inv"), "--pivot-steps", "3", "--tune-steps", "2",
                 "--checkpoint-every", "1", "--offline"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if "dragedit: error:" in ln]
    assert len(lines) == 1 and lines[0].startswith("dragedit: error: no space left on device")
    assert "run the same command again" in lines[0]
    assert "Traceback" not in err
    assert not list((tmp_path / "inv").glob(".*.part"))  # no half-written checkpoint left behind


# ---- 7 and 9. edit files --------------------------------------------------------------------------------
@pytest.mark.parametrize("content,needle", [
    ({"edits": [{"drags": [DRAG], "mask": "missing.png"}]}, "mask file not found"),
    ({"edits": [{"drags": DRAG}]}, "\"drags\": give a non-empty list"),
    ({"edits": [{"drags": [["a", "b", "c", "d"]]}]}, "list of 4 finite numbers"),
    ({"edits": [{"drags": [[1, 2, 3]]}]}, "list of 4 finite numbers"),
    ({"edits": "x"}, "non-empty list"),
    ({"edits": [None]}, "must be an object"),
    ([1, 2], "non-empty list"),
])
def test_bad_edit_files(tmp_path, content, needle):
    f = tmp_path / "edits.json"
    f.write_text(json.dumps(content))
    proc = run_cli("edit", ASTRONAUT, "--edits", f, "-o", tmp_path / "o.png")
    assert_user_error(proc, needle)
    for leak in ("list indices", "NoneType", "object is not", "KeyError"):
        assert leak not in proc.stderr


# ---- 8. messages name the option the user typed ----------------------------------------------------------
@pytest.mark.slow
def test_composite_unknown_edit_names_edit_option(done, tmp_path):
    proc = run_cli("composite", done["session"], "--edit", "99", "-o", tmp_path / "c.png")
    assert_user_error(proc, "--edit 99: no such edit")
    assert "--from" not in proc.stderr


# ---- 10. an error is one line: no note before it ----------------------------------------------------------
def test_error_after_alignment_comes_without_the_generator_note(tmp_path):
    proc = run_cli("edit", ASTRONAUT, "--drag", "10,10:12,12", "-o", tmp_path / "o.png", "--offline")
    assert_user_error(proc, "outside the aligned face crop")
    assert "note:" not in proc.stderr


# ---- 11. smaller points -------------------------------------------------------------------------------------
def test_folder_as_output(tmp_path):
    assert_user_error(run_cli("edit", ASTRONAUT, "--drag", DRAG, "-o", tmp_path), "it is a folder")


def test_failed_first_run_leaves_no_session_folder(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (120, 130, 140)).save(blank)
    proc = run_cli("edit", blank, "--drag", "10,10:12,12", "-o", tmp_path / "o.png", "--offline")
    assert_user_error(proc, "no face found")
    assert not (tmp_path / "blank.dragedit").exists()


def test_unrelated_folder_is_not_taken_as_a_session(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "session.json").write_text('{"owner": "another program"}')
    before = tree_hash(other)
    assert_user_error(run_cli("edit", ASTRONAUT, "--drag", DRAG, "-o", tmp_path / "o.png", "--session", other),
                   "not a dragedit session")
    assert tree_hash(other) == before and sorted(os.listdir(other)) == ["session.json"]


@pytest.mark.slow
def test_history_reads_a_busy_session(done):
    from dragedit.pipeline.core.manifest import SessionLock

    with SessionLock(done["session"]):
        proc = run_cli("history", done["session"])
    assert proc.returncode == 0 and "edit 001" in proc.stdout, proc.stderr


def test_read_only_file_system_is_named(tmp_path, monkeypatch):
    from dragedit.common.errors import UserError
    from dragedit.common.images import check_writable

    class RO:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda p: RO())
    with pytest.raises(UserError, match="read-only"):
        check_writable(tmp_path / "o.png")


def test_session_folder_write_failure_is_named(tmp_path, monkeypatch):
    from pathlib import Path

    from dragedit.common.errors import UserError
    from dragedit.pipeline.core.session import Session

    def refuse(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(UserError, match="read-only") as info:
        with Session(tmp_path / "new"):
            pass
    assert str(info.value).count("\n") == 0 and "new" in str(info.value)  # one line, naming the folder


# ---- 12. the sweep: every door answers in one line, and nothing is half done ---------------------------------
def _photo(tmp_path, name="p.png"):
    shutil.copy(ASTRONAUT, tmp_path / name)
    return tmp_path / name


def _sweep_cases(tmp_path):
    """(argv, needle) pairs, each a user error that must be one line, exit 2, no traceback, nothing written."""
    photo = _photo(tmp_path)
    (tmp_path / "photo.jpg").mkdir()
    (tmp_path / "empty.jpg").write_bytes(b"")
    heic = tmp_path / "cut.heic"
    from PIL import Image

    Image.open(ASTRONAUT).convert("RGB").save(tmp_path / "whole.png")
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    Image.open(ASTRONAUT).convert("RGB").save(heic, "HEIF")
    heic.write_bytes(heic.read_bytes()[:600])  # truncated
    out = tmp_path / "o.png"
    return [
        (["edit", photo, "--drag", DRAG, "-o", out, "--from=²"], "--from"),
        (["edit", photo, "--drag", DRAG, "-o", out, "--from=١"], "--from"),
        (["edit", photo, "--drag", DRAG, "-o", out, "--face", "²"], "numbered from 0"),
        (["edit", photo, "--drag", DRAG, "-o", out, "--threads", "١"], "--threads ١ is not a whole number"),
        (["edit", photo, "--preset", "smile", "--strength", "1e309", "-o", out], "--strength 1e309 is not"),
        (["edit", tmp_path / "photo.jpg", "--drag", DRAG, "-o", out], "is a folder, not a photo"),
        (["edit", tmp_path / "empty.jpg", "--drag", DRAG, "-o", out], "HEIC or AVIF"),
        (["edit", heic, "--drag", DRAG, "-o", out], "could not be decoded"),
        (["drag", tmp_path / "nowhere", "--drag", DRAG], "does not exist"),
        (["edit", photo, "--bogus"], "unrecognized arguments"),
        (["edit"], "required: photo"),
    ]


def test_sweep_user_errors_are_one_line(tmp_path):
    for argv, needle in _sweep_cases(tmp_path):
        before = sorted(p.name for p in tmp_path.iterdir())
        assert_user_error(run_cli(*argv), needle)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv  # nothing written


def test_sweep_user_errors_with_json_are_one_json_document(tmp_path):
    for argv, needle in _sweep_cases(tmp_path):
        proc = run_cli(*argv, "--json")
        assert_user_error(proc, None)
        doc = json.loads(proc.stdout)  # exactly one document
        assert set(doc) == {"error"} and set(doc["error"]) == {"kind", "field", "message"}, doc
        assert doc["error"]["message"] and "\n" not in doc["error"]["message"]


def test_negative_numbers_are_taken_as_the_option_s_value(tmp_path):
    proc = run_cli("edit", _photo(tmp_path), "--drag", "-5,10:-3,8", "-o", tmp_path / "o.png")
    assert_user_error(proc, "point (-5, 10) is outside")  # read as a drag, not as an unknown option


def test_models_list_takes_json_after_the_verb_too():
    for argv in (["models", "list", "--json"], ["models", "--json", "list"]):
        proc = run_cli(*argv)
        assert proc.returncode == 0, proc.stderr
        assert isinstance(json.loads(proc.stdout), list)


def test_the_default_output_is_never_replaced_silently(tmp_path):
    photo = _photo(tmp_path)
    (tmp_path / "p_edited.png").write_bytes(b"made by the user")
    assert_user_error(run_cli("edit", photo, "--drag", DRAG), "p_edited.png exists")
    assert (tmp_path / "p_edited.png").read_bytes() == b"made by the user"


def test_batch_output_inside_a_session_is_refused(done, tmp_path):
    (tmp_path / "e.json").write_text(json.dumps({"edits": [{"drags": [DRAG]}]}))
    before = tree_hash(done["session"])
    proc = run_cli("batch", done["photo"], "--edits", tmp_path / "e.json", "-o", done["session"] / "more")
    assert_user_error(proc, "inside the dragedit session")
    assert tree_hash(done["session"]) == before


@pytest.mark.slow
def test_drag_with_the_photo_gone_names_what_works(done, tmp_path):
    s = tmp_path / "s"
    shutil.copytree(done["session"], s)
    manifest = json.loads((s / "session.json").read_text())
    manifest["identity"]["photo_path"] = str(tmp_path / "gone.png")  # the photo moved away
    (s / "session.json").write_text(json.dumps(manifest))
    assert_user_error(run_cli("drag", s, "--drag", DRAG), "dragedit edit NEWPATH --session SESSION")


@pytest.mark.slow
def test_animated_and_cmyk_sources_are_said_in_a_note(tmp_path):
    from PIL import Image

    face = Image.open(ASTRONAUT).convert("RGB")
    face.save(tmp_path / "anim.gif", save_all=True, append_images=[face.rotate(3)], duration=100)
    face.convert("CMYK").save(tmp_path / "print.jpg", quality=95)
    for name, needle in (("anim.gif", "is animated (2 frames)"), ("print.jpg", "is CMYK")):
        proc = run_cli("edit", tmp_path / name, "--drag", DRAG, "-o", tmp_path / f"{name}.png", *QUICK)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.count(needle) == 1, proc.stderr


@pytest.mark.slow
def test_a_recomputed_edit_is_not_called_reused(done, tmp_path):
    s = tmp_path / "s"
    shutil.copytree(done["session"], s)
    (s / "edits" / "001" / "crop.png").write_bytes(b"tampered")
    proc = run_cli("edit", done["photo"], "--drag", DRAG, "-o", tmp_path / "o.png", "--session", s, *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert "(reused" not in proc.stdout
