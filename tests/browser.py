"""Driving the web editor in a real headless Chromium (selenium): the browser test uses these steps, and
`python -m tests.browser [--out docs]` takes the README's screenshots with them."""
from __future__ import annotations

import argparse
import shutil
import tempfile
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) on PATH, or None."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(config):
    """`dragedit serve`'s app under uvicorn in a thread, on a free local port; yields its base URL."""
    import uvicorn

    from dragedit.pipeline.server.app import create_app

    config.port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=config.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium(width: int = 1400, height: int = 950):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout: float = 120.0, what: str = "the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=f"waiting for {what}")


def open_photo(driver, url: str, photo: Path) -> None:
    """Load the page, pick the photo with the file input, wait until a face is chosen and the tools show."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    driver.find_element(By.ID, "file").send_keys(str(Path(photo).resolve()))
    wait_for(driver, lambda d: d.find_element(By.ID, "tools").is_displayed(), 60, "the face to be chosen")


def click_photo_point(driver, x: float, y: float) -> None:
    """Click the canvas where photo pixel (x, y) is shown (the page's view maps photo <-> canvas), scrolling
    that point into the viewport first."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    cx, cy = driver.execute_script(
        "const c = document.getElementById('canvas'); const css = c.getBoundingClientRect().width / c.width;"
        "const px = (arguments[0] - S.view.x0) * S.view.scale * css, py = (arguments[1] - S.view.y0) * S.view.scale * css;"
        "let r = c.getBoundingClientRect();"
        "window.scrollBy(0, r.top + py - window.innerHeight / 2);"
        "r = c.getBoundingClientRect();"
        "return [r.left + px, r.top + py];", x, y)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(cx), round(cy))
    actions.pointer_action.click()
    actions.perform()


def run_edit(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "run").click()


def edit_clip(driver, url: str, clip: Path, timeout: float) -> None:
    """Open a clip, place the smile preset on its keyframe, run, and wait for the edited clip's panel."""
    from selenium.webdriver.common.by import By

    open_photo(driver, url, clip)
    wait_for(driver, lambda d: d.execute_script("return !!document.querySelector('#presets button');"), 60,
             "the preset buttons")
    driver.execute_script("document.querySelector('#presets button[data-preset=smile]').click();")
    wait_for(driver, lambda d: len(d.execute_script("return S.pairs;")) == 2, 30, "the smile preset's arrows")
    assert driver.execute_script("return S.clip;") is True
    run_edit(driver)
    wait_for(driver, lambda d: d.find_element(By.ID, "clip-panel").is_displayed(), timeout, "the edited clip")


def history_items(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#history li")]


def session_id(driver) -> str:
    return driver.execute_script("return S.sid;")


# ---- `python -m tests.browser [--out docs]`: the README's screenshots, through the same steps -----------------
def _screenshot(driver, path: Path) -> None:
    if not driver.save_screenshot(str(path)):
        raise SystemExit(f"could not write {path}")


def screenshots() -> None:
    p = argparse.ArgumentParser(description="The README's screenshots of the web editor: one mid-drag (live "
                                "preview, progress), one after, with the default settings.")
    p.add_argument("--photo", default=str(Path(__file__).resolve().parent / "fixtures" / "photos" / "astronaut.png"))
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs"))
    p.add_argument("--drag", action="append", help="X1,Y1:X2,Y2 photo pixels (repeat)")
    p.add_argument("--generator")
    p.add_argument("--clip", help="a clip: also web_clip.png, the page after the clip's smile preset ran")
    a = p.parse_args()
    if find_browser() is None:
        raise SystemExit("no chromium + chromedriver on PATH (apt-get install chromium chromium-driver)")
    from dragedit.inversion import PTIConfig
    from dragedit.pipeline.core.settings import EditSettings
    from dragedit.pipeline.server.app import ServeConfig

    drags = [[float(v) for v in d.replace(":", ",").split(",")] for d in (a.drag or ["201,139:196,128",
                                                                                      "246,141:251,130"])]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)  # selenium's save_screenshot says nothing when it cannot write
    with tempfile.TemporaryDirectory() as tmp:
        settings = EditSettings(generator=a.generator, pti=PTIConfig(allow_download=False))
        cfg = ServeConfig(root=Path(tmp), settings=settings, preview_every=2)
        with running_server(cfg) as url, chromium(1280, 1000) as driver:
            open_photo(driver, url, Path(a.photo))
            for x1, y1, x2, y2 in drags:
                click_photo_point(driver, x1, y1)
                click_photo_point(driver, x2, y2)
            run_edit(driver)
            wait_for(driver, lambda d: d.execute_script(
                "return S.job && S.job.stage === 'drag' && S.job.step >= 4 && !!S.job.preview;"), 600, "the drag")
            _screenshot(driver, out / "web_mid_edit.png")
            wait_for(driver, lambda d: any(t.startswith("Edit 1") for t in history_items(d)), 600, "edit 1")
            _screenshot(driver, out / "web_result.png")
            if a.clip:
                _clip_screenshot(driver, url, Path(a.clip), out / "web_clip.png")
    print(f"wrote {out / 'web_mid_edit.png'} and {out / 'web_result.png'}" + (" and web_clip.png" if a.clip else ""))


def _clip_screenshot(driver, url: str, clip: Path, path: Path) -> None:
    """A clip in the page: the smile preset on its keyframe, run, and the edited clip ready to play."""
    edit_clip(driver, url, clip, 1800)
    wait_for(driver, lambda d: d.execute_script("return document.getElementById('clip-video').readyState >= 4;"),
             60, "the clip to load")
    time.sleep(2)  # the player's loading spinner fades out after the data is there
    _screenshot(driver, path)


if __name__ == "__main__":
    screenshots()
