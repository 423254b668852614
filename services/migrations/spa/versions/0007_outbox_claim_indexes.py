"""Outbox claims stay cheap with a long queue: due jobs indexed in claim order, and each
ordered queue indexed by its key, status and id.

With only (status, next_attempt_at), a claim of the route or webhook queue sorted every due job
and, for each, scanned every pending job to ask whether an earlier one of its referral waited:
quadratic in the queue's length, which is longest exactly when the service is overloaded.

Building an index blocks writes to its table while it builds. The queue tables keep their done
jobs (nothing prunes them yet), so on a long-running deployment they can be large: run this
migration in a quiet period.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 06:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUES = ("outbox_jobs", "referral_timers", "webhook_events")
ORDERED = ("outbox_jobs", "webhook_events")


def upgrade() -> None:
    for table in QUEUES:
        op.drop_index(f"ix_{table}_due", table_name=table)
        op.create_index(f"ix_{table}_due", table, ["status", "next_attempt_at", "id"])
    # The message queue had no due index at all.
    op.create_index(
        "ix_webhook_messages_due", "webhook_messages", ["status", "next_attempt_at", "id"]
    )
    for table in ORDERED:
        op.drop_index(f"ix_{table}_referral_id", table_name=table)
        op.create_index(f"ix_{table}_waiting", table, ["referral_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_messages_due", table_name="webhook_messages")
    for table in ORDERED:
        op.drop_index(f"ix_{table}_waiting", table_name=table)
        op.create_index(f"ix_{table}_referral_id", table, ["referral_id"])
    for table in QUEUES:
        op.drop_index(f"ix_{table}_due", table_name=table)
        op.create_index(f"ix_{table}_due", table, ["status", "next_attempt_at"])
