"""What a script reads is clean: --json is one document on stdout, each warning is said once, a failed
download is not retried on every run, and small input cases get the right words (issue: the output photo)."""
from __future__ import annotations

import json
import shutil
import urllib.error

import pytest
from PIL import Image

from tests.conftest import ASTRONAUT, QUICK, run_cli, run_main


@pytest.mark.slow
def test_json_is_one_document_when_a_download_prints(tmp_path, monkeypatch):
    """Downloads enabled against a fake hub that prints its progress on stdout, as torch's does, then fails."""
    import torch.hub

    from dragedit.inversion import losses

    calls = []

    def fake_download(url, dst, *args, **kwargs):
        calls.append(url)
        print(f'Downloading: "{url}" to {dst}')  # what a hub prints, on stdout
        raise urllib.error.URLError("the fake hub is unreachable")

    monkeypatch.delenv("DRAGEDIT_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DRAGEDIT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.setattr(losses, "_SAID", set())
    quick = [a for a in QUICK if a != "--offline"]
    proc = run_main("edit", ASTRONAUT, "--drag", "201,139:199,133", "-o", tmp_path / "o.png", "--session",
                    tmp_path / "s", *quick, "--json")
    assert proc.returncode == 0, proc.stderr
    assert calls, "the fake hub was never asked: the test did not exercise a download"
    result = json.loads(proc.stdout)  # exactly one JSON document
    assert result["edits"] == ["edits/001"]
    assert "Downloading" in proc.stderr and "Downloading" not in proc.stdout
    assert proc.stderr.count("LPIPS backbone weights") == 1
    # The failure is remembered: the next run does not try again (a firewall that drops packets costs once).
    asked = len(calls)
    monkeypatch.setattr(losses, "_SAID", set())
    again = run_main("edit", ASTRONAUT, "--drag", "201,139:199,133", "-o", tmp_path / "o2.png", "--session",
                     tmp_path / "s2", *quick, "--json")
    assert again.returncode == 0 and len(calls) == asked
    assert "dragedit models download lpips" in again.stderr


@pytest.mark.slow
def test_each_warning_once_over_a_two_edit_run(tmp_path):
    (tmp_path / "edits.json").write_text(json.dumps({"edits": [{"drags": ["201,139:199,133"]},
                                                               {"drags": ["246,141:249,135"]}]}))
    proc = run_cli("edit", ASTRONAUT, "--edits", tmp_path / "edits.json", "-o", tmp_path / "o.png", *QUICK,
                   fresh=True)  # a fresh process: what it says once, it says here
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("warning:", "note:"))]
    assert len(lines) == len(set(lines)), lines
    assert sum("LPIPS backbone weights" in ln for ln in lines) == 1


@pytest.mark.slow
def test_batch_of_bmp_and_gif_photos_writes_png(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(ASTRONAUT).convert("RGB").save(folder / "a.bmp")
    Image.open(ASTRONAUT).convert("RGB").quantize(256).save(folder / "b.gif")
    (tmp_path / "e.json").write_text(json.dumps({"edits": [{"drags": ["@mouth_left:-2%,-4%"]}]}))
    proc = run_main("batch", folder, "--edits", tmp_path / "e.json", "-o", tmp_path / "out", *QUICK, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    for name in ("a_edited.png", "b_edited.png"):
        assert Image.open(tmp_path / "out" / name).format == "PNG"
    assert "a.bmp is written as a_edited.png" in proc.stderr


def test_an_unreadable_photo_says_permission_denied(tmp_path, monkeypatch):
    from dragedit.common.errors import UserError
    from dragedit.pipeline.imaging import photo as photo_module

    shutil.copy(ASTRONAUT, tmp_path / "p.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(photo_module.Image, "open", denied)  # root reads any file; the kernel's answer, faked
    with pytest.raises(UserError, match="permission denied"):
        photo_module.load_photo(tmp_path / "p.png")


@pytest.mark.slow
def test_repaint_counts_are_recorded(tmp_path, monkeypatch):
    """The composite record says how much repaint it left out: session.json holds what the paste measured."""
    from dragedit.pipeline.core.stages import composite

    measured = []

    def measuring(*args, **kwargs):
        res = real(*args, **kwargs)
        measured.append(dict(res.stats))
        return res

    real = composite.warp_paste
    monkeypatch.setattr(composite, "warp_paste", measuring)
    proc = run_main("edit", ASTRONAUT, "--drag", "201,139:199,133", "-o", tmp_path / "o.png", "--session",
                    tmp_path / "s", *QUICK)
    assert proc.returncode == 0, proc.stderr
    entry = json.loads((tmp_path / "s" / "session.json").read_text())["stages"]["composite/001"]
    assert len(measured) == 1
    for key in ("repaint_ignored_crop_px", "generated_fraction", "changed_pixels"):
        assert entry[key] == measured[0][key], key


def test_bf16_falls_back_to_fp32_on_a_cpu_without_it(tmp_path, monkeypatch, caplog):
    from dragedit.draggan.config import DragConfig
    from dragedit.inversion.config import PTIConfig
    from dragedit.pipeline.api import EditJob, EditSettings, check_edit, edit_request
    from dragedit.pipeline.core import runtime

    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    runtime._say_no_bf16.cache_clear()
    settings = EditSettings(device="cpu", drag=DragConfig(precision="bf16"), pti=PTIConfig(precision="bf16"))
    job = EditJob(tmp_path / "s", requests=[edit_request("201,139:199,133")], photo=ASTRONAUT, output=tmp_path / "o.png")
    import logging

    log = logging.getLogger("dragedit")
    log.addHandler(caplog.handler)  # the CLI's in-process runs stop it propagating to the root logger
    try:
        plan = check_edit(job, settings)
        check_edit(job, settings)
    finally:
        log.removeHandler(caplog.handler)
    # emulated bf16 is never offered: it is many times slower; one note per stage and process
    assert plan.settings.drag.precision == plan.settings.pti.precision == "fp32"
    # one record reaches caplog twice where the logger also propagates to the root (this test run alone)
    notes = list({id(r): r.getMessage() for r in caplog.records if "no native bf16" in r.getMessage()}.values())
    assert len(notes) == 2 and notes[0].endswith("the drag runs in fp32") and notes[1].endswith("PTI runs in fp32")
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    plan = check_edit(job, settings)
    assert plan.settings.drag.precision == plan.settings.pti.precision == "bf16"
    assert plan.settings.pti.result_dict()["precision"] == "bf16" and "precision" not in PTIConfig().result_dict()
