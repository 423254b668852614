"""A decision can hold the case for a call handler (a rule's ``hold``, e.g. under_18), and
records the locality the directory placed the patient in.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("hold", sa.String(32), nullable=True))
        batch.add_column(sa.Column("locality_code", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("locality_code")
        batch.drop_column("hold")
