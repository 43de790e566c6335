"""Run the benchmarks named on the command line (default: all), print and save the results."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

BENCHMARKS = [
    "ingest",
    "writers",
    "tap_stream",
    "cone",
    "ssa",
    "soda",
    "embeddings_search",
    "embeddings_quality",
    "embeddings_oddities",
    "embeddings_map",
    "embeddings_upload",
    "web_pages",
    "client_download",
    "xmatch",
    "async_jobs",
    "coverage",
]
RESULTS = Path(__file__).parent / "results"


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        result = module.run()
        result["machine"] = {
            "cores": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        for line in result["report"]:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
