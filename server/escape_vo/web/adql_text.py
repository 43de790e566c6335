"""ADQL text for people: example queries laid out on several lines, links that prefill /query."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from escape_vo.schema.model import Table

# Clauses that start a line, and conditions that start an indented line; longest first.
_CLAUSE = re.compile(
    r"(FROM|WHERE|GROUP BY|HAVING|ORDER BY|UNION ALL|UNION|EXCEPT|INTERSECT|OFFSET|"
    r"(?:(?:LEFT|RIGHT|FULL)(?: OUTER)? |INNER |NATURAL )?JOIN)\b",
    re.IGNORECASE,
)
_CONDITION = re.compile(r"(AND|OR|ON)\b", re.IGNORECASE)
_WIDTH = 88


def pretty_adql(query: str) -> str:
    """One clause per line (FROM, WHERE, ...), top-level conditions indented, long select lists
    wrapped; nothing inside parentheses or string literals is touched."""
    text = " ".join(query.split())
    out: list[str] = []
    depth, i, between = 0, 0, False
    while i < len(text):
        ch = text[i]
        if ch == "'":
            end = i + 1
            while end < len(text):
                if text[end] == "'" and text[end + 1 : end + 2] != "'":
                    break
                end += 2 if text[end] == "'" else 1
            out.append(text[i : end + 1])
            i = end + 1
            continue
        at_word = i == 0 or not (text[i - 1].isalnum() or text[i - 1] in '_."')
        if depth == 0 and at_word:
            if text[i : i + 8].upper() == "BETWEEN ":
                between = True
            m = _CLAUSE.match(text, i)
            if m:
                out.append("\n" + m.group(1))
                i = m.end()
                continue
            m = _CONDITION.match(text, i)
            if m:
                if between and m.group(1).upper() == "AND":
                    between = False
                else:
                    out.append("\n  " + m.group(1))
                    i = m.end()
                    continue
        depth += (ch == "(") - (ch == ")")
        out.append(ch)
        i += 1
    lines = [
        line.strip() if not line.startswith("  ") else line.rstrip()
        for line in "".join(out).split("\n")
    ]
    return "\n".join(_wrap(line) for line in lines if line.strip())


def _wrap(line: str) -> str:
    """A long select list broken after top-level commas, continuation lines indented."""
    if len(line) <= _WIDTH or not line.upper().startswith("SELECT"):
        return line
    items, depth, quoted, last = [], 0, False, 0
    for i, ch in enumerate(line):
        quoted ^= ch == "'"
        if not quoted:
            depth += (ch == "(") - (ch == ")")
            if ch == "," and depth == 0:
                items.append(line[last : i + 1].strip())
                last = i + 1
    items.append(line[last:].strip())
    lines = [items[0]]
    for item in items[1:]:
        if len(lines[-1]) + 1 + len(item) > _WIDTH:
            lines.append("  " + item)
        else:
            lines[-1] += " " + item
    return "\n".join(lines)


def default_query(table: Table, rows: int = 100) -> str:
    """A first query over a table: its principal columns (all if none is principal)."""
    cols = [c.adql_name for c in table.columns if c.principal] or ["*"]
    return pretty_adql(f"SELECT TOP {rows} {', '.join(cols)} FROM {table.qualified_name}")


def query_link(query: str) -> str:
    """URL of the query page with this query in the editor."""
    return "/query?" + urlencode({"query": query})
