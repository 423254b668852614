"""team bindings of clients, referral risk markers and version, assignment update sequence

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("teams", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(
            sa.Column("risk", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("referral_assignments") as batch:
        batch.add_column(sa.Column("update_seq", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("planned_first_contact_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_assignments") as batch:
        batch.drop_column("first_contact_at")
        batch.drop_column("planned_first_contact_at")
        batch.drop_column("update_seq")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("version")
        batch.drop_column("risk")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("teams")
