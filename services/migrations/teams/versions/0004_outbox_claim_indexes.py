"""Outbox claims stay cheap with a long queue: due jobs indexed in claim order, and the queue
indexed by assignment, status and id for the "does an earlier job wait?" probe.

Building an index blocks writes to its table while it builds. The queue tables keep their done
jobs (nothing prunes them yet), so on a long-running deployment they can be large: run this
migration in a quiet period.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 06:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_outbox_jobs_due", table_name="outbox_jobs")
    op.create_index("ix_outbox_jobs_due", "outbox_jobs", ["status", "next_attempt_at", "id"])
    op.drop_index("ix_outbox_jobs_assignment_id", table_name="outbox_jobs")
    op.create_index("ix_outbox_jobs_waiting", "outbox_jobs", ["assignment_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_jobs_waiting", table_name="outbox_jobs")
    op.create_index("ix_outbox_jobs_assignment_id", "outbox_jobs", ["assignment_id"])
    op.drop_index("ix_outbox_jobs_due", table_name="outbox_jobs")
    op.create_index("ix_outbox_jobs_due", "outbox_jobs", ["status", "next_attempt_at"])
