"""escape.uws_jobs: a B-tree on (kind, owner_id, creation_time) for each owner's job list.

With TRUSTED_USER_HEADER set, a job list shows one user's jobs (or the anonymous ones), most
recent first; without this index PostgreSQL read every job of the kind, newest first, until it
had found LAST of that user's. Declared in schema/uws.yaml.

Revision ID: 0010
Revises: 0003
Create Date: 2026-11-28 02:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uws_jobs_kind_owner_id_creation_time_idx",
        "uws_jobs",
        ["kind", "owner_id", "creation_time"],
        schema="escape",
    )


def downgrade() -> None:
    op.drop_index(
        "uws_jobs_kind_owner_id_creation_time_idx", table_name="uws_jobs", schema="escape"
    )
