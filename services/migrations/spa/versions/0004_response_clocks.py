"""response clocks: durable timers, receipt and acceptance times, escalation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_timers",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_referral_timers_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_timers")),
    )
    op.create_index("ix_referral_timers_due", "referral_timers", ["status", "next_attempt_at"])
    op.create_index(op.f("ix_referral_timers_referral_id"), "referral_timers", ["referral_id"])
    with op.batch_alter_table("referral_assignments") as batch:
        batch.add_column(sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    # Referrals stored before the clocks existed were received when they were created.
    op.execute("UPDATE referrals SET received_at = created_at")
    with op.batch_alter_table("referrals") as batch:
        batch.alter_column("received_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index(op.f("ix_referrals_received_at"), ["received_at"])


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_index(op.f("ix_referrals_received_at"))
        batch.drop_column("escalated_at")
        batch.drop_column("received_at")
    with op.batch_alter_table("referral_assignments") as batch:
        batch.drop_column("accepted_at")
    op.drop_index(op.f("ix_referral_timers_referral_id"), table_name="referral_timers")
    op.drop_index("ix_referral_timers_due", table_name="referral_timers")
    op.drop_table("referral_timers")
