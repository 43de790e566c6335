"""archive.spectra: B-trees on the HEALPix cells at orders 12 (~52") and 11 (~1.7').

Cross-matches of uploaded tables at radii of ~10" to ~41" used the order-10 cells (revision
0011), whose blocks of nine are up to ~1,000 times the cone's area just above ~10"; these two
orders serve ~10" to ~21" and ~21" to ~41" with blocks 16 and 4 times smaller
(escape_vo/geometry/cells.py). Declared in schema/archive.yaml (sky_indexes: cell_index).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHIFTS = {12: 34, 11: 36}  # 2 * (29 - order)


def upgrade() -> None:
    for order, shift in SHIFTS.items():
        op.create_index(
            f"spectra_healpix_cell{order}_idx",
            "spectra",
            [sa.text(f"(healpix >> {shift})")],
            schema="archive",
        )


def downgrade() -> None:
    for order in SHIFTS:
        op.drop_index(f"spectra_healpix_cell{order}_idx", table_name="spectra", schema="archive")
