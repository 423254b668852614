"""Each outbox row keeps the W3C ``traceparent`` of the request (or job) that wrote it, so the
worker that does the job continues that trace (``services.shared.tracing``). Nullable: rows
written while nothing is traced have none, and neither do the rows already there.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUES = ("outbox_jobs", "referral_timers", "webhook_events", "webhook_messages")


def upgrade() -> None:
    for table in QUEUES:
        op.add_column(table, sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    for table in QUEUES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("traceparent")
