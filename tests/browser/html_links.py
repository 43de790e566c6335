"""Links and element ids of an HTML page (stdlib parser), for the link checker and page tests."""

from __future__ import annotations

from html.parser import HTMLParser


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            value = a.get(key)
            if value and tag in ("a", "link", "img", "script"):
                self.links.append(value)


def parse(html: str) -> tuple[list[str], set[str]]:
    """(every href/src of a, link, img and script elements, every id and a name)."""
    collector = _Collector()
    collector.feed(html)
    return collector.links, collector.ids
