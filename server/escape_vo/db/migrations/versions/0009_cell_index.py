"""archive.spectra: a B-tree on the HEALPix cell (order 13) of each position.

Cross-matches of uploaded tables look each uploaded position's nine surrounding cells up in it
(escape_vo/geometry/cells.py) instead of scanning the table whole. Declared in
schema/archive.yaml (sky_indexes: cell_index).

Revision ID: 0009
Revises: 0001
Create Date: 2026-11-28 00:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "spectra_healpix_cell_idx",
        "spectra",
        [sa.text("(healpix >> 32)")],
        schema="archive",
    )


def downgrade() -> None:
    op.drop_index("spectra_healpix_cell_idx", table_name="spectra", schema="archive")
