"""Every referral carries its locality once the directory has placed it, so whether it came
to a call-handler queue is now a fact of its own; subscriptions may filter by channel, and carry
headers of their own for receivers that expect them (an API key).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(
            sa.Column("came_to_queue", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Until now a locality was recorded only when a case was queued or escalated.
    op.execute("UPDATE referrals SET came_to_queue = true WHERE locality_code IS NOT NULL")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(
            sa.Column("channels", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("extra_headers", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("extra_headers")
        batch.drop_column("channels")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("came_to_queue")
