"""One decision per triage request: a request asked again is answered with the one recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:12:40.118204
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("request_key", sa.String(length=64), nullable=True))
    # Decisions recorded before requests were keyed may repeat one another (that was the fault):
    # each keeps a key of its own, its id, which no request's SHA-256 matches.
    op.execute("UPDATE decisions SET request_key = CAST(id AS VARCHAR(64))")
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("request_key", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(
            op.f("uq_decisions_referral_id_request_key"), ["referral_id", "request_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_constraint(op.f("uq_decisions_referral_id_request_key"), type_="unique")
        batch.drop_column("request_key")
