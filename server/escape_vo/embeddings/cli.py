"""`escape-vo embed ...`: preprocess, train, apply, list models, find similar spectra."""

from __future__ import annotations

import json
import sys

import click


def _db():
    from escape_vo.db import database, ensure_schema
    from escape_vo.settings import get_settings

    settings = get_settings()
    return settings, database(settings), ensure_schema


@click.group()
def embed() -> None:
    """Embeddings: train models on the spectra, embed them, search similar ones."""


@embed.command()
@click.option("--workers", type=int, default=None, help="Reader processes [default: cores].")
def preprocess(workers: int | None) -> None:
    """Resample the spectra not yet on the model grid (train and apply do this too)."""
    from escape_vo.embeddings.grid import DEFAULT_GRID
    from escape_vo.embeddings.preprocess import preprocess as run

    settings, db, ensure = _db()
    with db as url:
        ensure(url)
        n = run(url, settings.files_url, DEFAULT_GRID, workers=workers, progress=True)
    click.echo(f"{n} spectra resampled onto {DEFAULT_GRID.name}")


@embed.command()
@click.option("--model", "name", required=True, help="Model to train: pca, autoencoder, spherical.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every generator.")
@click.option("--epochs", type=int, default=None, help="Training epochs (autoencoders).")
@click.option("--latent-dim", type=int, default=None, help="Latent dimensions (max 16).")
@click.option(
    "--param", "extra", multiple=True, metavar="KEY=VALUE", help="Any model parameter (JSON value)."
)
@click.option("--where", default=None, help="SQL condition on archive.spectra AS s to train on.")
@click.option("--test-fraction", type=float, default=0.1, show_default=True)
@click.option("--workers", type=int, default=None, help="Reader processes for preprocessing.")
@click.option(
    "--tries",
    type=int,
    default=1,
    show_default=True,
    help="Versions to fit from seeds SEED, SEED+1, ... on one held-out split; the one with "
    "the lowest held-out error is named best.",
)
@click.option(
    "--split-seed", type=int, default=None, help="Seed of the held-out split [default: SEED]."
)
def train(
    name: str,
    seed: int,
    epochs: int | None,
    latent_dim: int | None,
    extra: tuple[str, ...],
    where: str | None,
    test_fraction: float,
    workers: int | None,
    tries: int,
    split_seed: int | None,
) -> None:
    """Train a new version of a model (or several, --tries); metrics go to embeddings.models."""
    from escape_vo.embeddings.train import best_of, train_versions

    params: dict = {}
    if epochs is not None:
        params["epochs"] = epochs
    if latent_dim is not None:
        params["latent_dim"] = latent_dim
    for item in extra:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    settings, db, ensure = _db()
    with db as url:
        ensure(url)
        try:
            records = train_versions(
                url, settings.files_url, name, seed=seed, tries=tries, params=params,
                where=where, test_fraction=test_fraction, progress=True, workers=workers,
                split_seed=split_seed,
            )  # fmt: skip
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    for rec in records:
        held_out = "none held out"
        if rec.test_error is not None:
            held_out = f"{rec.test_error:.5g} on {rec.n_test} held-out"
        click.echo(
            f"{rec.name} version {rec.version} ({rec.kind}, seed {rec.seed}): trained on "
            f"{rec.n_train} spectra, reconstruction error {rec.train_error:.5g} (train), {held_out}"
        )
    best = best_of(records)
    if len(records) > 1:
        click.echo(f"best: version {best.version} (lowest held-out error)")
    click.echo(f"apply it with: escape-vo embed apply --model {best.name} --version {best.version}")


@embed.command()
@click.option("--model", "names", multiple=True, help="Model(s) to apply [default: all trained].")
@click.option("--version", type=int, default=None, help="Version [default: the newest].")
@click.option("--batch", type=int, default=8192, show_default=True, help="Spectra per batch.")
@click.option("--workers", type=int, default=None, help="Reader processes for preprocessing.")
def apply(names: tuple[str, ...], version: int | None, batch: int, workers: int | None) -> None:
    """Embed the spectra that have no vector for the model version yet (incremental)."""
    from escape_vo.embeddings.apply import ApplyBusy, trained_names
    from escape_vo.embeddings.apply import apply as run
    from escape_vo.embeddings.store import ModelNotFound

    settings, db, ensure = _db()
    with db as url:
        ensure(url)
        todo = list(names) or trained_names(url)
        if not todo:
            raise click.ClickException("no model trained yet: escape-vo embed train --model NAME")
        for name in todo:
            try:
                r = run(url, settings.files_url, name, version, batch_rows=batch,
                        progress=True, workers=workers)  # fmt: skip
            except (ModelNotFound, ApplyBusy) as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(
                f"{r.model} v{r.version}: {r.embedded} spectra embedded"
                + (f", {r.dropped} vectors of older versions dropped" if r.dropped else "")
            )


@embed.command(name="models")
def models_cmd() -> None:
    """List the trained models with their metrics."""
    import psycopg

    from escape_vo.embeddings.store import list_models

    _, db, ensure = _db()
    with db as url:
        ensure(url)
        with psycopg.connect(url) as conn:
            records = list_models(conn)
    if not records:
        click.echo("no model trained yet: escape-vo embed train --model NAME")
    for r in records:
        mark = "*" if r.is_current else " "
        test = f"{r.test_error:.5g}" if r.test_error is not None else "-"
        click.echo(
            f"{mark} {r.name:<12} v{r.version:<3} {r.kind:<22} dim {r.latent_dim:<3} "
            f"seed {r.seed:<6} train {r.n_train:<7} test error {test}  "
            f"{r.trained_at:%Y-%m-%d %H:%M}"
        )


@embed.command()
@click.argument("did")
@click.option("--model", default=None, help="Model [default: the best applied one].")
@click.option("-k", type=int, default=10, show_default=True)
@click.option("--index", type=int, default=None, help="DID a file: its spectrum at this index.")
@click.option("--redshift", type=float, default=None, help="DID a file: [default: its own].")
def similar(did: str, model: str | None, k: int, index: int | None, redshift: float | None) -> None:
    """The k spectra most similar to DID, or to the spectrum of a FITS file DID names."""
    from pathlib import Path

    import psycopg

    from escape_vo.embeddings.example import ExampleError, current_record, embed_file
    from escape_vo.embeddings.search import SearchError, nearest_to_vector
    from escape_vo.embeddings.search import similar as run

    settings, db, ensure = _db()
    path = Path(did)
    with db as url:
        ensure(url)
        try:
            if path.is_file():
                with psycopg.connect(url) as conn:
                    record = current_record(conn, model)
                e = embed_file(settings.files_url, record, path.read_bytes(), path.name, index,
                               redshift)  # fmt: skip
                sky = f"latent sky ({e.lon:.2f}, {e.lat:.2f})"
                click.echo(f"# {path.name}: model {e.model} v{e.version}, anomaly score "
                           f"{e.anomaly_score:.2f}, {sky}")  # fmt: skip
                for warning in e.warnings:
                    click.echo(f"# note: {warning}")
                with psycopg.connect(url) as conn:
                    found = nearest_to_vector(conn, e.model, e.vector, k)
            else:
                with psycopg.connect(url) as conn:
                    found = run(conn, did, model, k)
        except (SearchError, ExampleError) as exc:
            raise click.ClickException(str(exc)) from None
    for n in found:
        click.echo(f"{n.distance:.5f}  {n.publisher_did}  {n.instrument or '-'}  "
                   f"{n.target_class or '-'}")  # fmt: skip
    sys.stdout.flush()
