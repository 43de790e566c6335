"""`escape-vo docs build`: the Sphinx documentation into DATA_DIR/docs-html, served at /docs."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("docs")
def docs() -> None:
    """The documentation served at /docs: build it from docs/."""


@docs.command("build")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder [DATA_DIR/docs-html].",
)
@click.option("--fresh", is_flag=True, help="Re-read every page instead of only changed ones.")
@click.option("--strict", is_flag=True, help="Exit non-zero on any Sphinx warning.")
def build(out: Path | None, fresh: bool, strict: bool) -> None:
    """Build the HTML documentation (incremental: about a second when nothing changed)."""
    from escape_vo.settings import get_settings
    from escape_vo.web.docs_site import build_docs, docs_output

    target = out or docs_output(get_settings())
    try:
        result = build_docs(target, fresh=fresh)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in result.warnings:
        click.echo(line, err=True)
    if not result.ok:
        click.echo(result.log[-4000:], err=True)
        raise click.ClickException("the documentation did not build (Sphinx output above)")
    click.echo(f"documentation built in {result.output} ({len(result.warnings)} warnings)")
    if strict and result.warnings:
        sys.exit(1)
