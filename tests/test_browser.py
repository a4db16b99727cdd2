"""The web editor in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

Opens the test photo, clicks a handle and a target on the canvas, runs, waits for the result, then checks
that the result differs from the photo near the handle and that the history lists edit 1."""
from __future__ import annotations

import io
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.browser import chromium, click_photo_point, edit_clip, find_browser, history_items, open_photo, \
    run_edit, running_server, session_id, wait_for
from tests.conftest import ASTRONAUT

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'dragedit[web]'); CI installs it")
pytest.importorskip("selenium", reason="selenium is not installed (pip install 'dragedit[test]')")
if find_browser() is None:
    pytest.skip("no browser: install Debian's chromium and chromium-driver (.ci/run installs them with apt-get)",
                allow_module_level=True)

HANDLE, TARGET = (246.0, 141.0), (250.0, 130.0)  # the image-right mouth corner, up and out


@pytest.mark.slow
def test_edit_in_the_browser(tmp_path):
    from dragedit.draggan import DragConfig
    from dragedit.inversion import PTIConfig
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.server.app import ServeConfig

    settings = EditSettings(pti=PTIConfig(pivot_steps=30, tune_steps=20, allow_download=False),
                            drag=DragConfig(max_steps=20))
    cfg = ServeConfig(root=tmp_path / "root", settings=settings, preview_every=2)
    with running_server(cfg) as url, chromium() as driver:
        open_photo(driver, url, ASTRONAUT)
        # A preset button places its arrows on the face (the person may still change them).
        wait_for(driver, lambda d: d.execute_script("return !!document.querySelector('#presets button');"), 30,
                 "the preset buttons")
        driver.execute_script("document.querySelector('#presets button[data-preset=smile]').click();")
        wait_for(driver, lambda d: len(d.execute_script("return S.pairs;")) == 2, 30, "the smile preset's arrows")
        smile = driver.execute_script("return S.pairs;")
        assert all(p[3] < p[1] for p in smile), smile  # both mouth corners go up
        assert driver.execute_script("return S.region;") == "mouth"
        driver.execute_script("S.pairs = []; S.region = null; renderPairs(); draw();")
        click_photo_point(driver, *HANDLE)
        click_photo_point(driver, *TARGET)
        pairs = driver.execute_script("return S.pairs;")
        assert len(pairs) == 1
        assert np.allclose(pairs[0], [*HANDLE, *TARGET], atol=1.5), pairs  # the clicks landed on those pixels
        run_edit(driver)
        wait_for(driver, lambda d: any(t.startswith("Edit 1") for t in history_items(d)), 300, "edit 1")
        assert driver.execute_script("return S.current;") == 1
        sid = session_id(driver)
        driver.save_screenshot(str(tmp_path / "after.png"))
        with urllib.request.urlopen(f"{url}/api/sessions/{sid}/edits/1/photo") as res:
            result = np.asarray(Image.open(io.BytesIO(res.read())).convert("RGB")).astype(int)
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(int)
    x, y = int(HANDLE[0]), int(HANDLE[1])
    near = np.abs(result[y - 15:y + 16, x - 15:x + 16] - photo[y - 15:y + 16, x - 15:x + 16])
    assert near.max() > 0 and near.mean() > 0.05, near.mean()  # the edit moved pixels at the handle
    far = np.abs(result[:60, :60] - photo[:60, :60])
    assert far.max() == 0  # and left the photo's corner alone


@pytest.mark.slow
def test_edit_a_clip_in_the_browser(tmp_path):
    """A clip in the page: its keyframe is shown for the points, the preset's arrows go on it, Run follows the
    frames, and the edited clip plays on the page with a download link."""
    pytest.importorskip("av", reason="PyAV is a dependency (pip install -e .)")
    from selenium.webdriver.common.by import By

    from tests.conftest import serve_config
    from tests.test_video import FRAMES, FACELESS, make_clip

    clip = make_clip(tmp_path / "clip.mp4")
    with running_server(serve_config(tmp_path / "root")) as url, chromium() as driver:
        edit_clip(driver, url, clip, 300)
        assert driver.execute_script("return S.photo.src;").endswith("/keyframe")  # the picture the points are on
        assert "every frame" in driver.find_element(By.ID, "status").text
        text = driver.find_element(By.ID, "progress-text").text
        assert f"({FRAMES + FACELESS} frames)" in text or f"({FRAMES} frames)" in text, text
        link = driver.find_element(By.ID, "clip-download").get_attribute("href")
        sid = session_id(driver)
        assert f"/api/sessions/{sid}/clip" in link
        with urllib.request.urlopen(link) as res:
            assert res.headers["content-type"] == "video/mp4" and len(res.read()) > 1000
