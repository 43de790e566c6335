"""The documentation: it builds without a warning, is served at /docs, every example in it runs
against the demo service, and every link of the docs and the service's pages resolves.

Code blocks of docs/**/*.md by language:
  python   run in order per page (one namespace per page) with the service URL substituted;
  adql     run through /tap/sync and must return a result;
  sh       run with bash in a scratch folder, with DATA_DIR/DATABASE_URL of the demo archive;
  console  operator commands that cannot run here (docker, a fresh clone): every `escape-vo`
           command line in them must name existing commands and options;
  text     illustrative (URLs, file contents).
A block preceded by `<!-- needs: /path -->` needs that endpoint: its test skips, saying so,
while the service answers 404 there, and runs as soon as the endpoint exists.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import click
import httpx
import pytest
from astropy.io.votable import parse_single_table
from fastapi.testclient import TestClient

from escape_vo.adql import UDFS
from escape_vo.cli import main as cli_main
from escape_vo.settings import Settings
from escape_vo.web.app import create_app
from escape_vo.web.docs_site import build_docs, docs_output
from tests.browser.html_links import parse
from tests.unit.test_adql_conformance import KNOWN_GAPS

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
DOC_URL = "http://127.0.0.1:8000"  # the address the docs use (make demo's)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    needs: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(\{code-block\}\s*)?([\w+{}-]*)")


def code_blocks() -> list[Block]:
    blocks = []
    for path in sorted(DOCS.rglob("*.md")):
        if any(part.startswith(("_", ".")) for part in path.relative_to(DOCS).parts):
            continue
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = _FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            indent, fence, _directive, lang = m.groups()
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            i += 1
            if lang.startswith("{"):
                continue  # a directive (toctree, note, generated tables)
            before = lines[start - 1].strip() if start else ""
            needs = re.fullmatch(r"<!--\s*needs:\s*(\S+)\s*-->", before)
            body = [b for b in body if not b.strip().startswith(":")] if _directive else body
            blocks.append(
                Block(
                    str(path.relative_to(DOCS)),
                    start + 1,
                    lang or "text",
                    "\n".join(body) + "\n",
                    needs.group(1) if needs else None,
                )
            )
    return blocks


BLOCKS = code_blocks()


def _of(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang]


def test_every_block_has_a_known_language() -> None:
    known = {"python", "adql", "sh", "console", "text"}
    assert BLOCKS, "no code block found in docs/"
    assert {b.lang for b in BLOCKS} <= known, [b.id for b in BLOCKS if b.lang not in known]


@pytest.fixture(scope="module")
def built_docs(demo_archive) -> Path:
    """The documentation built where the live server looks for it (incremental if built)."""
    settings, _ = demo_archive
    result = build_docs(docs_output(settings))
    assert result.ok, result.log[-3000:]
    return result.output


def test_docs_build_without_warnings(built_docs: Path) -> None:
    # a second, incremental build re-reads the generated pages: still no warning
    result = build_docs(built_docs)
    assert result.ok, result.log[-3000:]
    assert result.warnings == []


@pytest.fixture(scope="module")
def http(live_server, built_docs) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        yield client


def test_docs_are_served_with_the_generated_reference(http) -> None:
    r = http.get("/docs", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/docs/"
    index = http.get("/docs/")
    assert index.status_code == 200 and "escape-vo" in index.text
    adql = http.get("/docs/adql.html").text
    for name in UDFS:
        assert name in adql
    for reason, _fragment in KNOWN_GAPS.values():
        assert parse_text(reason) in parse_text(adql), reason
    configure = http.get("/docs/operator/configure.html").text
    for name in Settings.model_fields:
        assert f'<code class="docutils literal notranslate"><span class="pre">{name.upper()}' in (
            configure
        ), name
    api = http.get("/docs/api.html").text
    spec = http.get("/api/openapi.json").json()
    for path in spec["paths"]:
        assert parse_text(path) in parse_text(api), path
    built = http.get("/docs/openapi.json").json()
    assert set(built["paths"]) == set(spec["paths"])
    assert http.get("/docs/.doctrees/environment.pickle").status_code == 404
    assert http.get("/docs/no-such-page.html").status_code == 404


def parse_text(html: str) -> str:
    from html import unescape

    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def test_docs_not_built_says_how(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/docs/")
    assert r.status_code == 503
    assert "escape-vo docs build" in r.text


# ---- the examples ------------------------------------------------------------------------


def _substitute(code: str, url: str) -> str:
    return code.replace(DOC_URL, url)


def _endpoint_missing(http: httpx.Client, path: str) -> bool:
    return http.get(path).status_code == 404


def _run_python(blocks: list[Block], url: str, namespace: dict) -> None:
    for block in blocks:
        code = compile(_substitute(block.code, url), f"docs/{block.id}", "exec")
        exec(code, namespace)


PY_PAGES = sorted({b.page for b in _of("python")})


@pytest.mark.parametrize("page", PY_PAGES)
def test_python_examples_run(page, http, live_server, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in _of("python") if b.page == page and not b.needs]
    _run_python(blocks, live_server.url, {"__name__": "__docs__"})
    assert capsys.readouterr().out.strip(), "the examples print what they found"


@pytest.mark.parametrize("block", [b for b in _of("python") if b.needs], ids=lambda b: b.id)
def test_python_examples_needing_an_endpoint_run(block, http, live_server, tmp_path, monkeypatch):
    if _endpoint_missing(http, block.needs):
        pytest.skip(f"{block.needs} answers 404: that endpoint is not in this build yet")
    monkeypatch.chdir(tmp_path)
    before = [
        b for b in _of("python") if b.page == block.page and not b.needs and b.line < block.line
    ]
    _run_python([*before, block], live_server.url, {"__name__": "__docs__"})


@pytest.mark.parametrize("block", _of("adql"), ids=lambda b: b.id)
def test_adql_examples_run(block, http) -> None:
    r = http.post("/tap/sync", data={"LANG": "ADQL", "QUERY": block.code, "MAXREC": "50"})
    assert r.status_code == 200, r.text[-600:]
    table = parse_single_table(io.BytesIO(r.content))
    assert len(table.array) > 0, "a documentation example should find something"


@pytest.mark.parametrize("block", _of("sh"), ids=lambda b: b.id)
def test_shell_examples_run(block, http, live_server, demo_archive, tmp_path) -> None:
    settings, _ = demo_archive
    for tool in ("curl", "stilts"):
        if re.search(rf"^\s*{tool}\b", block.code, re.M) and not shutil.which(tool):
            pytest.skip(f"{tool} is not installed here")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
    }
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _substitute(block.code, live_server.url)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.strip(), "the example shows something"


def _cli_lines() -> list[tuple[str, str]]:
    out = []
    for block in _of("console") + _of("sh"):
        for line in block.code.replace("\\\n", " ").splitlines():  # continuation lines joined
            line = line.split(" #", 1)[0]
            for m in re.finditer(r"(?:^|[\s/])escape-vo((?:\s+[^\s|;&#]+)+)", line):
                args = m.group(1).strip()
                if (args and not args.startswith("-")) or args in ("--help", "--version"):
                    out.append((block.id, args))
    return out


@pytest.mark.parametrize(("where", "args"), _cli_lines(), ids=[f"{w} {a}" for w, a in _cli_lines()])
def test_command_lines_in_the_docs_exist(where: str, args: str) -> None:
    words = shlex.split(args)
    cmd: click.Command = cli_main
    ctx = click.Context(cli_main, info_name="escape-vo")
    while isinstance(cmd, click.Group):
        if cmd.invoke_without_command and words and words[0].startswith("-"):
            break  # a group that runs itself with options (escape-vo harvest --tap ...)
        name = words.pop(0)
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"{where}: escape-vo has no command {name!r}"
        cmd = sub
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    try:
        cmd.make_context(ctx.info_name, words, parent=ctx.parent)
    except click.UsageError as exc:
        pytest.fail(f"{where}: escape-vo {args}: {exc.format_message()}")


# ---- links -------------------------------------------------------------------------------

CRAWL_PREFIXES = ("/browse", "/query", "/docs/")
START = ["/", "/browse", "/query", "/docs/"]


def test_every_link_of_the_docs_and_pages_resolves(http, live_server, capsys) -> None:
    """Crawl the pages for people; every internal link (and its #fragment) must resolve.
    External links are listed, never fetched (no network here)."""
    base = urlparse(live_server.url)
    pages: dict[str, set[str] | None] = {}  # url -> element ids (None: not HTML)
    status: dict[str, int] = {}
    external: set[str] = set()
    broken: list[str] = []
    todo = [live_server.url + p for p in START]
    links: list[tuple[str, str]] = []
    while todo:
        url = todo.pop()
        if url in status:
            continue
        r = http.get(url, follow_redirects=True)
        status[url] = r.status_code
        if r.status_code == 400 and not urlparse(url).path.startswith(CRAWL_PREFIXES):
            status[url] = 200  # a VO endpoint asking for its parameters (DALI/SODA error): exists
        if r.status_code >= 400:
            continue
        if "text/html" not in r.headers.get("content-type", ""):
            pages[url] = None
            continue
        found, ids = parse(r.text)
        pages[url] = ids
        path = urlparse(url).path
        if not (path == "/" or path.startswith(CRAWL_PREFIXES)) or "search" in path:
            continue
        if urlparse(url).query:
            continue  # a page with parameters (a prefilled query): checked, not crawled
        for link in found:
            target = urljoin(str(r.url), link)
            parsed = urlparse(target)
            if parsed.scheme not in ("http", "https") or parsed.netloc != base.netloc:
                if parsed.scheme in ("http", "https", "mailto"):
                    external.add(target)
                continue
            links.append((url, target))
            page, _ = urldefrag(target)
            if page not in status:
                todo.append(page)
    assert len(pages) > 50, "the crawl reached the docs and the column pages"
    for source, target in links:
        page, fragment = urldefrag(target)
        code = status.get(page)
        if code is None or code >= 400:
            broken.append(f"{source} -> {target} ({code})")
        elif fragment and pages.get(page) is not None and fragment not in pages[page]:
            broken.append(f"{source} -> {target} (no element #{fragment})")
    assert not broken, "\n".join(sorted(set(broken)))
    with capsys.disabled():
        print(f"\nlinks checked: {len(links)} on {len(pages)} pages; external (not fetched):")
        for url in sorted(external):
            print("  " + url)


def test_openapi_json_matches_the_app() -> None:
    spec = create_app(Settings(), db_url="postgresql:///unused").openapi()
    assert {"/browse", "/query", "/docs"} <= set(spec["paths"])
