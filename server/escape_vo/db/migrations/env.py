"""Alembic environment: migrations run on a connection handed over by escape_vo.db.migrate."""

from __future__ import annotations

from alembic import context

from escape_vo.db.metadata import build_metadata, include_name, include_object


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `escape-vo db migrate`, not the alembic CLI")
    context.configure(
        connection=connection,
        target_metadata=build_metadata(),
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        version_table_schema="escape",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
