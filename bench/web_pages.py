"""Response times of the pages for people (schema browser, query page) over real HTTP.

On an archive of the demo's size (2,400 spectra) and on 1,000,000 rows, where row counts come
from PostgreSQL's estimate instead of count(*). Each page is fetched 20 times after a warm-up;
the first fetch of the tables index (which counts the rows) is reported on its own. The floor is
/tap/availability, the service's cheapest endpoint, through the same client and server.
"""

from __future__ import annotations

import statistics
import time

import httpx
from psycopg.types.numeric import Int8

from bench.tapserver import served_archive

PAGES = [
    "/browse",
    "/browse/archive.spectra",
    "/browse/archive.spectra/wave_min",
    "/browse/ivoa.obscore",
    "/browse/search?q=wavelength",
    "/query",
]
SIZES = (2_400, 1_000_000)
REPEAT = 20


def _time(client: httpx.Client, path: str) -> float:
    t = time.perf_counter()
    r = client.get(path)
    elapsed = time.perf_counter() - t
    r.raise_for_status()
    return elapsed


def run() -> dict:
    result: dict = {"sizes": {}, "report": []}
    for n in SIZES:
        # Int8: tapserver.fill's generate_series(lo, hi) is ambiguous when both fit a smallint
        with served_archive(Int8(n)) as (base, _db, _proc), httpx.Client(base_url=base) as client:
            first = _time(client, "/browse")  # counts the rows, then cached
            floor = statistics.median(_time(client, "/tap/availability") for _ in range(REPEAT))
            pages = {}
            for path in PAGES:
                _time(client, path)
                times = sorted(_time(client, path) for _ in range(REPEAT))
                pages[path] = {"median_ms": 1000 * statistics.median(times),
                               "max_ms": 1000 * times[-1]}  # fmt: skip
            result["sizes"][n] = {"first_index_ms": 1000 * first, "floor_ms": 1000 * floor,
                                  "pages": pages}  # fmt: skip
            worst = max(p["median_ms"] for p in pages.values())
            result["report"].append(
                f"{n:,} rows: first /browse {1000 * first:.0f} ms; floor {1000 * floor:.1f} ms; "
                f"slowest page median {worst:.1f} ms (target < 100 ms)"
            )
            for path, p in pages.items():
                result["report"].append(
                    f"  {path:34} median {p['median_ms']:6.1f} ms  max {p['max_ms']:6.1f} ms"
                )
    return result
