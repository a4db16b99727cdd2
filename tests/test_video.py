"""A clip through the whole path: a clip made here (the test photo moving, a sine-wave sound, two frames without
the face), edited once on its keyframe; its frames, timestamps and sound kept, the pixels outside the face and
the faceless frames untouched, a kill mid-clip resumed to the same bytes, the same command reusing everything,
and every bad input refused in one line before any work."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, QUICK, assert_user_error, run_main, sha

av = pytest.importorskip("av", reason="PyAV is a dependency (pip install -e .)")

FRAMES, FACELESS, RATE = 10, 2, 10
SMILE = ["--drag", "@mouth_left:-4%,-8%", "--drag", "@mouth_right:4%,-8%"]
FAST = [*QUICK, "--steps", "6"]


def make_clip(path: Path, frames: int = FRAMES, faceless: int = FACELESS, sound: bool = True,
              rotation: int = 0, back: int = 0) -> Path:
    """H.264 at RATE fps: the test photo drifting a few pixels a frame, then `faceless` grey frames; an AAC sine.
    `rotation`: the frames are stored turned, with a display matrix that turns them back (a phone's clip).
    `back`: after the grey frames, this many of the photo again, smaller and elsewhere (a cut back to the face)."""
    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    import cv2

    small = np.full_like(face, 90)
    small[180:180 + 332, 160:160 + 332] = cv2.resize(face, (332, 332), interpolation=cv2.INTER_AREA)

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 512, 512, "yuv420p"
        v.options = {"crf": "12"}
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if sound:
            a = out.add_stream("aac", rate=16000)
            a.layout = "mono"
        for i in range(frames + faceless + back):
            if i < frames:
                m = np.float32([[1, 0, 1.5 * i], [0, 1, 0.5 * i]])
                rgb = cv2.warpAffine(face, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
            elif i < frames + faceless:
                rgb = np.full((512, 512, 3), 90, np.uint8)
            else:
                rgb = cv2.warpAffine(small, np.float32([[1, 0, -(i - frames - faceless)], [0, 1, 0]]), (512, 512),
                                     borderMode=cv2.BORDER_REPLICATE)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90)), format="rgb24")
            frame.pts = i
            frame.time_base = v.codec_context.time_base = __import__("fractions").Fraction(1, RATE)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            t = np.arange(int(16000 * (frames + faceless + back) / RATE)) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(samples), 1024):
                chunk = samples[k:k + 1024][None]
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate, af.pts = 16000, k
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def edited(clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("edited")
    proc = run_main("edit", clip, *SMILE, "-o", root / "out.mkv", "--session", root / "s", *FAST, "--json")
    assert proc.returncode == 0, proc.stderr
    return root, json.loads(proc.stdout)


def _frames(path: Path) -> list[np.ndarray]:
    from dragedit.pipeline.imaging.video import frames

    return [rgb for _, _, rgb in frames(path)]


@pytest.mark.slow
def test_a_clip_keeps_its_frames_timing_sound_and_every_pixel_outside_the_face(clip, edited):
    from dragedit.pipeline.imaging.video import timestamps

    root, res = edited
    out = root / "out.mkv"
    assert res["frames"] == FRAMES + FACELESS and res["edited"] >= FRAMES - 2 and res["untouched"] == FACELESS
    src_t, src_a = timestamps(clip)
    out_t, out_a = timestamps(out)
    assert len(out_t) == len(src_t) and max(abs(a - b) for a, b in zip(src_t, out_t)) < 0.001
    assert out_a == src_a and src_a[0][0] == "aac"  # the sound's packets, all of them, unchanged codec
    before, after = _frames(clip), _frames(out)
    track = json.loads((root / "s" / "video" / "track.json").read_text())["frames"]
    changed_any = False
    for i, (a, b) in enumerate(zip(before, after)):
        diff = (a != b).any(axis=2)
        if str(i) not in track:
            assert not diff.any(), f"frame {i} has no face but changed"
            continue
        lm = np.asarray(track[str(i)]["landmarks"])
        x0, y0 = lm.min(0) - 0.5 * (lm.max(0) - lm.min(0))
        x1, y1 = lm.max(0) + 0.5 * (lm.max(0) - lm.min(0))
        ys, xs = np.nonzero(diff)
        changed_any |= bool(len(xs))
        assert len(xs) == 0 or (xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1), i
    assert changed_any  # the edit is there


@pytest.mark.slow
def test_the_same_command_again_reuses_everything(clip, edited):
    root, first = edited
    proc = run_main("edit", clip, *SMILE, "-o", root / "again.mkv", "--session", root / "s", *FAST, "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert not any(k.endswith("computed") for k in res["stages"]), res["stages"]
    assert set(res["keyframe_stages"].values()) == {"reused"}
    assert sha(root / "again.mkv") == sha(root / "out.mkv")


@pytest.mark.slow
def test_a_clip_session_writes_its_edit_again_from_what_it_keeps(clip, edited, tmp_path):
    """A door serving a clip the CLI edited writes it again from the session's patches (nothing computed): the same
    bytes; and a session whose edit stopped before its end (a frame without its patch) holds no whole edit."""
    import shutil

    from dragedit.pipeline.core.video import finished_clip_edit, write_session_clip

    root, _ = edited
    made = finished_clip_edit(root / "s")
    assert made is not None
    write_session_clip(root / "s", tmp_path / "again.mkv")
    assert sha(tmp_path / "again.mkv") == sha(root / "out.mkv")
    s = tmp_path / "s"
    shutil.copytree(root / "s", s)
    patch = next((s / "video" / "frames").glob("*/patch.png"))
    patch.unlink()  # a patch deleted since: no whole edit (not a traceback when it is written)
    assert finished_clip_edit(s) is None
    shutil.rmtree(s)
    shutil.copytree(root / "s", s)
    data = json.loads((s / "session.json").read_text())
    frame = sorted(k for k in data["stages"] if k.startswith("video/frames/"))[2]
    del data["stages"][frame]  # killed before this frame's patch was committed
    (s / "session.json").write_text(json.dumps(data))
    assert finished_clip_edit(s) is None
    (s / "video" / "track.json").write_text("{}")  # a tampered track: no edit is trusted on it
    assert finished_clip_edit(s) is None


@pytest.mark.slow
def test_a_second_edit_reuses_the_keyframe_inversion_and_the_track(clip, edited, tmp_path):
    import shutil

    root, _ = edited
    s = tmp_path / "s"
    shutil.copytree(root / "s", s)
    proc = run_main("edit", clip, "--drag", "@brow_left:0,-6%", "-o", tmp_path / "brows.mkv", "--session", s, *FAST,
                    "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["keyframe_stages"]["align"] == res["keyframe_stages"]["invert"] == "reused"
    assert res["stages"].get("track reused") == 1 and res["stages"].get("fields computed")


@pytest.mark.slow
def test_kill_mid_clip_then_resume_gives_the_same_bytes(clip, edited, tmp_path):
    root, _ = edited
    cmd = [sys.executable, "-m", "dragedit", "edit", str(clip), *SMILE, "-o", str(tmp_path / "k.mkv"), "--session",
           str(tmp_path / "s"), *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fields = tmp_path / "s" / "video" / "fields"
    deadline = time.time() + 600
    while time.time() < deadline and (not fields.is_dir() or len(os.listdir(fields)) < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "k.mkv").exists()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert sha(tmp_path / "k.mkv") == sha(root / "out.mkv")


@pytest.mark.slow
def test_frames_folder_and_mp4_outputs(clip, edited, tmp_path):
    root, _ = edited
    proc = run_main("edit", clip, *SMILE, "-o", tmp_path / "frames", "--session", root / "s", *FAST)
    assert proc.returncode == 0, proc.stderr
    pngs = sorted((tmp_path / "frames").glob("frame-*.png"))
    assert len(pngs) == FRAMES + FACELESS
    times = json.loads((tmp_path / "frames" / "frames.json").read_text())["frames"]
    assert [t["frame"] for t in times] == list(range(FRAMES + FACELESS))
    mkv = _frames(root / "out.mkv")
    assert all(np.array_equal(np.asarray(Image.open(p)), f) for p, f in zip(pngs, mkv))
    proc = run_main("edit", clip, *SMILE, "-o", tmp_path / "o.mp4", "--session", root / "s", *FAST, "--crf", "20")
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio


def test_bad_clip_inputs_are_one_line_before_any_work(clip, tmp_path):
    import shutil

    local = tmp_path / "clip.mp4"
    shutil.copy(clip, local)
    (tmp_path / "cut.mp4").write_bytes(local.read_bytes()[: local.stat().st_size // 3])
    (tmp_path / "text.mp4").write_text("not a video")
    out = tmp_path / "o.mkv"
    cases = [
        (["edit", tmp_path / "text.mp4", *SMILE, "-o", out], "not a video"),
        (["edit", tmp_path / "cut.mp4", *SMILE, "-o", out], "not a video"),
        (["edit", local, *SMILE, "-o", out, "--keyframe", "99"], "--keyframe 99"),
        (["edit", local, *SMILE, "-o", out, "--keyframe", str((FRAMES + 0.5) / RATE)], "no face on the keyframe"),
        (["edit", local, *SMILE, "-o", local], "is the clip itself"),
        (["edit", local, *SMILE, "-o", tmp_path / "o.avi"], "a clip is written as"),
        (["edit", local, *SMILE, "-o", out, "--start", "5"], "--start 5"),
        (["edit", local, *SMILE, "-o", out, "--crf", "99"], "--crf 99"),
        (["edit", ASTRONAUT, *SMILE, "-o", out.with_suffix(".png"), "--keyframe", "1"], "go with a clip"),
        (["edit", local, *SMILE, "-o", out, "--paste", "generated"], "--paste generated"),
        (["edit", local, *SMILE, "-o", out, "--from", "1"], "--from goes with photos"),
    ]
    for argv, needle in cases:
        before = sorted(p.name for p in tmp_path.iterdir())
        assert_user_error(run_main(*argv, *QUICK), needle)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv
    assert sha(local) == sha(clip)  # the clip is never written


def test_too_little_disk_is_refused_before_any_work(clip, tmp_path, monkeypatch):
    import shutil

    from dragedit.pipeline.core import video

    monkeypatch.setattr(video.shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10, 9, 1))
    assert_user_error(run_main("edit", clip, *SMILE, "-o", tmp_path / "o.mkv", *QUICK), "too little disk")
    assert not list(tmp_path.iterdir())


def test_without_o_the_output_is_never_over_an_existing_file(clip, tmp_path):
    import shutil

    local = tmp_path / "c.mp4"
    shutil.copy(clip, local)
    (tmp_path / "c_edited.mp4").write_bytes(b"mine")
    assert_user_error(run_main("edit", local, *SMILE, *QUICK), "c_edited.mp4 exists")
    assert (tmp_path / "c_edited.mp4").read_bytes() == b"mine"


def test_a_clip_is_recognised_by_content_not_suffix(clip, tmp_path):
    import shutil

    from dragedit.pipeline.imaging.video import is_video

    shutil.copy(clip, tmp_path / "clip.jpg")
    assert is_video(tmp_path / "clip.jpg") and not is_video(ASTRONAUT)
    gif = tmp_path / "a.gif"
    face = Image.open(ASTRONAUT).convert("RGB")
    face.save(gif, save_all=True, append_images=[face.rotate(2)])
    assert not is_video(gif)  # an animated GIF stays a photo (its first frame, said in a note)
    face.save(tmp_path / "still.avif")  # ISO-BMFF like an .mp4, but a still image's brand: a photo
    assert not is_video(tmp_path / "still.avif")


@pytest.mark.slow
def test_a_batch_edits_the_clips_among_its_inputs(clip, tmp_path):
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / "clip.mp4")
    shutil.copy(ASTRONAUT, folder / "photo.png")
    (tmp_path / "e.json").write_text(json.dumps({"edits": [{"drags": ["@mouth_left:-4%,-8%"]}]}))
    proc = run_main("batch", folder, "--edits", tmp_path / "e.json", "-o", tmp_path / "out", *FAST, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    assert len(_frames(tmp_path / "out" / "clip_edited.mp4")) == FRAMES + FACELESS
    assert (tmp_path / "out" / "photo_edited.png").is_file()


def test_preview_of_a_clip_shows_its_keyframe(clip, tmp_path):
    proc = run_main("preview", clip, "-o", tmp_path / "p.png", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["keyframe_seconds"] == 0.0 and len(doc["faces"]) == 1
    assert Image.open(tmp_path / "p.png").size[0] >= 512


@pytest.mark.slow
def test_preview_of_a_clip_session_is_a_before_after_strip(edited, tmp_path):
    root, _ = edited
    proc = run_main("preview", root / "s", "-o", tmp_path / "strip.png")
    assert proc.returncode == 0, proc.stderr
    strip = np.asarray(Image.open(tmp_path / "strip.png"))
    assert strip.shape[0] == 2 * 256 + 4 and strip.shape[1] >= 256
    top, bottom = strip[:256], strip[260:]
    assert (top != bottom).any()  # the edit shows


@pytest.mark.slow
def test_photo_commands_on_a_clip_session_say_what_it_is(edited, tmp_path):
    root, _ = edited
    for argv in (["drag", root / "s", *SMILE], ["composite", root / "s", "-o", tmp_path / "c.png"]):
        assert_user_error(run_main(*argv), "is a clip's")


@pytest.mark.slow
def test_a_rotated_phone_clip_is_edited_upright_and_keeps_its_rotation(tmp_path):
    """Stored sideways with a display matrix (as phones film): the face is found on the upright frames, the
    output keeps the matrix, and every pixel outside the face is the source's as displayed."""
    from dragedit.pipeline.imaging.faces import NoFaceError, find_faces
    from dragedit.pipeline.imaging.video import frames, probe_video

    clip = make_clip(tmp_path / "phone.mp4", frames=4, faceless=0, sound=False, rotation=90)
    info = probe_video(clip)
    assert info.rotation == 90 and (info.width, info.height) == (512, 512)
    with av.open(str(clip)) as c:
        stored = next(c.decode(video=0)).to_ndarray(format="rgb24")
    with pytest.raises(NoFaceError):  # as stored, the face lies on its side: dlib finds none
        find_faces(stored)
    out = tmp_path / "out.mkv"
    proc = run_main("edit", clip, *SMILE, "-o", out, "--session", tmp_path / "s", *FAST, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["edited"] >= 3
    assert probe_video(out).rotation == 90
    src = [rgb for _, _, rgb in frames(clip, 90)]
    got = [rgb for _, _, rgb in frames(out, 90)]
    assert len(src) == len(got) == 4
    moved = 0
    for s, e in zip(src, got):
        changed = (s != e).any(axis=2)
        if changed.any():
            moved += 1
            mouth = np.asarray(find_faces(s)[0]["landmarks"])[48:68].mean(axis=0)  # on the upright frame
            ys, xs = np.nonzero(changed)
            assert changed.mean() < 0.1 and np.hypot(xs.mean() - mouth[0], ys.mean() - mouth[1]) < 40
    assert moved >= 3


@pytest.mark.slow
def test_shared_tuning_over_sampled_frames(clip, tmp_path):
    """`--tune-frames 3`: three followed frames, spread over the clip, are cropped into the session and the
    keyframe's PTI tunes the generator on them too; the same command again reuses the crops and the tuning."""
    s = tmp_path / "s"
    args = ("edit", clip, *SMILE, "-o", tmp_path / "out.mkv", "--session", s, *FAST, "--tune-frames", "3", "--json")
    proc = run_main(*args)
    assert proc.returncode == 0, proc.stderr
    from dragedit.pipeline.core.video import tuning_frames

    followed = [int(i) for i in json.loads((s / "video" / "track.json").read_text())["frames"]]
    crops = sorted((s / "video" / "tuning").glob("*.png"))
    assert len(followed) >= FRAMES - 2 and [int(p.stem) for p in crops] == tuning_frames(followed, 0, 3)
    size = Image.open(s / "keyframe" / "align" / "aligned.png").size  # the generator's crop
    assert all(Image.open(p).size == size for p in crops)
    metrics = json.loads((s / "keyframe" / "invert" / "metrics.json").read_text())
    assert metrics["companions"] == 3 and metrics["timings"]["companions_s"] > 0
    log = json.loads((s / "keyframe" / "invert" / "loss_log.json").read_text())
    assert {e["companion"] for e in log if e["stage"] == "tune"} == {0, 1, 2}
    again = run_main(*args[:-3], "--tune-frames", "3", "--json", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["keyframe_stages"]["invert"] == "reused"
    assert_user_error(run_main("edit", clip, *SMILE, "--tune-frames", "-1", "-o", tmp_path / "x.mkv"), "tune")
    assert_user_error(run_main("edit", ASTRONAUT, *SMILE, "--tune-frames", "2", "-o", tmp_path / "x.png"),
                      "--tune-frames")


def test_the_keyframe_keeps_its_own_crop_in_a_smoothed_track():
    """The crop is smoothed over time (no jitter), but the keyframe keeps the crop its photo edit was made on,
    the correction fading over the same Gaussian: far from it the track is as smoothed as before."""
    from dragedit.pipeline.core.video_track import smooth_crops
    from dragedit.pipeline.imaging.align import crop_to_photo_matrix, ffhq_quad

    rng = np.random.default_rng(0)
    base = np.stack([np.linspace(150, 350, 68), 200 + 60 * np.sin(np.linspace(0, 6, 68))], axis=1)
    base[36:42], base[42:48], base[48], base[54] = [200, 200], [300, 200], [215, 320], [285, 320]
    linked = {i: base + [3.0 * i, 0] + rng.normal(0, 2.0, 2) for i in range(30)}  # moving, jittering
    plain, pinned = smooth_crops(linked, 128, 2.0), smooth_crops(linked, 128, 2.0, keyframe=8)
    own = crop_to_photo_matrix(ffhq_quad(linked[8]), 128)
    assert np.allclose(pinned[8]["c2p"], own, atol=1e-9)
    assert not np.allclose(plain[8]["c2p"], own, atol=1e-3)  # smoothing alone moved it
    assert np.allclose(pinned[25]["c2p"], plain[25]["c2p"], atol=1e-6)  # faded out far from it
    centre = np.array([np.asarray(pinned[i]["c2p"])[:2, 2] for i in range(30)])
    raw = np.array([crop_to_photo_matrix(ffhq_quad(linked[i]), 128)[:2, 2] for i in range(30)])
    assert np.abs(np.diff(centre, 2, axis=0)).mean() < 0.5 * np.abs(np.diff(raw, 2, axis=0)).mean()  # still smooth


def test_a_face_lost_at_a_cut_is_found_again_by_who_it_is():
    """Real dlib on the test photo: the face, then a cut to grey frames, then the same face elsewhere and smaller
    (position cannot link it). Its face descriptor finds it again on a searched frame, and it is followed from
    there both ways; the grey frames stay unlinked, and with `same_person` 0 nothing is found again."""
    import cv2

    from dragedit.pipeline.core.video_track import find_again, follow_face
    from dragedit.pipeline.imaging.faces import NoFaceError, face_descriptor, find_faces

    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    grey = np.full_like(face, 90)
    elsewhere = np.full_like(face, 90)
    elsewhere[200:200 + 307, 180:180 + 307] = cv2.resize(face, (307, 307), interpolation=cv2.INTER_AREA)
    shots = [face, face, grey, grey, elsewhere, elsewhere, elsewhere]

    def faces(rgb):
        try:
            return find_faces(rgb)
        except NoFaceError:
            return []

    found = {i: faces(rgb) for i, rgb in enumerate(shots)}
    followed = follow_face(found, 0, found[0][0]["box"], 0.5, 40)
    assert sorted(followed) == [0, 1]  # by position: lost at the cut, not found after it
    asked: list = []

    def describe(ask):
        asked.append(sorted(ask))
        return {i: [face_descriptor(shots[i], f["box"], f["landmarks"]) for f in ask[i]] for i in ask}

    linked = find_again(found, followed, describe, 0.5, 40, 0.55, every=2)
    assert sorted(linked) == [0, 1, 4, 5, 6]  # found on frame 4 or 6, followed to the whole shot
    assert asked == [[0, 1, 4, 6]]  # one pass: the followed frames' faces and the searched frames' faces
    assert all(linked[i] is found[i][0] for i in (4, 5, 6))
    assert find_again(found, followed, describe, 0.5, 40, 0.0, every=2) == followed


def test_a_face_at_the_same_place_after_a_cut_is_not_followed_by_position(tmp_path):
    """A cut to a shot with a face where the followed one was (the test photo, its colours turned: a hard cut
    for the shot detector, the same box for dlib): position alone no longer carries the track over the cut;
    the face is followed there only when it is found again by who it is (here it is the same person)."""
    from fractions import Fraction

    from dragedit.pipeline.core.video_track import faces_on_frames, find_again, follow_face
    from dragedit.pipeline.imaging.faces import face_descriptor

    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    turned = (face[:, :, ::-1] * 0.7).astype(np.uint8)
    shots = [face, face, face, turned, turned, turned]
    path = tmp_path / "cut.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt, v.options = 512, 512, "yuv420p", {"crf": "12"}
        for i, rgb in enumerate(shots):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, RATE)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    found = faces_on_frames(path, 0, 0, len(shots) - 1)
    assert [{f["shot"] for f in found[i]} for i in range(6)] == [{0}] * 3 + [{3}] * 3
    assert faces_on_frames(path, 0, 4, 5) == {i: found[i] for i in (4, 5)}  # a worker's part names shots alike
    followed = follow_face(found, 0, found[0][0]["box"], 0.5, 40)
    assert sorted(followed) == [0, 1, 2]  # the box on frame 3 is where it was, but in another shot
    decoded = _frames(path)

    def describe(ask):
        return {i: [face_descriptor(decoded[i], f["box"], f["landmarks"]) for f in ask[i]] for i in ask}

    assert sorted(find_again(found, followed, describe, 0.5, 40, 0.55, every=1)) == list(range(6))
    assert find_again(found, followed, describe, 0.5, 40, 0.0, every=1) == followed


def test_another_person_is_not_taken_for_the_face():
    """After a cut, only a face within `same_person` of the followed face's mean descriptor is that face again
    (the nearest one when several are); nothing is asked of dlib when the face was never lost."""
    from dragedit.pipeline.core.video_track import find_again

    def face(x, size=60):
        return {"box": [x, 100, x + size, 100 + size], "landmarks": [[x, 100]] * 68}

    me, other = np.zeros(128), np.full(128, 0.1)  # 1.13 apart
    found = {0: [face(10)], 1: [face(12)], 2: [face(300, 100)], 3: [face(300, 100), face(50)], 4: [face(52)]}
    who = {(2, 0): other, (3, 0): other, (3, 1): me + 0.02, (4, 0): me}
    followed = {0: found[0][0], 1: found[1][0]}

    def describe(ask):
        return {i: [me if i < 2 else who[(i, found[i].index(f))] for f in ask[i]] for i in ask}

    linked = find_again(found, followed, describe, 0.5, 40, 0.55, every=1)
    assert sorted(linked) == [0, 1, 3, 4] and linked[3] is found[3][1]  # the other person (frame 2) left out
    # a stranger who comes near on one frame only (a turn, a blur): the stretch he is followed over is refused
    strangers = {i: [face(300 + i, 100)] for i in range(2, 6)}
    near_once = {2: me + 0.04, 3: other, 4: other, 5: other}

    def describe_near(ask):
        return {i: [me if i < 2 else near_once[i] for _ in ask[i]] for i in ask}

    assert sorted(find_again({**found, **strangers}, followed, describe_near, 0.5, 40, 0.55, every=1)) == [0, 1]
    never = {i: [face(10 + i)] for i in range(5)}

    def no_call(ask):
        raise AssertionError("nothing was lost, yet dlib was asked")

    assert find_again(never, {i: never[i][0] for i in range(5)}, no_call, 0.5, 40, 0.55, every=1).keys() == set(range(5))


@pytest.mark.slow
def test_the_face_is_edited_again_after_a_cut_back_to_it(tmp_path):
    """The face, a cut to grey frames, then the same face smaller and elsewhere: the whole path finds it again by
    who it is and edits it there too (the grey frames untouched); `--same-person 0` edits only the first shot,
    reusing the keyframe's edit."""
    clip = make_clip(tmp_path / "cut.mp4", frames=3, faceless=2, back=3, sound=False)
    args = ("edit", clip, *SMILE, "--session", tmp_path / "s", *FAST, "--json")
    proc = run_main(*args, "-o", tmp_path / "out.mkv")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    track = json.loads((tmp_path / "s" / "video" / "track.json").read_text())["frames"]
    assert sorted(map(int, track)) == [0, 1, 2, 5, 6, 7] and res["edited"] >= 5 and res["untouched"] == 2
    assert res["found_again"] == 3
    before, after = _frames(clip), _frames(tmp_path / "out.mkv")
    assert not any((before[i] != after[i]).any() for i in (3, 4))
    assert sum((before[i] != after[i]).any() for i in (5, 6, 7)) >= 2  # the edit is there after the cut
    once = run_main(*args, "-o", tmp_path / "once.mkv", "--same-person", "0")
    assert once.returncode == 0, once.stderr
    res = json.loads(once.stdout)
    assert res["untouched"] == 5 and res["found_again"] == 0 and res["keyframe_stages"]["invert"] == "reused"
    again = _frames(tmp_path / "once.mkv")
    assert not any((before[i] != again[i]).any() for i in (3, 4, 5, 6, 7))


@pytest.mark.slow
def test_a_jump_cut_splits_the_track_into_shots(tmp_path):
    """The face, then straight away (a jump cut) the same face smaller and elsewhere: found again by who it is,
    the track says where the shot starts, and neither a run of pivots nor a frame's field window crosses it."""
    clip = make_clip(tmp_path / "jump.mp4", frames=3, faceless=0, back=3, sound=False)
    proc = run_main("edit", clip, *SMILE, "--session", tmp_path / "s", *FAST, "--json", "-o", tmp_path / "out.mkv")
    assert proc.returncode == 0, proc.stderr
    track = json.loads((tmp_path / "s" / "video" / "track.json").read_text())
    assert sorted(map(int, track["frames"])) == list(range(6)) and track["cuts"] == [3]
    stages = json.loads((tmp_path / "s" / "session.json").read_text())["stages"]
    assert sorted(stages["video/frames/000002"]["inputs"]["fields"]) == ["1", "2"]
    assert sorted(stages["video/frames/000003"]["inputs"]["fields"]) == ["3", "4"]
    assert stages["video/fields/000003"]["inputs"]["start"] == "keyframe"  # a run starts afresh at the cut


def test_same_person_is_checked_before_any_work(clip, tmp_path):
    assert_user_error(run_main("edit", clip, *SMILE, "--same-person", "-1", "-o", tmp_path / "x.mkv"),
                      "--same-person")
    assert_user_error(run_main("edit", ASTRONAUT, *SMILE, "--same-person", "0.5", "-o", tmp_path / "x.png"),
                      "--same-person")
    assert not (tmp_path / "x.mkv").exists() and not (tmp_path / "x.png").exists()


def test_tuning_frames_are_spread_over_the_followed_ones():
    from dragedit.pipeline.core.video import tuning_frames

    assert tuning_frames(list(range(10)), 0, 3) == [2, 5, 8]  # the middles of three equal parts of 1-9
    assert tuning_frames(list(range(10)), 5, 0) == []
    assert tuning_frames([5], 5, 4) == []
    assert tuning_frames([3, 4, 5], 4, 8) == [3, 5]  # fewer frames than asked: each once
    assert tuning_frames(list(range(100, 200)), 150, 4) == [112, 137, 162, 187]


@pytest.fixture(scope="module")
def edited_in_runs(clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    proc = run_main("edit", clip, *SMILE, "-o", root / "out.mkv", "--session", root / "s", *FAST, "--workers", "2",
                    "--json")
    assert proc.returncode == 0, proc.stderr
    return root, json.loads(proc.stdout)


def _children(pid: int) -> list[int]:
    """The multiprocessing workers `pid` started (their parent is `pid`)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_frames_fitted_in_runs_across_processes(clip, edited, edited_in_runs):
    """`--workers 2`: the faces detected in two processes (the same track), the followed frames cut into two
    runs, each fitted by its own process from the keyframe's pivot, with half the threads, the patches made in
    two processes too; the same frames, timing and sound, the edit where the one-process edit is, and
    the same command again reuses everything."""
    from dragedit.pipeline.imaging.video import timestamps

    root, res = edited_in_runs
    one_root, one = edited
    assert (res["frames"], res["edited"], res["untouched"]) == (one["frames"], one["edited"], one["untouched"])
    assert timestamps(root / "out.mkv") == timestamps(one_root / "out.mkv")
    track = root / "s" / "video" / "track.json"  # the faces detected in two processes: the same track
    assert track.read_bytes() == (one_root / "s" / "video" / "track.json").read_bytes()
    manifest = json.loads((root / "s" / "session.json").read_text())
    fields = {k: v for k, v in manifest["stages"].items() if k.startswith("video/fields/")}
    starts = sorted(int(k.rsplit("/", 1)[1]) for k, v in fields.items() if v["inputs"]["start"] == "keyframe")
    followed = sorted(int(k.rsplit("/", 1)[1]) for k in fields)
    assert len(starts) == 2 and starts[0] == followed[0] and starts[1] == followed[len(followed) // 2]
    assert fields[f"video/fields/{starts[1]:06d}"]["params"]["pivot_steps"] == 50  # run_start_steps
    threads = json.loads((root / "s" / "keyframe" / "session.json").read_text())["threads"]  # the clip's count
    patches = {k: v for k, v in manifest["stages"].items() if k.startswith("video/frames/")}
    assert len(patches) == len(fields) and all(v.get("bbox") for v in patches.values())  # made in the workers too
    assert res["stages"]["frames computed"] == len(fields)
    assert {v["params"]["compute"]["threads"] for v in fields.values()} == {max(1, threads // 2)}
    src, a, b = _frames(clip), _frames(one_root / "out.mkv"), _frames(root / "out.mkv")
    edit = sum(np.abs(e.astype(int) - s).sum() for s, e in zip(src, a))
    apart = sum(np.abs(e.astype(int) - f).sum() for e, f in zip(a, b))
    assert 0 < apart < 0.5 * edit, (apart, edit)  # another start for the second run, the same edit
    again = run_main("edit", clip, *SMILE, "-o", root / "again.mkv", "--session", root / "s", *FAST, "--workers",
                     "2", "--json")
    assert again.returncode == 0, again.stderr
    assert not any(k.endswith("computed") for k in json.loads(again.stdout)["stages"])
    assert sha(root / "again.mkv") == sha(root / "out.mkv")


@pytest.mark.slow
def test_the_workers_that_fit_the_fields_make_the_patches_too(clip, edited, tmp_path, monkeypatch):
    """With `workers` 2 the processes that fitted the fields make the patches once every field is in: one set
    of processes for both, none started (and no model loaded) again for the patches."""
    import shutil

    from dragedit.pipeline.cli import options as O
    from dragedit.pipeline.cli.main import build_parser
    from dragedit.pipeline.core import video_fields
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.video import VideoConfig, edit_video

    started = []
    fan_out = video_fields._in_processes
    monkeypatch.setattr(video_fields, "_in_processes", lambda s, jobs, counted: (
        started.append([job.patches for job in jobs]), fan_out(s, jobs, counted))[1])
    s = tmp_path / "s"
    shutil.copytree(edited[0] / "s", s)  # the keyframe edit and the track: the fields are fitted anew (2 workers)
    settings = O.settings_from(build_parser().parse_args(["edit", str(clip), *FAST]))
    res = edit_video(clip, [edit_request(*SMILE[1::2])], tmp_path / "w.mkv", session=s, settings=settings,
                     config=VideoConfig(workers=2))
    assert len(started) == 1 and [i for part in started[0] for i in part] == list(range(FRAMES))
    # (a run whose thread count matches the copied session's is reused, as the patches whose fields all are)
    assert res.stages.get("fields computed", 0) >= FRAMES // 2 and res.stages.get("frames computed", 0) >= 1
    assert res.stages.get("frames computed", 0) + res.stages.get("frames reused", 0) == FRAMES
    manifest = json.loads((s / "session.json").read_text())
    assert all(manifest["stages"][f"video/frames/{i:06d}"].get("bbox") for i in range(FRAMES))


@pytest.mark.slow
def test_kill_while_runs_are_fitted_then_resume_gives_the_same_bytes(clip, edited_in_runs, tmp_path):
    """kill -9 of the command while its workers fit frames: the workers die with it (none is left holding a core),
    and the same command resumes what they committed, to the bytes of an uninterrupted run."""
    root, _ = edited_in_runs
    cmd = [sys.executable, "-m", "dragedit", "edit", str(clip), *SMILE, "-o", str(tmp_path / "k.mkv"), "--session",
           str(tmp_path / "s"), *FAST, "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fields = tmp_path / "s" / "video" / "fields"
    deadline = time.time() + 600
    while time.time() < deadline and (not fields.is_dir() or len(os.listdir(fields)) < 4):
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() and b"spawn_main" in Path(f"/proc/{w}/cmdline").read_bytes()
                   for w in workers)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert sha(tmp_path / "k.mkv") == sha(root / "out.mkv")


def test_clip_frames_are_cut_into_runs_of_like_length():
    from dragedit.pipeline.core.video_fields import cut_runs

    assert cut_runs(list(range(10)), 1) == [list(range(10))]
    assert cut_runs(list(range(10)), 3) == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    assert cut_runs([4, 5, 9], 8) == [[4], [5], [9]]  # fewer frames than workers: a frame each
    assert cut_runs([2, 3, 7, 8], 2) == [[2, 3], [7, 8]]  # the frames' indices, gaps and all
    runs = cut_runs(list(range(281)), 4)
    assert sum(runs, []) == list(range(281)) and max(map(len, runs)) - min(map(len, runs)) <= 1


def test_bad_workers_are_one_line_errors(clip, tmp_path):
    for bad in ("0", "-2", "1.5", "two"):
        assert_user_error(run_main("edit", clip, *SMILE, "--workers", bad, "-o", tmp_path / "x.mkv"), "workers")
    assert_user_error(run_main("edit", ASTRONAUT, *SMILE, "--workers", "2", "-o", tmp_path / "x.png"), "--workers")
    assert not (tmp_path / "x.mkv").exists()


@pytest.mark.slow
def test_the_server_edits_a_clip(clip, edited, tmp_path):
    """Upload a clip to `dragedit serve`: its keyframe is the picture the points refer to; the edit's progress
    counts the frames; the edited clip downloads as MP4 with every frame, its timing and its sound; a clip's
    bad requests are 400s before any job."""
    pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'dragedit[web]')")
    from dragedit.pipeline.imaging.video import probe_video, timestamps
    from tests.conftest import serve_client, serve_config, upload
    from tests.test_server import _events

    with serve_client(serve_config(tmp_path / "serve")) as client:
        res = upload(client, clip, "clip.mp4")
        assert res.status_code == 201, res.text
        body = res.json()
        assert body["kind"] == "clip" and body["frames"] == FRAMES + FACELESS and body["keyframe"] == 0
        assert (body["width"], body["height"]) == (512, 512) and body["faces"]
        sid = body["id"]
        key = client.get(f"/api/sessions/{sid}/keyframe")
        assert key.status_code == 200 and key.headers["content-type"] == "image/png"
        assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(key.content)).convert("RGB")),
                              _frames(clip)[0])
        assert client.get(f"/api/sessions/{sid}/clip").status_code == 404  # no edit yet
        assert client.get(f"/api/sessions/{sid}").json()["edited_clip"] is False
        drags = client.get(f"/api/sessions/{sid}/presets/smile").json()["drags"]
        assert client.post(f"/api/sessions/{sid}/edits", json={"drags": drags, "from": 1}).status_code == 400
        assert client.post(f"/api/sessions/{sid}/edits", json={"drags": [[1, 1, 2, 2]]}).status_code == 400
        res = client.post(f"/api/sessions/{sid}/edits", json={"drags": drags})
        assert res.status_code == 202, res.text
        events = _events(client, sid)
        assert events[-1]["status"] == "done", events[-1]
        frames = [e for e in events if e["stage"] == "fields"]
        assert frames and frames[-1]["total"] == body["frames"] - FACELESS  # the followed frames, counted
        assert client.get(f"/api/sessions/{sid}").json()["edited_clip"] is True
        out = client.get(f"/api/sessions/{sid}/clip")
        assert out.status_code == 200 and out.headers["content-type"] == "video/mp4"
        got = tmp_path / "got.mp4"
        got.write_bytes(out.content)
        assert probe_video(got).frames == FRAMES + FACELESS
        assert timestamps(got)[1] == timestamps(clip)[1]  # every audio packet, as it was
        changed = sum(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(_frames(clip), _frames(got)))
        assert changed >= FRAMES - 2
        assert client.get(f"/api/sessions/{upload(client).json()['id']}/keyframe").status_code == 404  # a photo
        bad = tmp_path / "cut.mp4"
        bad.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
        res = upload(client, bad, "cut.mp4")
        assert res.status_code == 400 and "\n" not in res.json()["error"] and str(tmp_path) not in res.text


def test_the_server_opens_a_clip_session_the_cli_made(clip, edited, tmp_path, monkeypatch):
    """A clip session made by `dragedit edit CLIP --session` under the server's root opens as a clip: its keyframe
    is the picture, its faces the keyframe's, and an edit there reuses the session's alignment, tuning and track;
    a session whose clip has gone is a one-line 404."""
    pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'dragedit[web]')")
    import shutil

    from dragedit.pipeline.core.session import Session
    from dragedit.pipeline.imaging.video import probe_video, timestamps
    from tests.conftest import serve_client, serve_config
    from tests.test_server import _events

    root = tmp_path / "serve"
    root.mkdir()
    shutil.copytree(edited[0] / "s", root / "s")
    track_before = json.loads((root / "s" / "session.json").read_text())["stages"]["video/track"]
    with serve_client(serve_config(root)) as client:
        assert "s" in client.get("/api/sessions").json()["sessions"]
        res = client.get("/api/sessions/s")
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["kind"] == "clip" and body["frames"] == FRAMES + FACELESS and body["keyframe"] == 0
        assert body["face"] == 0 and body["faces"] and body["edited_clip"] is True  # the CLI's edit
        assert not set(body) & {"photo_path", "keyframe_path", "landmarks", "face_at", "part"}
        cli = client.get("/api/sessions/s/clip")  # written from the session's patches: the CLI's frames
        assert cli.status_code == 200, cli.text
        (tmp_path / "cli.mp4").write_bytes(cli.content)
        (got_t, got_a), (src_t, src_a) = timestamps(tmp_path / "cli.mp4"), timestamps(clip)
        assert got_a == src_a and max(abs(a - b) for a, b in zip(got_t, src_t)) < 0.001 and len(got_t) == len(src_t)
        cli_frames = _frames(tmp_path / "cli.mp4")
        assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(cli_frames, _frames(edited[0] / "out.mkv"))) < 2
        assert client.get("/api/sessions/s/clip").content == cli.content  # kept, not written again
        import errno

        import dragedit.pipeline.core.video as video_module

        def full(folder, output, crf=None):
            raise OSError(errno.ENOSPC, "No space left on device", str(output))

        (root / "uploads" / "s-edited.json").unlink()  # to be written again, on a full disk
        with monkeypatch.context() as m:
            m.setattr(video_module, "write_session_clip", full)
            res = client.get("/api/sessions/s/clip")
        assert res.status_code == 507 and "no space left" in res.json()["error"] and str(root) not in res.text
        key = client.get("/api/sessions/s/keyframe")
        assert key.status_code == 200
        assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(key.content)).convert("RGB")),
                              _frames(clip)[0])
        drags = client.get("/api/sessions/s/presets/smile?strength=0.5").json()["drags"]
        assert client.post("/api/sessions/s/edits", json={"drags": [[1, 1, 2, 2]]}).status_code == 400  # off face
        res = client.post("/api/sessions/s/edits", json={"drags": drags})
        assert res.status_code == 202, res.text
        assert res.json()["edit"] == 2  # the keyframe session's second edit
        events = _events(client, "s")
        assert events[-1]["status"] == "done", events[-1]
        out = client.get("/api/sessions/s/clip")
        assert out.status_code == 200
        got = tmp_path / "got.mp4"
        got.write_bytes(out.content)
        assert probe_video(got).frames == FRAMES + FACELESS
        assert out.content != cli.content  # the new edit, not the copy of the CLI's
    data = json.loads((root / "s" / "session.json").read_text())
    assert data["stages"]["video/track"] == track_before  # the track reused, not made again
    with Session(root / "s" / "keyframe", read_only=True) as ks:
        assert len(ks.edit_names()) == 2
    # the clip moved away: a one-line 404 naming the clip, no server path
    data["identity"]["photo_path"] = str(tmp_path / "gone.mp4")
    (root / "s" / "session.json").write_text(json.dumps(data))
    with serve_client(serve_config(root)) as client:
        res = client.get("/api/sessions/s")
        assert res.status_code == 404 and "gone.mp4" in res.json()["error"] and str(tmp_path) not in res.text


def test_runs_are_at_most_run_seconds_long_and_one_per_worker_at_least():
    from dragedit.pipeline.core.video_fields import cut_runs, plan_runs

    def lengths(runs):
        return [len(r) for r in runs]

    assert lengths(plan_runs(list(range(282)), 0, 30.0, 3.0, 1)) == [70, 71, 71, 70]  # 9.4 s: four runs
    assert plan_runs(list(range(282)), 0, 30.0, 0.0, 1) == [list(range(282))]  # no limit: the whole clip
    assert plan_runs(list(range(282)), 0, 30.0, 0.0, 2) == cut_runs(list(range(282)), 2)
    assert lengths(plan_runs(list(range(30)), 0, 30.0, 3.0, 2)) == [15, 15]  # a short clip: a run per worker
    assert len(plan_runs(list(range(90)), 0, 30.0, 3.0, 1)) == 1  # exactly 3 s
    assert len(plan_runs(list(range(5)), 0, 0.0, 3.0, 1)) == 5  # no frame rate known: a run is a frame
    for workers in (1, 2, 3, 5):  # one piece: the runs of before, whatever the workers
        assert plan_runs(list(range(61)), 0, 30.0, 3.0, workers) == cut_runs(list(range(61)), workers)


def test_runs_break_where_the_face_was_lost_and_at_the_keyframe():
    """A run's pivots are fitted in a chain, so none spans a frame where the face was lost (a cut: the pose after
    it may be anything), and the keyframe starts one (its own pivot fits it already)."""
    from dragedit.pipeline.core.video_fields import plan_runs

    followed = [*range(82, 97), *range(120, 211)]  # a shot, a cut, the keyframe's shot
    runs = plan_runs(followed, 120, 30.0, 3.0, 1)
    assert runs[0] == list(range(82, 97)) and runs[1][0] == 120 and all(len(r) <= 90 for r in runs)
    assert [i for r in runs for i in r] == followed
    assert plan_runs(list(range(20)), 8, 30.0, 0.0, 1) == [list(range(8)), list(range(8, 20))]
    assert len(plan_runs(followed, 120, 30.0, 0.0, 4)) == 4  # more runs for the workers: the longest cut first
    assert plan_runs([3, 4], 3, 30.0, 3.0, 8) == [[3], [4]]  # no more runs than frames


def _motion_blob(x: float, y: float, peak: float, size: int = 128) -> np.ndarray:
    """A field moving to the right, a Gaussian bump around (x, y)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    b = np.zeros((size, size, 2), np.float32)
    b[..., 0] = peak * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 6.0 ** 2))
    return b


def test_no_frame_moves_a_part_of_the_face_more_than_the_keyframe_did():
    """The same offset on another pose may make the generator move more of the face than the drag did: each frame's
    motion is held to the keyframe's at the same place of the face, carried there by the landmarks."""
    from dragedit.pipeline.core.video_fields import cap_motion, face_similarity

    blob = _motion_blob
    rng = np.random.default_rng(0)
    lm = rng.uniform(30, 100, (68, 2))
    same, right = face_similarity(lm, lm), face_similarity(lm, lm + [12, 0])
    key = blob(40, 60, 2.0)
    # twice the keyframe's motion where it moved: held to it (plus the slack)
    got = cap_motion(blob(40, 60, 4.0), key, same, 1.0, 0.25)
    assert abs(float(np.linalg.norm(got, axis=2).max()) - 2.25) < 0.05
    # less than the keyframe's: untouched
    assert np.array_equal(cap_motion(blob(40, 60, 1.5), key, same, 1.0, 0.25), blob(40, 60, 1.5))
    # the face 12 px to the right in this frame's crop: the keyframe's motion goes with it
    moved = blob(52, 60, 2.0)
    assert np.allclose(cap_motion(moved, key, right, 1.0, 0.25), moved, atol=0.1)
    assert np.linalg.norm(cap_motion(moved, key, same, 1.0, 0.25), axis=2).max() < 1.9  # (had it not gone)


def test_the_keyframes_motion_is_carried_to_each_frames_face():
    """Each frame's motion is mostly the keyframe's, put where the frame's face is: moved with it, and turned and
    scaled with it (a face turned a quarter in the crop moves down where the keyframe's moved right)."""
    from dragedit.pipeline.core.video_fields import carry_motion, face_similarity

    rng = np.random.default_rng(1)
    lm = rng.uniform(30, 100, (68, 2))
    key = _motion_blob(40, 60, 2.0)
    assert np.allclose(carry_motion(key, face_similarity(lm, lm)), key, atol=1e-3)
    assert np.allclose(carry_motion(key, face_similarity(lm, lm + [12, -5])), _motion_blob(52, 55, 2.0), atol=0.02)
    # half as large a face, about the crop's corner: the bump at (20, 30), half as wide and half as long
    half = carry_motion(key, face_similarity(lm, lm * 0.5))
    peak = np.unravel_index(np.argmax(np.linalg.norm(half, axis=2)), half.shape[:2])
    assert tuple(peak) == (30, 20) and abs(float(half[30, 20, 0]) - 1.0) < 0.05 and abs(float(half[30, 20, 1])) < 1e-3
    # a quarter turn about the crop's centre (x, y) -> (127 - y, x): motion to the right becomes motion down
    turn = np.stack([127 - lm[:, 1], lm[:, 0]], axis=1)
    turned = carry_motion(key, face_similarity(lm, turn))
    y, x = 40, 127 - 60
    assert abs(float(turned[y, x, 1]) - 2.0) < 0.05 and abs(float(turned[y, x, 0])) < 0.05
    # landmarks that tell nothing (all on one point): no similarity, and the keyframe's field as it is
    flat = np.full((68, 2), 50.0)
    assert face_similarity(flat, flat) is None and np.array_equal(carry_motion(key, None), key)


@pytest.mark.slow
def test_the_keyframes_share_is_in_each_frames_patch_and_only_the_patches_change_with_it(clip, edited, tmp_path):
    """The fixture's session (share 0.75) edited again with each frame's own motion alone (share 0): every field
    and the keyframe's patch are reused, every other followed frame's patch is made again, and those frames
    change while the keyframe stays the photo edit."""
    import shutil

    from dragedit.pipeline.cli import options as O
    from dragedit.pipeline.cli.main import build_parser
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.video import VideoConfig, edit_video

    root, first = edited
    s = tmp_path / "s"
    shutil.copytree(root / "s", s)
    settings = O.settings_from(build_parser().parse_args(["edit", str(clip), *FAST]))  # the fixture's, as the CLI
    res = edit_video(clip, [edit_request(*SMILE[1::2])], tmp_path / "own.mkv", session=s, settings=settings,
                     config=VideoConfig(keyframe_share=0))
    patches = {int(k.rsplit("/", 1)[1]): v for k, v in json.loads((s / "session.json").read_text())["stages"].items()
               if k.startswith("video/frames/")}
    followed = len(patches)
    assert res.stages == {"keyframe reused": 1, "track reused": 1, "fields reused": followed, "frames reused": 1,
                          "frames computed": followed - 1}, res.stages
    assert all("keyframe_share" not in v["params"] for v in patches.values())
    before, after = _frames(root / "out.mkv"), _frames(tmp_path / "own.mkv")
    key = first["keyframe"]
    assert np.array_equal(before[key], after[key])
    assert any(not np.array_equal(before[i], after[i]) for i in patches if i != key)


def test_the_keyframes_share_of_the_motion_is_a_number_from_0_to_1():
    from dragedit.common.errors import FieldError
    from dragedit.pipeline.core.video import VideoConfig

    assert VideoConfig().keyframe_share == 0.75 and VideoConfig(keyframe_share=0).keyframe_share == 0
    for bad in (1.5, -0.1, float("nan"), True, "half"):
        with pytest.raises(FieldError, match="keyframe share"):
            VideoConfig(keyframe_share=bad)


def test_nothing_is_carried_over_a_cut_where_the_face_is_on_both_sides():
    """A jump cut with the face followed on both sides (found again by who it is): no run of pivots, crop
    smoothing or field averaging crosses it. The crops on each side are those of that side alone."""
    from dragedit.pipeline.core.video_fields import plan_runs, shot_of
    from dragedit.pipeline.core.video_track import smooth_crops

    assert plan_runs(list(range(20)), 0, 30.0, 0.0, 1, cuts=[10]) == [list(range(10)), list(range(10, 20))]
    assert plan_runs(list(range(20)), 0, 30.0, 0.0, 1) == [list(range(20))]
    assert [shot_of(i, [10, 15]) for i in (0, 9, 10, 14, 15, 19)] == [0, 0, 1, 1, 2, 2]
    base = np.stack([np.linspace(150, 350, 68), 200 + 60 * np.sin(np.linspace(0, 6, 68))], axis=1)
    base[36:42], base[42:48], base[48], base[54] = [200, 200], [300, 200], [215, 320], [285, 320]
    linked = {i: base + [2.0 * i + (120 if i >= 10 else 0), 0] for i in range(20)}  # the face jumps at 10
    cut = smooth_crops(linked, 128, 2.0, cuts=[10])
    first = smooth_crops({i: linked[i] for i in range(10)}, 128, 2.0)
    second = smooth_crops({i: linked[i] for i in range(10, 20)}, 128, 2.0)
    assert all(np.allclose(cut[i]["c2p"], {**first, **second}[i]["c2p"]) for i in range(20))
    assert not np.allclose(smooth_crops(linked, 128, 2.0)[9]["c2p"], first[9]["c2p"], atol=1.0)  # blended before


@pytest.mark.slow
def test_runs_in_one_process_each_start_from_the_keyframe(clip, edited, tmp_path):
    """`run_seconds` 0.5 on the 1.2 s clip: the 10 followed frames in runs of at most half a second, in this process (the session's
    threads), each run's first frame fitted afresh from the keyframe's pivot; the keyframe edit, the track and
    the first run are reused from the one-run session."""
    import shutil

    from dragedit.pipeline.cli import options as O
    from dragedit.pipeline.cli.main import build_parser
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.video import VideoConfig, edit_video
    from dragedit.pipeline.core.video_fields import plan_runs
    from dragedit.pipeline.imaging.video import probe_video

    root, _ = edited
    s = tmp_path / "s"
    shutil.copytree(root / "s", s)
    settings = O.settings_from(build_parser().parse_args(["edit", str(clip), *FAST]))  # the fixture's, as the CLI
    res = edit_video(clip, [edit_request(*SMILE[1::2])], tmp_path / "runs.mkv", session=s, settings=settings,
                     config=VideoConfig(run_seconds=0.5))
    manifest = json.loads((s / "session.json").read_text())
    fields = {int(k.rsplit("/", 1)[1]): v for k, v in manifest["stages"].items() if k.startswith("video/fields/")}
    starts = sorted(i for i, v in fields.items() if v["inputs"]["start"] == "keyframe")
    runs = plan_runs(sorted(fields), 0, probe_video(clip).fps, 0.5, 1)
    assert len(runs) >= 2 and starts == [r[0] for r in runs] == [0, *starts[1:]]
    assert all(fields[i]["params"]["pivot_steps"] == 50 for i in starts[1:])
    threads = json.loads((s / "keyframe" / "session.json").read_text())["threads"]
    assert {v["params"]["compute"]["threads"] for v in fields.values()} == {threads}
    assert res.stages["fields reused"] == len(runs[0]) and res.stages["fields computed"] == len(fields) - len(runs[0])
    assert res.keyframe_stages["invert"] == "reused" and res.stages["track reused"] == 1


@pytest.mark.slow
def test_runs_as_ray_tasks_give_the_bytes_of_local_processes(clip, edited_in_runs, tmp_path):
    """`--workers 2 --backend ray` on a local Ray instance: each share of the runs is a Ray task with the same
    threads as a local worker's, its reports committed by the command, so the clip is the same bytes."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dragedit[ray]'); CI installs it")
    root, _ = edited_in_runs
    from dragedit.pipeline.core.library import edit_request
    from dragedit.pipeline.core.progress import ignore
    from dragedit.pipeline.core.video import VideoConfig, VideoJob, check_video
    from dragedit.pipeline.core.video_track import faces_on_frames, found_faces

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        proc = run_main("edit", clip, *SMILE, "-o", tmp_path / "ray.mkv", "--session", tmp_path / "s", *FAST,
                        "--workers", "2", "--backend", "ray", "--json")
        # the track's face detection goes to Ray tasks too: the faces found are those found here
        plan = check_video(VideoJob(clip, requests=[edit_request(*SMILE[1::2])], output=tmp_path / "d.mkv",
                                    session=tmp_path / "d"), config=VideoConfig(workers=2, backend="ray"))
        on_ray = found_faces(plan, ignore)
    finally:
        ray.shutdown()
    assert on_ray == faces_on_frames(clip, 0, 0, FRAMES + FACELESS - 1)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stages"]["fields computed"] == FRAMES
    assert sha(tmp_path / "ray.mkv") == sha(root / "out.mkv")
    assert_user_error(run_main("edit", clip, *SMILE, "--backend", "dask", "-o", tmp_path / "x.mkv"), "backend")
    assert_user_error(run_main("edit", ASTRONAUT, *SMILE, "--backend", "ray", "-o", tmp_path / "x.png"), "--backend")


def test_no_more_local_workers_than_cores():
    """A huge --workers starts no more processes than the machine has cores (each would load its own models);
    Ray's tasks go to a cluster and are not cut."""
    from dragedit.common.threads import available_cores
    from dragedit.pipeline.core.video import VideoConfig
    from dragedit.pipeline.core.video_fields import worker_count

    assert worker_count(VideoConfig(workers=100000)) == available_cores()
    assert worker_count(VideoConfig(workers=1)) == 1
    assert worker_count(VideoConfig(workers=100000, backend="ray")) == 100000
