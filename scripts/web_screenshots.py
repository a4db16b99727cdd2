"""Screenshots of the web editor for the README: one mid-drag (live preview, progress), one after.

Runs `dragedit serve`'s app on a free local port with the given generator and the default settings,
drives headless Chromium (Debian's chromium + chromium-driver) through the flow a person follows, and
writes OUT/web_mid_edit.png and OUT/web_result.png.

    python scripts/web_screenshots.py [--photo tests/fixtures/photos/astronaut.png] [--out docs]
        [--drag 201,139:196,128 --drag 246,141:251,130] [--generator G]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser import chromium, click_photo_point, find_browser, history_items, open_photo, run_edit, \
    running_server, wait_for  # noqa: E402


def _screenshot(driver, path: Path) -> None:
    if not driver.save_screenshot(str(path)):
        raise SystemExit(f"could not write {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", default=str(REPO / "tests" / "fixtures" / "photos" / "astronaut.png"))
    p.add_argument("--out", default=str(REPO / "docs"))
    p.add_argument("--drag", action="append", help="X1,Y1:X2,Y2 photo pixels (repeat)")
    p.add_argument("--generator")
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
    print(f"wrote {out / 'web_mid_edit.png'} and {out / 'web_result.png'}")


if __name__ == "__main__":
    main()
