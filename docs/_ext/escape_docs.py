"""Sphinx directives that write documentation from the code's own metadata.

Nothing here restates a fact the code holds: the environment variables come from
escape_vo.settings (with the comment next to each field), the limits from escape_vo.tap.limits,
the output formats from escape_vo.votable.SUPPORTED, the functions from the ADQL translator and
its UDF registry, the known gaps from tests/unit/test_adql_conformance.py, the commands from the
click group, the HTTP API from the app's OpenAPI document and the tables from schema/*.yaml.
What the code cannot say (a sentence per standard ADQL function, what a setting without a
comment means) is kept here, and a fact without its sentence is a build warning, so the docs
cannot silently fall behind the code.

Each directive produces MyST Markdown that is parsed in place. Pages using them are re-read on
every build (their input is code, which Sphinx does not watch).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import io
import json
import re
import tokenize
from collections import defaultdict
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]


def _cell(text: object) -> str:
    """A value safe inside a Markdown pipe table."""
    return " ".join(str(text if text is not None else "").split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _field_comments(source: str, class_name: str) -> dict[str, str]:
    """Trailing `# comment` of each annotated field of a class, from its source text."""
    tree = ast.parse(source)
    lines_of: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    lines_of[item.lineno] = item.target.id
    comments: dict[str, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.start[0] in lines_of:
            comments[lines_of[tok.start[0]]] = tok.string.lstrip("#").strip()
    return comments


class Generated(SphinxDirective):
    """Base: subclasses return Markdown from markdown(); the page is marked as generated."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        generated = getattr(self.env, "escape_generated_docs", set())
        generated.add(self.env.docname)
        self.env.escape_generated_docs = generated
        return self.parse_text_to_nodes(self.markdown())

    def markdown(self) -> str:
        raise NotImplementedError

    def warn(self, message: str) -> None:
        log.warning(message, location=(self.env.docname, self.lineno))


# ---- configuration ---------------------------------------------------------------------------

# Settings fields whose meaning is not written next to them in settings.py.
_SETTING_TEXT = {
    "data_dir": "Where the embedded database (`pgdata/`), the file store (`files/`), the demo "
    "files and the built documentation (`docs-html/`) live.",
    "host": "Interface `serve` and `demo` listen on (`0.0.0.0` for every interface).",
    "port": "Port `serve` and `demo` listen on.",
}
# Environment variables read outside Settings (found by scanning the package source).
_OTHER_ENV_TEXT = {
    "ESCAPE_VO_DB_URL": "Set by `escape-vo serve --workers N` for its worker processes (the "
    "database URL they share); not meant to be set by hand.",
    "ESCAPE_VO_SCHEMA_DIR": "Read the table declarations from this folder instead of the "
    "installed `schema/` (for developing new tables).",
    "JOB_WORKERS": "Asynchronous TAP jobs each server process runs at once (`serve "
    "--job-workers` sets it); 0 leaves them to separate `escape-vo worker` processes.",
    "ESCAPE_VO_DOCS_SOURCE": "The `docs/` folder `escape-vo docs build` reads when it is not run "
    "from a checkout.",
}


class SettingsTable(Generated):
    def markdown(self) -> str:
        from escape_vo import settings as mod

        comments = _field_comments(inspect.getsource(mod), "Settings")
        rows = []
        for name, field in mod.Settings.model_fields.items():
            text = comments.get(name) or _SETTING_TEXT.get(name)
            if not text:
                self.warn(f"setting {name} has no comment in settings.py and no text in the docs")
            if field.default_factory is not None:
                default = "`./data` in a checkout, else `data` in the working directory"
                if name != "data_dir":
                    default = "(computed)"
            elif field.default is None:
                default = "(unset)"
            else:
                default = f"`{field.default}`"
            rows.append([f"`{name.upper()}`", default, text or ""])
        found = set()
        for path in sorted((REPO / "server" / "escape_vo").rglob("*.py")):
            found |= set(re.findall(r"environ(?:\.get\(|\[)\"([A-Z0-9_]+)\"", path.read_text()))
        others = []
        for name in sorted(found):
            if name in _OTHER_ENV_TEXT:
                others.append([f"`{name}`", _OTHER_ENV_TEXT[name]])
            else:
                self.warn(f"environment variable {name} is read by the code but not documented")
        text = _table(["variable", "default", "meaning"], rows)
        text += "\nRead outside the settings object:\n\n" + _table(["variable", "meaning"], others)
        return text


class LimitsTable(Generated):
    def markdown(self) -> str:
        from escape_vo.tap import limits as mod

        comments = _field_comments(inspect.getsource(mod), "TapLimits")
        rows = []
        for f in dataclasses.fields(mod.TapLimits):
            value = getattr(mod.LIMITS, f.name)
            shown = f"{value:,}"
            if "timeout" in f.name or "retention" in f.name:
                shown += f" s ({_duration(value)})"
            rows.append([f"`{f.name}`", shown, comments.get(f.name, "")])
        return _table(["limit", "value", "meaning"], rows)


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


class FormatsTable(Generated):
    def markdown(self) -> str:
        from escape_vo.votable import SUPPORTED

        rows = [
            [f"`{info.aliases[0]}`", ", ".join(f"`{a}`" for a in info.aliases[1:]),
             f"`{info.mime_type}`", info.format.extension]
            for info in SUPPORTED
        ]  # fmt: skip
        return _table(["RESPONSEFORMAT", "also", "media type sent", "file extension"], rows)


# ---- ADQL ------------------------------------------------------------------------------------

# One sentence per ADQL function: the translator knows the names and arities, not the prose.
_FUNCTION_TEXT = {
    "ABS": ("math", "absolute value; keeps the unit"),
    "CEILING": ("math", "smallest integer not below x; keeps the unit"),
    "FLOOR": ("math", "largest integer not above x; keeps the unit"),
    "DEGREES": ("math", "radians to degrees"),
    "RADIANS": ("math", "degrees to radians"),
    "EXP": ("math", "e to the power x"),
    "LOG": ("math", "natural logarithm (as ADQL defines it; LOG10 is the decimal one)"),
    "LOG10": ("math", "decimal logarithm"),
    "MOD": ("math", "remainder of x / y; computed in numeric for non-integers"),
    "PI": ("math", "π"),
    "POWER": ("math", "x to the power y; the unit follows a constant exponent"),
    "RAND": ("math", "random number in [0, 1); RAND(seed) makes the query reproducible"),
    "ROUND": ("math", "round half away from zero to n decimals (default 0), through numeric"),
    "TRUNCATE": ("math", "cut to n decimals (default 0)"),
    "SQRT": ("math", "square root"),
    "ACOS": ("trigonometry", "arc cosine, radians"),
    "ASIN": ("trigonometry", "arc sine, radians"),
    "ATAN": ("trigonometry", "arc tangent, radians"),
    "ATAN2": ("trigonometry", "arc tangent of y/x in the right quadrant, radians"),
    "COS": ("trigonometry", "cosine of an angle in radians"),
    "COT": ("trigonometry", "cotangent of an angle in radians"),
    "SIN": ("trigonometry", "sine of an angle in radians"),
    "TAN": ("trigonometry", "tangent of an angle in radians"),
    "LOWER": ("string", "lower-case"),
    "UPPER": ("string", "upper-case"),
    "COALESCE": ("conditional", "first argument that is not NULL"),
    "NULLIF": ("conditional", "NULL when both arguments are equal, else the first"),
    "IN_UNIT": ("units", "the value converted to another VOUnit, e.g. IN_UNIT(wave_min, 'nm')"),
    "POINT": ("geometry", "a position: POINT('ICRS', ra, dec) or POINT(ra, dec), degrees"),
    "CIRCLE": ("geometry", "a cone: CIRCLE('ICRS', ra, dec, radius), degrees"),
    "BOX": ("geometry", "a box centred on a position: BOX('ICRS', ra, dec, width, height)"),
    "POLYGON": ("geometry", "a polygon from three or more vertices (great-circle edges)"),
    "REGION": ("geometry", "a region from an STC-S string (Position, Circle, Box, Polygon)"),
    "CENTROID": ("geometry", "the centre of a geometry, as a POINT"),
    "CONTAINS": ("geometry", "1 if the first geometry lies inside the second, else 0; "
                 "uses the HEALPix index when the second is constant"),
    "INTERSECTS": ("geometry", "1 if the two geometries overlap, else 0"),
    "DISTANCE": ("geometry", "great-circle distance between two points, degrees"),
    "AREA": ("geometry", "area of a geometry, square degrees"),
    "COORD1": ("geometry", "first coordinate (ra) of a point"),
    "COORD2": ("geometry", "second coordinate (dec) of a point"),
    "COORDSYS": ("geometry", "the coordinate system of a geometry ('ICRS')"),
}  # fmt: skip
_AGGREGATES = {
    "COUNT": "number of rows (COUNT(*)) or of non-NULL values; COUNT(DISTINCT x)",
    "AVG": "mean (always a double)",
    "MIN": "smallest value",
    "MAX": "largest value",
    "SUM": "sum (of integers: a long)",
}


class AdqlFunctions(Generated):
    def markdown(self) -> str:
        from escape_vo.adql import functions as fn
        from escape_vo.adql import geometry

        by_category: dict[str, list[list[str]]] = defaultdict(list)
        for name in sorted(fn.ADQL_FUNCTIONS):
            category, text = _FUNCTION_TEXT.get(name, ("other", ""))
            if not text:
                self.warn(f"ADQL function {name} is translated but not described in the docs")
            arity = fn._ARITY.get(name)
            if arity:
                low, high = arity
                args = (
                    str(low)
                    if low == high
                    else f"{low} or more"
                    if high is None
                    else (f"{low}–{high}")
                )
            else:
                args = "see ADQL 2.1"
            by_category[category].append([f"`{name}`", args, text])
        for name in sorted(set(_FUNCTION_TEXT) - set(fn.ADQL_FUNCTIONS)):
            self.warn(f"the docs describe {name}, which the translator does not offer")
        if geometry.FUNCTIONS - set(fn.ADQL_FUNCTIONS):
            self.warn("geometry functions missing from ADQL_FUNCTIONS")
        order = ["math", "trigonometry", "string", "conditional", "units", "geometry", "other"]
        text = ""
        for category in order:
            if category in by_category:
                text += f"\n**{category.capitalize()}**\n\n"
                text += _table(["function", "arguments", "what it does"], by_category[category])
        text += "\n**Aggregates**\n\n"
        text += _table(["function", "what it does"],
                       [[f"`{k}`", v] for k, v in _AGGREGATES.items()])  # fmt: skip
        return text


class UdfTable(Generated):
    def markdown(self) -> str:
        from escape_vo.adql import UDFS

        rows = [
            [f"`{u.form}`", ("aggregate; " if u.aggregate else "") + u.description]
            for u in UDFS.values()
        ]
        return _table(["signature", "what it does"], rows)


class LanguageFeatures(Generated):
    def markdown(self) -> str:
        from escape_vo.adql import LANGUAGE_FEATURES

        rows = []
        for ftype, features in LANGUAGE_FEATURES.items():
            group = ftype.rsplit("#", 1)[-1]
            for form, description in features:
                rows.append([f"`{group}`", f"`{form}`", description])
        return _table(["TAPRegExt feature type", "form", "notes"], rows)


def known_gaps() -> dict[tuple[str, int], tuple[str, str]]:
    """KNOWN_GAPS of the ADQL conformance test (the list of record, with its reasons)."""
    path = REPO / "tests" / "unit" / "test_adql_conformance.py"
    spec = importlib.util.spec_from_file_location("_escape_adql_conformance", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.KNOWN_GAPS


class KnownGaps(Generated):
    def markdown(self) -> str:
        try:
            gaps = known_gaps()
        except (OSError, ImportError) as exc:
            self.warn(f"cannot read the known gaps from the tests: {exc}")
            return "The list of known gaps is kept in `tests/unit/test_adql_conformance.py`.\n"
        reasons: dict[str, list[str]] = defaultdict(list)
        for (name, index), (reason, _fragment) in sorted(gaps.items()):
            reasons[reason].append(f"{name}#{index}")
        rows = [[reason, len(cases), ", ".join(cases)] for reason, cases in reasons.items()]
        rows.sort(key=lambda r: -r[1])
        return (
            f"{len(gaps)} queries of the conformance corpus are valid ADQL (or accepted by another "
            "service) that this service deliberately refuses, each with an error message "
            "saying why:\n\n" + _table(["reason", "queries", "corpus cases"], rows)
        )


# ---- the command line ------------------------------------------------------------------------


class CliReference(Generated):
    def markdown(self) -> str:
        import click

        from escape_vo.cli import main

        out: list[str] = []

        def walk(cmd: click.Command, path: list[str]) -> None:
            if isinstance(cmd, click.Group):
                for name in sorted(cmd.commands):
                    walk(cmd.commands[name], [*path, name])
                return
            ctx = click.Context(cmd, info_name=" ".join(path))
            usage = " ".join(cmd.collect_usage_pieces(ctx))
            out.append(f"`{' '.join(path)} {usage}`\n: {cmd.help or ''}\n")
            for param in cmd.params:
                if isinstance(param, click.Option):
                    names = ", ".join(f"`{o}`" for o in param.opts)
                    help_ = param.help or ""
                    if param.show_default and param.default is not None:
                        help_ += f" (default {param.default})"
                    out.append(f"  - {names}: {help_}\n")
            out.append("\n")

        walk(main, ["escape-vo"])
        return "".join(out)


# ---- the HTTP API ----------------------------------------------------------------------------


def openapi_document() -> dict:
    """The app's OpenAPI document, built without a database (routes only)."""
    from escape_vo.settings import Settings
    from escape_vo.web.app import create_app

    app = create_app(Settings(), db_url="postgresql:///escape-vo-docs-build")
    return app.openapi()


class HttpApi(Generated):
    def markdown(self) -> str:
        doc = openapi_document()
        rows = []
        for path, ops in doc.get("paths", {}).items():
            for method, op in ops.items():
                params = ", ".join(
                    f"`{p['name']}`" + ("" if not p.get("required") else " (required)")
                    for p in op.get("parameters", [])
                )
                rows.append([f"`{method.upper()}`", f"`{path}`", op.get("summary", ""), params])
        return (
            f"{len(rows)} operations in {doc['info']['title']} {doc['info']['version']} "
            "([OpenAPI document](service:docs/openapi.json)):\n\n"
            + _table(["method", "path", "what it does", "parameters"], rows)
        )


# ---- tables ----------------------------------------------------------------------------------


class TablesReference(Generated):
    def markdown(self) -> str:
        from escape_vo.schema.model import load_schemas

        text = ""
        for schema in load_schemas():
            tables = [t for t in schema.tables if t.published]
            if not tables:
                continue
            text += f"\n### Schema `{schema.name}`\n\n{schema.description}\n\n"
            for t in tables:
                text += (
                    f"\n#### `{t.qualified_name}`\n\n{t.description} "
                    f"[Browse it](service:browse/{t.qualified_name}).\n\n"
                )
                rows = [
                    [f"`{c.adql_name}`", c.datatype + (f"[{c.arraysize}]" if c.arraysize else ""),
                     c.unit or "", c.ucd or "", c.description]
                    for c in t.columns
                ]  # fmt: skip
                text += _table(["column", "type", "unit", "UCD", "description"], rows)
        return text


# ---- wiring ----------------------------------------------------------------------------------


def _service_links(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """`service:browse/x` links become `/browse/x`: pages of the service serving these docs."""
    for ref in doctree.findall(nodes.reference):
        uri = ref.get("refuri", "")
        if uri.startswith("service:"):
            ref["refuri"] = "/" + uri.removeprefix("service:").lstrip("/")


def _outdated(app: Sphinx, env, added, changed, removed) -> list[str]:
    return sorted(getattr(env, "escape_generated_docs", set()) - set(removed))


def _purge(app: Sphinx, env, docname: str) -> None:
    getattr(env, "escape_generated_docs", set()).discard(docname)


def _write_openapi(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        out = Path(app.outdir) / "openapi.json"
        out.write_text(json.dumps(openapi_document(), indent=1))


def setup(app: Sphinx) -> dict:
    from pygments.lexers.sql import SqlLexer

    app.add_lexer("adql", SqlLexer)  # ADQL is SQL to a highlighter; blocks are `adql` for the tests
    for name, cls in {
        "escape-settings": SettingsTable,
        "escape-limits": LimitsTable,
        "escape-formats": FormatsTable,
        "escape-adql-functions": AdqlFunctions,
        "escape-udfs": UdfTable,
        "escape-language-features": LanguageFeatures,
        "escape-known-gaps": KnownGaps,
        "escape-cli": CliReference,
        "escape-http-api": HttpApi,
        "escape-tables": TablesReference,
    }.items():
        app.add_directive(name, cls)
    app.connect("doctree-resolved", _service_links)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("build-finished", _write_openapi)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
