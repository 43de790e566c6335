"""Remake the screenshots of docs/images/ against a running demo (`make demo`).

    .venv/bin/python docs/_tools/screenshots.py [http://127.0.0.1:8000]

The web pages are shot with Playwright driving Debian's Chromium (/usr/bin/chromium); the
desktop clients with the scripts of shared/clients (TOPCAT and Aladin under Xvfb):

    T=../shared/clients
    TAP=$($T/tap-sync-url.sh http://127.0.0.1:8000/tap "SELECT TOP 400 publisher_did, target_name,
        instrument, ra, dec, wave_min, wave_max, snr FROM archive.spectra")
    TAPURL=http://127.0.0.1:8000/tap ADQL="SELECT TOP 100 target_name, instrument, wave_min,
        wave_max, snr FROM archive.spectra WHERE wave_min < 6.563e-7 AND wave_max > 6.563e-7" \
        $T/topcat-snapshot.sh - docs/images/topcat-tap.png
    PLOT=sky $T/topcat-snapshot.sh "$TAP" docs/images/topcat-sky.png
    FOV=200deg SIZE=1000x700 $T/aladin-snapshot.sh - "180 0" docs/images/aladin-spectra.png "$TAP"
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from escape_vo.web.chromium import ARGS, CHROMIUM

IMAGES = Path(__file__).resolve().parents[1] / "images"


def main(base: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/")
        page.screenshot(path=IMAGES / "landing.png", full_page=True)
        page.goto(base + "/browse")
        page.screenshot(path=IMAGES / "browse.png")
        page.goto(base + "/browse/archive.spectra#wave_min")
        page.screenshot(path=IMAGES / "browse-table.png")
        page.goto(base + "/query")
        page.click("#examples button.example >> nth=6")
        page.click("#run")
        page.wait_for_selector("#result tbody tr")
        page.screenshot(path=IMAGES / "query-result.png")
        page.evaluate(
            """() => { const v = window.adqlEditor; v.dispatch({changes: {from: 0,
            to: v.state.doc.length, insert: "SELECT TOP 10 target_name, wave_min, wave_mux\\n"
            + "FROM archive.spectra\\nWHERE snr > 20"}}); }"""
        )
        page.click("#run")
        page.wait_for_selector("#error-box.shown")
        page.screenshot(path=IMAGES / "query-error.png", clip={"x": 0, "y": 0, "width": 1280,
                                                               "height": 420})  # fmt: skip
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8000")
