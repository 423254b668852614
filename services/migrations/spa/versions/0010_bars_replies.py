"""Replies to BaRS senders go through the webhook outbox: an endpoint has a purpose (a
subscription, or a BaRS sender's $process-message with the source it names), a message may be
one of a key's messages sent one at a time in order, with the conversation it belongs to, and
each BaRS referral remembers the endpoint its replies go to.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(length=16), nullable=False, server_default="webhook")
        )
        batch.add_column(sa.Column("bars_source", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("webhook_messages") as batch:
        batch.add_column(sa.Column("in_order_of", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("correlation_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_webhook_messages_waiting",
        "webhook_messages",
        ["in_order_of", "status", "id"],
        unique=False,
    )
    op.create_table(
        "bars_reply_routes",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("request_message_id", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("bars_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_bars_reply_routes_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_bars_reply_routes_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_bars_reply_routes")),
    )
    op.create_index(
        op.f("ix_bars_reply_routes_endpoint_id"),
        "bars_reply_routes",
        ["endpoint_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_bars_reply_routes_endpoint_id"), table_name="bars_reply_routes")
    op.drop_table("bars_reply_routes")
    op.drop_index("ix_webhook_messages_waiting", table_name="webhook_messages")
    with op.batch_alter_table("webhook_messages") as batch:
        batch.drop_column("correlation_id")
        batch.drop_column("in_order_of")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("bars_source")
        batch.drop_column("purpose")
