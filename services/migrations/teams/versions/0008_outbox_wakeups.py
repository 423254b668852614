"""Each outbox table notifies its workers when work for them commits, so that a worker in
another process (or on another replica) starts at once instead of at its next poll.

A trigger per table calls ``pg_notify('wake_<table>', '')``: once per statement that inserts
jobs, and for each row that becomes due sooner than it was (put back to pending, or brought
forward). PostgreSQL sends a notification only when its transaction commits, so a worker never
wakes for a job it cannot see yet, and it folds the same notification sent many times in one
transaction into one. Claims, leases and backoff only move a job's due time later, so a worker
is never woken by its own claim. ``services.shared.wake_listener`` listens on these channels; the
poll stays, for due times in the future and whenever the listener is down.

PostgreSQL only: SQLite has no notifications, and its workers poll.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUES = ("outbox_jobs",)

WAKE_FUNCTION = """
CREATE OR REPLACE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wake_' || TG_TABLE_NAME, '');
    RETURN NULL;
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(WAKE_FUNCTION)
    for table in QUEUES:
        op.execute(
            f"CREATE TRIGGER {table}_wake_on_insert AFTER INSERT ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_wake_on_due AFTER UPDATE OF status, next_attempt_at"
            f" ON {table} FOR EACH ROW WHEN (NEW.status = 'pending' AND"
            " (OLD.status IS DISTINCT FROM 'pending' OR NEW.next_attempt_at < OLD.next_attempt_at))"
            " EXECUTE FUNCTION outbox_wake()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in QUEUES:
        op.execute(f"DROP TRIGGER {table}_wake_on_due ON {table}")
        op.execute(f"DROP TRIGGER {table}_wake_on_insert ON {table}")
    op.execute("DROP FUNCTION outbox_wake()")
