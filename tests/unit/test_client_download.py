"""The client's download bookkeeping that needs no server: file names, and what a fresh start
(resume=False) clears in a folder shared with other downloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from escape_vo_client.download import Item, download_items, file_stems


def test_file_names_come_from_the_ids_and_clashes_get_a_hash() -> None:
    stems = file_stems(["ivo://a.example/spectra?x-1", "ivo://b.example/data/y.fits",
                        "ivo://c.example/s?k", "ivo://d.example/s?k"])  # fmt: skip
    assert stems["ivo://a.example/spectra?x-1"] == "x-1"
    assert stems["ivo://b.example/data/y.fits"] == "y.fits"
    assert stems["ivo://c.example/s?k"] != stems["ivo://d.example/s?k"]
    assert all(
        s.startswith("k-") for s in (stems["ivo://c.example/s?k"], stems["ivo://d.example/s?k"])
    )


def test_starting_over_clears_only_the_partial_files_of_the_spectra_asked_for(
    tmp_path: Path,
) -> None:
    for name in ("mine.fits.part", "mine.fits.part.json", "theirs.fits.part",
                 "theirs.fits.part.json", "done.fits"):  # fmt: skip
        (tmp_path / name).write_bytes(b"x")
    items = [Item("ivo://a.example/spectra?mine")]  # no access URL: fails without a request
    report = asyncio.run(download_items(items, tmp_path, resume=False, progress=False))
    assert report.failed == [("ivo://a.example/spectra?mine", "no access_url for this ID")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "done.fits", "theirs.fits.part", "theirs.fits.part.json",
    ]  # fmt: skip


def test_interrupting_a_notebook_cancels_the_download_running_in_its_thread() -> None:
    """In Jupyter (a running event loop) the coroutine runs in a thread; the kernel's interrupt
    (KeyboardInterrupt in the main thread) must cancel it there, not leave it running."""
    import signal
    import threading
    import time

    from escape_vo_client.download import run_coroutine

    cancelled = threading.Event()

    async def download_forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    async def notebook_cell() -> None:  # synchronous code called inside the running loop
        run_coroutine(download_forever())

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(notebook_cell())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert cancelled.is_set() and time.monotonic() - started < 10


def test_the_bytes_bar_ends_full_whatever_the_estimates_said() -> None:
    """access_estsize is in rounded kB: the total is corrected file by file as each arrives
    (a resumed file counts only its new bytes), and set to what came when some failed."""
    from escape_vo_client.download import _Bars

    bars = _Bars(True, files=3, total_bytes=3 * 2048)
    bars.bytes.update(2100)  # a first file, 52 bytes more than its estimate
    bars.settle(2048, 2100)
    bars.bytes.update(1000)  # a second resumed at byte 1000 of 2000
    bars.settle(2048, 1000)
    assert bars.bytes.total == 2100 + 1000 + 2048
    bars.bytes.update(300)  # the third fails after 300 bytes
    bars.close()
    assert bars.bytes.n == bars.bytes.total == 3400


def test_the_identity_of_a_requests_session() -> None:
    """Headers (not requests' own defaults), cookies and basic auth are carried; an auth object
    another HTTP library cannot replay is dropped with a warning that says what to do."""
    import warnings

    import requests
    from requests.auth import AuthBase, HTTPBasicAuth

    from escape_vo_client import Identity

    assert Identity.of(None) is None
    assert Identity.of(requests.Session()) is None  # only requests' defaults

    s = requests.Session()
    s.headers["X-Token"] = "t"
    s.auth = HTTPBasicAuth(b"astro", "pw")
    s.cookies.set("login", "yes", domain="archive.example", path="/")
    ident = Identity.of(s)
    assert ident is not None and ident.headers == {"X-Token": "t"} and ident.auth == ("astro", "pw")
    assert ident.request_headers()["Authorization"] == "Basic YXN0cm86cHc="
    assert [c.name for c in ident.cookies] == ["login"]

    class Signed(AuthBase):
        def __call__(self, r):
            return r

    s.auth = Signed()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ident = Identity.of(s)
    assert ident is not None and ident.auth is None
    assert "session.headers" in str(caught[0].message)
