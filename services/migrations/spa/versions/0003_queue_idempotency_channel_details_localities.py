"""call-handler queue, idempotency keys, channel details, locality bindings of clients

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:32:01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFERRAL_COLUMNS = [
    ("locality_code", sa.String(length=16)),
    ("queue_reason", sa.String(length=32)),
    ("possible_duplicate_of", sa.Uuid()),
    ("advice", sa.JSON()),
    ("assessment", sa.JSON()),
    ("assessed_at", sa.DateTime(timezone=True)),
    ("cancellation_note", sa.Text()),
    ("claim_id", sa.Uuid()),
    ("claim_client_id", sa.String(length=128)),
    ("claim_handler", sa.String(length=64)),
    ("claim_expires_at", sa.DateTime(timezone=True)),
]


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_idempotency_records_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("client_id", "key", name=op.f("uq_idempotency_records_client_id_key")),
    )
    op.create_index(
        op.f("ix_idempotency_records_expires_at"), "idempotency_records", ["expires_at"]
    )
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("localities", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(
            sa.Column("channel_details", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        for name, column_type in _REFERRAL_COLUMNS:
            batch.add_column(sa.Column(name, column_type, nullable=True))
        batch.create_index(op.f("ix_referrals_date_of_birth"), ["date_of_birth"])
        batch.create_index(op.f("ix_referrals_locality_code"), ["locality_code"])
        batch.create_foreign_key(
            op.f("fk_referrals_possible_duplicate_of_referrals"),
            "referrals",
            ["possible_duplicate_of"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_constraint(
            op.f("fk_referrals_possible_duplicate_of_referrals"), type_="foreignkey"
        )
        batch.drop_index(op.f("ix_referrals_locality_code"))
        batch.drop_index(op.f("ix_referrals_date_of_birth"))
        for name, _ in reversed(_REFERRAL_COLUMNS):
            batch.drop_column(name)
        batch.drop_column("channel_details")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("localities")
    op.drop_index(op.f("ix_idempotency_records_expires_at"), table_name="idempotency_records")
    op.drop_table("idempotency_records")
