"""For scripts and photo tools: anchored drags, the face order, `dragedit preview`, `dragedit batch` (resume,
kill -9, workers) and its Ray backend on a local instance."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from dragedit.pipeline.imaging.faces import FaceChoiceError, choose_face, order_faces
from dragedit.pipeline.imaging.anchors import LANDMARK_NAMES, inter_ocular
from dragedit.pipeline.core.requests import EditRequest, load_edit_file, parse_drag
from dragedit.common.errors import UserError
from tests.conftest import ASTRONAUT, QUICK, REPO, assert_user_error, run_cli, sha

ANCHORED = {"edits": [{"drags": ["@mouth_left:-3%,-6%", "@mouth_right:3%,-6%", "@chin:0,4%"]}]}


# ---- anchored drags --------------------------------------------------------------------------------------
def _landmarks() -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48] = [100.0, 100.0], [180.0, 100.0]  # eye centres 80 px apart
    lm[48], lm[54], lm[8] = [110.0, 200.0], [170.0, 200.0], [140.0, 260.0]
    return lm


def test_anchored_drags_resolve_on_the_landmarks():
    lm = _landmarks()
    assert inter_ocular(lm) == pytest.approx(80.0)
    req = EditRequest([parse_drag("@mouth_left:-5%,-10%"), parse_drag("@54:4,-2"), parse_drag("10,20:30,40")])
    assert req.resolved(lm).drags == [(110.0, 200.0, 106.0, 192.0), (170.0, 200.0, 174.0, 198.0),
                                      (10.0, 20.0, 30.0, 40.0)]
    assert req.resolved(lm).extra["drag_specs"] == ["@mouth_left:-5%,-10%", "@54:4,-2", [10.0, 20.0, 30.0, 40.0]]
    assert LANDMARK_NAMES["mouth_left"] == 48 and LANDMARK_NAMES["chin"] == 8 and LANDMARK_NAMES["nose_tip"] == 30


def test_anchored_drags_in_edit_files(tmp_path):
    f = tmp_path / "e.json"
    f.write_text(json.dumps(ANCHORED))
    (req,) = load_edit_file(f)
    assert [d.index for d in req.drags] == [48, 54, 8]
    f.write_text(json.dumps({"edits": [{"drags": ["@mouth_middle:1,1"]}]}))
    with pytest.raises(UserError, match="edit 1: \"drags\": unknown landmark @mouth_middle; use 0-67 or one of: .*mouth_left"):
        load_edit_file(f)


@pytest.mark.parametrize("spec,needle", [("@mouth_middle:1,1", "one of: jaw_left_upper"), ("@68:1,1", "use 0-67"),
                                         ("@chin:5", "@NAME:DX,DY"), ("@chin:1x,2", "@NAME:DX,DY")])
def test_bad_anchor_is_one_line(tmp_path, spec, needle):
    proc = run_cli("edit", ASTRONAUT, "--drag", spec, "-o", tmp_path / "o.png", *QUICK)
    assert_user_error(proc, needle)
    assert proc.returncode == 2 and not (tmp_path / "astronaut.dragedit").exists()


# ---- which face ------------------------------------------------------------------------------------------
def test_face_order_and_face_at():
    faces = order_faces([{"box": [300, 10, 400, 110]}, {"box": [0, 0, 100, 100]}, {"box": [150, 0, 200, 50]}])
    assert [f["box"][0] for f in faces] == [0, 300, 150]  # equal areas left to right, then smaller
    assert choose_face(faces, face_at=(350.0, 60.0)) == 1
    assert choose_face(faces, 2) == 2
    with pytest.raises(FaceChoiceError, match="face at 500,500: on none of the 3 face"):
        choose_face(faces, face_at=(500.0, 500.0))
    with pytest.raises(FaceChoiceError, match="only 3 face"):
        choose_face(faces, 3)


def test_face_at_on_the_command_line(tmp_path):
    proc = run_cli("align", ASTRONAUT, "-o", tmp_path / "a", "--face-at", "220,150", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    box = out["faces"][out["face_index"]]["box"]
    assert box[0] <= 220 <= box[2] and box[1] <= 150 <= box[3]
    assert_user_error(run_cli("align", ASTRONAUT, "-o", tmp_path / "b", "--face-at", "5,500"), "on none of")
    assert_user_error(run_cli("align", ASTRONAUT, "-o", tmp_path / "c", "--face-at", "5,5", "--face", "0"),
                      "not both")


# ---- preview ---------------------------------------------------------------------------------------------
def test_preview_of_a_photo(tmp_path):
    proc = run_cli("preview", ASTRONAUT, "-o", tmp_path / "p.png", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["faces"]) >= 1 and len(out["faces"][0]["landmarks"]) == 68
    img = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert img.shape[0] >= photo.shape[0] and img.shape[1] >= photo.shape[1]  # small photos are enlarged
    assert_user_error(run_cli("preview", tmp_path / "p.png", "-o", tmp_path / "q.png", "--edit", "1"),
                      "needs a session")


# ---- batch -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two face photos and one without a face, plus an edit file of anchored drags."""
    root = tmp_path_factory.mktemp("batch_in")
    folder = root / "photos"
    folder.mkdir()
    shutil.copy(ASTRONAUT, folder / "a.png")
    flipped = np.ascontiguousarray(np.asarray(Image.open(ASTRONAUT).convert("RGB"))[:, ::-1])
    Image.fromarray(flipped).save(folder / "b.png")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((160, 200, 3)) * 60 + 100).astype(np.uint8)).save(folder / "c_noface.png")
    edits = root / "edits.json"
    edits.write_text(json.dumps(ANCHORED))
    return {"folder": folder, "edits": edits}


BATCH = ["--pivot-steps", "40", "--tune-steps", "10", "--steps", "3", "--checkpoint-every", "4", "--offline",
         "--device", "cpu"]


def batch_cmd(photos, out, *extra):
    return ["batch", photos["folder"], "--edits", photos["edits"], "-o", out, *BATCH, *extra]


def outputs(out) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(out.glob("*_edited.*"))}


@pytest.fixture(scope="module")
def uninterrupted(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    proc = run_cli(*batch_cmd(photos, out, "--json"))
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "result": json.loads(proc.stdout)}


@pytest.mark.slow
def test_batch_edits_every_face_photo_and_skips_no_face(uninterrupted):
    res, out = uninterrupted["result"], uninterrupted["out"]
    assert res["counts"] == {"done": 2, "skipped": 1, "failed": 0}
    rows = {os.path.basename(r["photo"]): r for r in res["rows"]}
    assert rows["c_noface.png"]["status"] == "skipped" and rows["c_noface.png"]["reason"] == "no face"
    for name in ("a.png", "b.png"):
        row = rows[name]
        assert row["status"] == "done" and os.path.isfile(row["output"])
        assert {"align", "invert", "drag", "composite", "total"} <= set(row["seconds"])
        edit = json.loads((out / f"{name[0]}.dragedit" / "edits" / "001" / "edit.json").read_text())
        assert edit["drag_specs"][0] == "@mouth_left:-3%,-6%"
        al = json.loads((out / f"{name[0]}.dragedit" / "align" / "alignment.json").read_text())
        assert edit["drags_photo"][0][:2] == al["landmarks"][48]  # resolved on this photo's own landmarks
    # The mirrored photo's mouth corners are elsewhere: the same file gave other pixel drags.
    drags = [json.loads((out / f"{n}.dragedit/edits/001/edit.json").read_text())["drags_photo"] for n in "ab"]
    assert drags[0] != drags[1]
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == res["counts"]
    assert (out / "batch.csv").read_text().splitlines()[0].startswith("photo,face,status,reason")


@pytest.mark.slow
def test_batch_rerun_reuses_sessions(photos, uninterrupted):
    before = outputs(uninterrupted["out"])
    proc = run_cli(*batch_cmd(photos, uninterrupted["out"], "--json"))
    assert proc.returncode == 0, proc.stderr
    for row in json.loads(proc.stdout)["rows"]:
        if row["status"] == "done":
            assert set(row["stages"].values()) == {"reused"}, row
    assert outputs(uninterrupted["out"]) == before


@pytest.mark.slow
def test_batch_kill_9_then_rerun_is_hash_identical(photos, uninterrupted, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dragedit", *map(str, batch_cmd(photos, out, "--json"))]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    checkpoint = out / "b.dragedit" / "invert" / "pti_checkpoint.pt"
    deadline = time.time() + 600
    while time.time() < deadline and not checkpoint.exists():  # the second photo is halfway through PTI
        assert proc.poll() is None, "the batch ended before the second photo's PTI checkpoint appeared"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "b_edited.png").exists(), "the batch finished before it could be killed"
    again = run_cli(*batch_cmd(photos, out, "--json"))
    assert again.returncode == 0, again.stderr
    rows = {os.path.basename(r["photo"]): r for r in json.loads(again.stdout)["rows"]}
    assert set(rows["a.png"]["stages"].values()) == {"reused"}  # only the unfinished photo ran again
    assert "computed" in rows["b.png"]["stages"].values()
    assert outputs(out) == outputs(uninterrupted["out"])


@pytest.mark.slow
def test_batch_with_two_workers_keys_the_thread_count(photos, uninterrupted, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(uninterrupted["out"], out)
    proc = run_cli(*batch_cmd(photos, out, "--json", "--workers", "2", "--threads", "1"))
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["counts"] == {"done": 2, "skipped": 1, "failed": 0}
    for row in res["rows"]:
        if row["status"] == "done":  # a 2-thread result is never resumed or reused by 1-thread workers
            assert row["stages"]["invert"] == "computed" and row["stages"]["align"] == "reused"
    manifest = json.loads((out / "a.dragedit" / "session.json").read_text())
    assert manifest["stages"]["invert"]["params"]["compute"] == {"device": "cpu", "threads": 1}


@pytest.mark.slow
def test_batch_on_a_local_ray_instance(photos, uninterrupted, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dragedit[ray]'); CI installs it")
    from dragedit.pipeline.batch.run import BatchConfig, run_batch
    from dragedit.pipeline.core.settings import EditSettings

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        res = run_batch([photos["folder"]], load_edit_file(photos["edits"]), tmp_path / "out",
                        config=BatchConfig(backend="ray"),
                        settings=EditSettings(threads=_threads_of(uninterrupted["out"]), pti=_pti(), drag=_drag()),
                        progress=False)
    finally:
        ray.shutdown()
    assert res.counts() == {"done": 2, "skipped": 1, "failed": 0}
    assert outputs(tmp_path / "out") == outputs(uninterrupted["out"])  # the same sessions as a local batch


def _threads_of(out) -> int:
    manifest = json.loads((out / "a.dragedit" / "session.json").read_text())
    return manifest["stages"]["invert"]["params"]["compute"]["threads"]


def _pti():
    from dragedit.inversion import PTIConfig

    return PTIConfig(pivot_steps=40, tune_steps=10, checkpoint_every=4, allow_download=False)


def _drag():
    from dragedit.draggan import DragConfig

    return DragConfig(max_steps=3)


def test_batch_input_errors(tmp_path):
    edits = tmp_path / "e.json"
    edits.write_text(json.dumps(ANCHORED))
    assert_user_error(run_cli("batch", tmp_path / "missing", "--edits", edits, "-o", tmp_path / "o"), "not a file")
    (tmp_path / "empty").mkdir()
    assert_user_error(run_cli("batch", tmp_path / "empty", "--edits", edits, "-o", tmp_path / "o"), "no photos")
    assert_user_error(run_cli("batch", ASTRONAUT, "--edits", edits, "-o", tmp_path / "o", "--workers", "0"),
                      "--workers 0")
    assert_user_error(run_cli("batch", ASTRONAUT, "--edits", edits, "-o", tmp_path / "o", "--face", "x"), "'all'")


@pytest.mark.slow
def test_batch_face_all_makes_a_session_per_face(photos, tmp_path):
    two = tmp_path / "two"
    two.mkdir()
    face = Image.open(photos["folder"] / "a.png").convert("RGB")
    both = Image.new("RGB", (1024, 512))
    both.paste(face, (0, 0))
    both.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    both.save(two / "a.png")
    proc = run_cli("batch", two, "--edits", photos["edits"], "-o", tmp_path / "out", "--face", "all", "--json", *BATCH)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert [(r["face"], r["status"]) for r in rows] == [(0, "done"), (1, "done")]
    for i in (0, 1):
        assert rows[i]["output"].endswith(f"a_face{i}_edited.png") and (tmp_path / "out" / f"a_face{i}.dragedit").is_dir()


def test_preview_never_replaces_the_photo(tmp_path):
    photo = tmp_path / "p.png"
    shutil.copy(ASTRONAUT, photo)
    before = sha(photo)
    for out in (photo, tmp_path / "." / "p.png"):
        proc = run_cli("preview", photo, "-o", out)
        assert_user_error(proc, "would replace the photo")
    assert sha(photo) == before


def test_a_batch_never_takes_its_own_outputs_as_inputs(tmp_path):
    from dragedit.pipeline.batch.run import without_outputs

    for name in ("a.png", "b.jpg", "a_edited.png", "a_face1_edited.png", "b_edited.jpg", "c_edited.png"):
        (tmp_path / name).write_bytes(b"x")
    photos = sorted(tmp_path.iterdir())
    kept = [p.name for p in without_outputs(photos, tmp_path)]
    assert kept == ["a.png", "b.jpg", "c_edited.png"]  # c_edited.png is nobody's output: a photo
    assert [p.name for p in without_outputs(photos, tmp_path / "elsewhere")] == [p.name for p in photos]


def test_a_batch_takes_its_fair_share_beside_other_dragedit_processes(monkeypatch):
    """Beside an idle server and an edit, a batch's share of 2 cores is 1 thread, as `edit` takes (it took
    cores / workers = 2 and oversubscribed the machine)."""
    from dragedit.pipeline.batch import photo
    from dragedit.pipeline.core.settings import EditSettings

    monkeypatch.setattr(photo, "fair_share_threads", lambda: 1)  # 2 cores, 3 dragedit processes
    assert photo.BatchConfig(workers=1).threads_per_worker(EditSettings()) == 1
    monkeypatch.setattr(photo, "fair_share_threads", lambda: 4)  # a quiet 4-core machine
    assert photo.BatchConfig(workers=2).threads_per_worker(EditSettings()) == 2
    assert photo.BatchConfig(workers=2).threads_per_worker(EditSettings(threads=3)) == 3  # asked: used
