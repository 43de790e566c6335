"""archive.spectra: a B-tree on the HEALPix cell at order 10 (~3.4') of each position.

Cross-matches of uploaded tables at radii of ~10" to ~82" look each uploaded position's nine
surrounding order-10 cells up in it (escape_vo/geometry/cells.py), as those up to ~10" do at
order 13 (revision 0009), instead of a declination band whose work grows with the archive.
Declared in schema/archive.yaml (sky_indexes: cell_index).

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-28 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "spectra_healpix_cell10_idx",
        "spectra",
        [sa.text("(healpix >> 38)")],
        schema="archive",
    )


def downgrade() -> None:
    op.drop_index("spectra_healpix_cell10_idx", table_name="spectra", schema="archive")
