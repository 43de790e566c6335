"""SODA sync cutout of a 5 MB spectrum: latency, throughput of 8 concurrent clients, previews.

A 5 MB ESO Phase 3 style spectrum (about 180,000 pixels of float64 wavelength, flux, error and
int32 quality) is ingested into a scratch archive and served in-process by uvicorn. Measured:
the latency of a cutout of the middle half (Spectrum DM VOTable), the cutouts per second that
8 concurrent clients get, and the time to plot a preview (first request, which renders it)
against serving it from the cache. Floor: reading and parsing the file (what every uncached
cutout must do).
"""

from __future__ import annotations

import concurrent.futures
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg

from bench.common import scratch_database
from escape_vo.ingest.pipeline import ingest
from escape_vo.ingest.readers import read_spectra
from escape_vo.settings import Settings

N_PIX = 180_000
CLIENTS = 8
SECONDS = 15


def _spectrum_file(path: Path) -> int:
    from astropy.io import fits

    rng = np.random.default_rng(5)
    wave = np.linspace(3000.0, 10000.0, N_PIX)  # Angstrom
    flux = 1e-15 * (1 + 0.1 * np.sin(wave / 50)) + rng.normal(0, 1e-17, N_PIX)
    cols = [
        fits.Column("WAVE", f"{N_PIX}D", unit="angstrom", array=wave[None, :]),
        fits.Column("FLUX", f"{N_PIX}D", unit="erg cm**(-2) s**(-1) angstrom**(-1)",
                    array=flux[None, :]),
        fits.Column("ERR", f"{N_PIX}D", unit="erg cm**(-2) s**(-1) angstrom**(-1)",
                    array=np.full((1, N_PIX), 1e-17)),
        fits.Column("QUAL", f"{N_PIX}J", array=np.zeros((1, N_PIX), np.int32)),
    ]  # fmt: skip
    table = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    table.header["VOCLASS"] = "SPECTRUM V2.0"
    primary = fits.PrimaryHDU()
    for key, value in {
        "RA": 150.0,
        "DEC": 2.2,
        "OBJECT": "BENCH",
        "INSTRUME": "XSHOOTER",
        "TELESCOP": "ESO-VLT-U2",
        "MJD-OBS": 58000.1,
        "EXPTIME": 900.0,
    }.items():
        primary.header[key] = value  # fmt: skip
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path.stat().st_size


def run() -> dict:
    import uvicorn

    from escape_vo.web.app import create_app

    with scratch_database() as (url, work):
        path = work / "ADP.bench.fits"
        size = _spectrum_file(path)
        settings = Settings(data_dir=work / "data", database_url=url, port=0)
        report = ingest([path], db_url=url, store_url=settings.files_url, authority="bench")
        assert report.ok, report.summary()
        with psycopg.connect(url) as conn:
            did, sid, lo, hi = conn.execute(
                "SELECT publisher_did, spectrum_id, wave_min, wave_max FROM archive.spectra"
            ).fetchone()
        data = path.read_bytes()
        t = time.perf_counter()
        for _ in range(5):
            read_spectra(data, path.name)
        t_parse = (time.perf_counter() - t) / 5

        config = uvicorn.Config(create_app(settings, url), host="127.0.0.1", port=0,
                                log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        band = f"{lo + (hi - lo) / 4!r} {hi - (hi - lo) / 4!r}"
        params = {"ID": did, "BAND": band}
        try:
            with httpx.Client(timeout=120) as http:
                t = time.perf_counter()
                first = http.get(f"{base}/soda/sync", params=params)
                t_first = time.perf_counter() - t
                assert first.status_code == 200, first.text
                latencies = []
                for _ in range(20):
                    t = time.perf_counter()
                    http.get(f"{base}/soda/sync", params=params).raise_for_status()
                    latencies.append(time.perf_counter() - t)
                t = time.perf_counter()
                http.get(f"{base}/spectra/{sid}/preview").raise_for_status()
                t_preview = time.perf_counter() - t
                t = time.perf_counter()
                http.get(f"{base}/spectra/{sid}/preview").raise_for_status()
                t_preview_cached = time.perf_counter() - t
            done = errors = 0
            deadline = time.monotonic() + SECONDS
            lock = threading.Lock()

            def client() -> None:
                nonlocal done, errors
                with httpx.Client(timeout=120) as http:
                    while time.monotonic() < deadline:
                        ok = http.get(f"{base}/soda/sync", params=params).status_code == 200
                        with lock:
                            done, errors = done + ok, errors + (not ok)

            t = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(lambda _: client(), range(CLIENTS)))
            elapsed = time.perf_counter() - t
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    p50 = statistics.median(latencies) * 1000
    rate = done / elapsed
    return {
        "file_bytes": size,
        "pixels": N_PIX,
        "cutout_bytes": len(first.content),
        "first_cutout_ms": t_first * 1000,
        "cutout_p50_ms": p50,
        "clients": CLIENTS,
        "cutouts_per_second": rate,
        "errors": errors,
        "preview_render_ms": t_preview * 1000,
        "preview_cached_ms": t_preview_cached * 1000,
        "floor_parse_ms": t_parse * 1000,
        "report": [
            f"spectrum file {size / 1e6:.1f} MB, {N_PIX} pixels; cutout of the middle half "
            f"({len(first.content) / 1e6:.1f} MB Spectrum DM VOTable)",
            f"first cutout (file read + parsed): {t_first * 1000:.0f} ms; "
            f"then p50 {p50:.0f} ms (floor: parse of the file {t_parse * 1000:.0f} ms)",
            f"{CLIENTS} concurrent clients for {SECONDS} s: {rate:.1f} cutouts/s, {errors} errors",
            f"preview: rendered in {t_preview * 1000:.0f} ms, "
            f"then served from the cache in {t_preview_cached * 1000:.1f} ms",
        ],
    }
