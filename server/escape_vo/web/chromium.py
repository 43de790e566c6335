"""How the project's own tools drive Debian's Chromium (the browser tests, the map benchmark,
the documentation's screenshots): one browser binary and one set of flags, never a download.

Not used by the service itself; kept here because all three import escape_vo anyway.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browsers are not fetched
ARGS = [
    "--no-sandbox",  # the tools run as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
OFFLINE = ["--proxy-server=http://127.0.0.1:9"]  # nothing but loopback is reachable
