"""The latent map with 100,000 points: its data over HTTP and the page in headless Chromium.

The points are the synthetic clustered vectors of embeddings_search (their latent-sky positions
computed as `embed apply` computes them), spread over 12 instruments and a range of anomaly
scores so that colouring does real work. Measured:

* GET /embeddings/map/points: p50 of 5 over HTTP and the bytes sent; the floor is the same SQL
  run directly in PostgreSQL (fetching every row into Python);
* in Chromium (Debian's, driven by Playwright, 1280x800): navigation until the points are drawn
  and the status line says so (p50 of 3 page loads); one redraw of the whole map, which is what
  every pan and zoom step costs; recolouring (instrument -> anomaly); the hit test a click runs
  over all points; and a selection: the spectrum's plot plus its 10 neighbours from
  /embeddings/similar, drawn (p50 over 10 spectra).

BENCH_MAP_POINTS changes the number of points.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime

import httpx
import numpy as np
import psycopg

from bench.common import scratch_database
from bench.embeddings_search import MODEL, _load, _vectors
from escape_vo.web.chromium import ARGS, CHROMIUM

N = int(os.environ.get("BENCH_MAP_POINTS", "100000"))
SELECTED = 10  # spectra selected in the page, each with a preprocessed row to plot


def _decorate(url: str, n: int) -> list[int]:
    """Instruments, SNRs and anomaly scores for the points; preprocessed flux for SELECTED of
    them (what the page plots on a click). Returns those spectrum ids."""
    rng = np.random.default_rng(2)
    chosen = sorted(int(i) + 1 for i in rng.choice(n, SELECTED, replace=False))
    flux = np.where(np.arange(1024) % 7 == 0, np.nan, 1 + 0.1 * np.sin(np.arange(1024) / 9))
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE archive.spectra SET instrument = 'INSTRUMENT-' || (spectrum_id % 12), "
            "snr = 5 + (spectrum_id % 97)"
        )
        conn.execute(
            "UPDATE embeddings.vectors SET anomaly = ((spectrum_id * 7919) % 1000) / 100.0 - 2"
        )
        for sid in chosen:
            conn.execute(
                "INSERT INTO embeddings.preprocessed (grid, spectrum_id, flux, rest_frame, "
                "scale, noise, coverage, negative_z, done_at) "
                "VALUES ('loglam1024', %s, %s, false, 1, 0.01, 0.85, 0, %s)",
                (sid, [None if np.isnan(f) else float(f) for f in flux], datetime(2026, 1, 1)),
            )
    return chosen


def _points(url: str, base: str) -> dict:
    from escape_vo.embeddings.map_web import MAX_MAP_POINTS

    http_s, sql_s = [], []
    with httpx.Client(timeout=120) as client:
        client.get(f"{base}/embeddings/map/points", params={"model": MODEL}).raise_for_status()
        for _ in range(5):
            t = time.perf_counter()
            r = client.get(f"{base}/embeddings/map/points", params={"model": MODEL})
            http_s.append(time.perf_counter() - t)
            r.raise_for_status()
            n, total = r.json()["n"], r.json()["total"]
            drawn = min(N, MAX_MAP_POINTS)  # a sample draws about as many
            assert total == N and abs(n - drawn) <= 0.01 * drawn
    with psycopg.connect(url) as conn:
        for _ in range(5):
            t = time.perf_counter()
            conn.execute(
                "SELECT e.spectrum_id, e.lon, e.lat, e.anomaly_score, s.snr, "
                "coalesce(e.instrument, '?'), coalesce(e.target_class, 'unclassified') "
                "FROM embeddings.spectrum_embeddings AS e "
                "JOIN archive.spectra AS s ON s.spectrum_id = e.spectrum_id "
                "WHERE e.model = %s ORDER BY e.spectrum_id LIMIT %s",
                (MODEL, MAX_MAP_POINTS),
            ).fetchall()
            sql_s.append(time.perf_counter() - t)
    return {
        "points_http_p50_ms": round(statistics.median(http_s) * 1000, 1),
        "points_sql_p50_ms": round(statistics.median(sql_s) * 1000, 1),
        "points_bytes": len(r.content),
    }


def _page(base: str, chosen: list[int]) -> dict:
    from playwright.sync_api import sync_playwright

    loads = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for _ in range(3):
            t = time.perf_counter()
            page.goto(f"{base}/embeddings/map?model={MODEL}&colour=instrument")
            page.wait_for_function(
                "document.getElementById('status').textContent.includes('spectra')",
                timeout=120_000,
            )
            loads.append(time.perf_counter() - t)
        drawn = page.evaluate(
            """() => { const out = [];
            for (let k = 0; k < 10; k++) { const t = performance.now(); draw();
              out.push(performance.now() - t); }
            return out; }"""
        )
        recolour = page.evaluate(
            """() => { const menu = document.getElementById('colour'), out = [];
            for (const c of ['anomaly', 'instrument', 'anomaly']) { menu.value = c;
              const t = performance.now(); colours(); draw(); out.push(performance.now() - t); }
            return out; }"""
        )
        hits = page.evaluate(
            """() => { const out = [];
            for (let k = 0; k < 10; k++) { const t = performance.now();
              nearest(100 + 97 * k, 300); out.push(performance.now() - t); }
            return out; }"""
        )
        selects = [
            page.evaluate(
                """async (id) => { const t = performance.now();
                await select(state.index.get(id));
                if (!document.querySelector('#nbs tr.nb')) throw new Error('no neighbours');
                const listed = document.querySelectorAll('#nbs tr.nb').length;
                return [performance.now() - t, listed]; }""",
                sid,
            )
            for sid in chosen  # a sample (past MAX_MAP_POINTS) may leave some out
            if page.evaluate("(id) => state.index.has(id)", sid)
        ]
        browser.close()
    assert all(n == 10 for _, n in selects), selects
    return {
        "page_load_p50_ms": round(statistics.median(loads) * 1000, 1),
        "redraw_p50_ms": round(statistics.median(drawn), 1),
        "recolour_p50_ms": round(statistics.median(recolour), 1),
        "hit_test_p50_ms": round(statistics.median(hits), 2),
        "select_p50_ms": round(statistics.median(s for s, _ in selects), 1),
    }


def run() -> dict:
    from escape_vo.settings import Settings
    from escape_vo.web.app import create_app
    from tests.conftest import LiveServer, free_port

    with scratch_database() as (url, _):
        _load(url, _vectors(N))
        chosen = _decorate(url, N)
        port = free_port()
        with LiveServer(create_app(Settings(database_url=url, port=port)), port) as server:
            points = _points(url, server.url)
            page = _page(server.url, chosen)
    from escape_vo.embeddings.map_web import MAX_MAP_POINTS

    drawn = min(N, MAX_MAP_POINTS)
    sample = f" (a sample of {drawn:,} drawn)" if drawn < N else ""
    result = {"points": N, "drawn": drawn, **points, **page}
    result["report"] = [
        f"GET /embeddings/map/points, {N:,} points{sample}: p50 {points['points_http_p50_ms']} "
        f"ms over HTTP, {points['points_bytes'] / 1e6:.1f} MB ({points['points_bytes'] / drawn:.0f}"
        f" bytes a point); the SQL alone {points['points_sql_p50_ms']} ms "
        f"({points['points_http_p50_ms'] / points['points_sql_p50_ms']:.1f}x its floor)",
        f"the page in Chromium: loaded and drawn in {page['page_load_p50_ms']} ms; a redraw "
        f"(each pan or zoom step) {page['redraw_p50_ms']} ms; recolouring "
        f"{page['recolour_p50_ms']} ms; the hit test of a click {page['hit_test_p50_ms']} ms; "
        f"a selection (spectrum plot + 10 neighbours) {page['select_p50_ms']} ms",
    ]
    return result


if __name__ == "__main__":
    for line in run()["report"]:
        print(line)
