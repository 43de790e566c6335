"""/docs: the Sphinx documentation of docs/, built into DATA_DIR/docs-html and served as files.

`escape-vo docs build` (run by `make demo` before serving) builds it; a service whose
documentation was not built answers /docs with a page that says how, instead of a bare 404.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from escape_vo.settings import Settings
from escape_vo.web.rendering import render

router = APIRouter()


def docs_source() -> Path | None:
    """docs/ of the checkout (where conf.py is), or $ESCAPE_VO_DOCS_SOURCE."""
    env = os.environ.get("ESCAPE_VO_DOCS_SOURCE")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "docs")
    return next((p for p in candidates if (p / "conf.py").is_file()), None)


def docs_output(settings: Settings) -> Path:
    return settings.data_dir / "docs-html"


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    output: Path
    warnings: list[str]
    log: str


def build_docs(out: Path, source: Path | None = None, fresh: bool = False) -> BuildResult:
    """Run Sphinx (in a subprocess: Sphinx keeps global state) from source into out.

    Incremental by default: an unchanged tree rebuilds in about a second. Pages made from the
    code's metadata (settings, limits, functions, OpenAPI...) are re-read on every build.
    """
    source = source or docs_source()
    if source is None:
        raise FileNotFoundError(
            "no docs/ directory with conf.py found: build the documentation from a checkout of "
            "the repository, or point ESCAPE_VO_DOCS_SOURCE at its docs/ folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(out / ".doctrees")]
    if fresh:
        cmd.append("-E")
    cmd += [str(source), str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    log = proc.stdout + proc.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    ok = proc.returncode == 0 and (out / "index.html").is_file()
    return BuildResult(ok, out, warnings, log)


_servers: dict[Path, StaticFiles] = {}


def _files(root: Path) -> StaticFiles:
    if root not in _servers:
        _servers[root] = StaticFiles(directory=root, html=True, check_dir=False)
    return _servers[root]


@router.get("/docs", summary="Documentation: user guide, ADQL dialect, operator guide, HTTP API")
async def docs_root() -> Response:
    return RedirectResponse("/docs/", status_code=307)


@router.get("/docs/{path:path}", include_in_schema=False)
async def docs_files(request: Request, path: str) -> Response:
    root = docs_output(request.app.state.settings)
    if not (root / "index.html").is_file():
        return render(
            request,
            "docs_missing.html",
            {"section": "docs", "q": "", "output": root},
            status_code=503,
        )
    if path.startswith("."):  # the doctree cache and other dot files are not for the web
        return render(request, "docs_missing.html", {"section": "docs", "q": "", "output": None},
                      status_code=404)  # fmt: skip
    return await _files(root).get_response(path, request.scope)
