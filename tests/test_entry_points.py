"""The library's entry points check what they are given where the library begins: a wrong type is a typed
`UserError` naming the argument, never a raw ValueError, TypeError or AttributeError from deep inside, and
nothing is written."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ASTRONAUT

DRAG = "201,139:199,133"


def _table(tmp_path: Path, wide: Path):
    from dragedit import EditRequest, EditSettings, edit_photo, edit_request, preprocess
    from dragedit.pipeline.core.edit import EditJob, check_edit

    out, s = tmp_path / "o.png", tmp_path / "s"
    req = edit_request(DRAG)
    return [
        ("a string for the list of requests", lambda: edit_photo(ASTRONAUT, DRAG, out, s), "requests"),
        ("one request, not a list", lambda: edit_photo(ASTRONAUT, req, out, s), "requests"),
        ("a list of strings", lambda: edit_photo(ASTRONAUT, [DRAG], out, s), "EditRequest"),
        ("face_at as text", lambda: edit_photo(ASTRONAUT, [req], out, s, face_at="220,120"), "face at"),
        ("face_at with a NaN", lambda: edit_photo(ASTRONAUT, [req], out, s, face_at=(1.0, float("nan"))), "face at"),
        ("settings as a dict", lambda: edit_photo(ASTRONAUT, [req], out, s, settings={"device": "cpu"}), "settings"),
        ("photo as a number", lambda: edit_photo(123, [req], out, s), "photo"),
        ("output as a number", lambda: edit_photo(ASTRONAUT, [req], 5, s), "output"),
        ("a face below 0", lambda: edit_photo(ASTRONAUT, [req], out, s, face=-1), "numbered from 0"),
        ("a face as a word", lambda: edit_photo(ASTRONAUT, [req], out, s, face="x"), "numbered from 0"),
        ("a bool for overwrite's place", lambda: edit_photo(ASTRONAUT, [req], out, s, overwrite="yes"), "overwrite"),
        ("from as a list", lambda: edit_photo(ASTRONAUT, [req], out, s, from_spec=[1]), "from"),
        ("EditRequest(None)", lambda: EditRequest(None), "drags"),
        ("EditRequest of strings", lambda: EditRequest([DRAG]), "drags"),
        ("EditSettings(generator=5)", lambda: EditSettings(generator=5), "generator"),
        ("EditSettings(drag={})", lambda: EditSettings(drag={}), "drag"),
        ("EditSettings(offline='no')", lambda: EditSettings(offline="no"), "offline"),
        ("edit_request of a number", lambda: edit_request(5), "drags"),
        ("edit_request with a preset and drags", lambda: edit_request(DRAG, preset="smile"), "preset"),
        ("a preset named by a number", lambda: edit_request(preset=3), "preset"),
        ("a strength without a preset", lambda: edit_request(DRAG, strength=0.5), "strength"),
        ("check_edit of a dict", lambda: check_edit({"session": s}), "job"),
        ("EditJob with a str of requests", lambda: EditJob(s, requests="x"), "requests"),
        ("EditJob with one path for tune_with", lambda: EditJob(s, tune_with=str(ASTRONAUT)), "tune with"),
        ("tune_with a crop that is not there",
         lambda: check_edit(EditJob(s, photo=ASTRONAUT, requests=[req], tune_with=[tmp_path / "no.png"])), "tune with"),
        ("tune_with a photo that is not square",
         lambda: check_edit(EditJob(s, photo=ASTRONAUT, requests=[req], tune_with=[wide])), "not square"),
        ("preprocess with a face_at list of 3", lambda: preprocess(ASTRONAUT, s, face_at=[1, 2, 3]), "face at"),
    ]


def test_entry_point_table(tmp_path, tmp_path_factory):
    from PIL import Image

    from dragedit.common.errors import UserError

    wide = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.new("RGB", (96, 64), "grey").save(wide)
    for what, call, needle in _table(tmp_path, wide):
        with pytest.raises(UserError) as info:
            call()
        assert needle.lower() in str(info.value).lower(), (what, str(info.value))
        assert "\n" not in str(info.value), what
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written by any of them
