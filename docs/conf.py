"""Sphinx configuration of the escape-vo documentation (MyST Markdown, furo theme).

Built by `escape-vo docs build` into DATA_DIR/docs-html and served by the service at /docs.
Pages made from the code's own metadata (settings, limits, ADQL functions, known gaps, CLI,
OpenAPI, tables) come from the directives in _ext/escape_docs.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from escape_vo import __version__

project = "escape-vo"
author = "the escape-vo developers"
copyright = "the escape-vo developers"
version = release = __version__

extensions = ["myst_parser", "escape_docs"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
# "service:/browse" links point at the pages of the running service (this documentation is
# served by it under /docs); escape_docs turns them into plain absolute paths.
myst_url_schemes = ["http", "https", "mailto", "service"]

html_theme = "furo"
html_title = f"escape-vo {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "navigation_with_keys": True,
    "source_repository": "",
}
pygments_style = "friendly"
smartquotes = False  # quotes in ADQL, messages and names stay as typed
suppress_warnings = ["myst.header"]
