"""An assignment records when its acceptance window ends, counted in the team's service hours
for work that may wait for the team to open. Existing assignments have none (null): spa's
timers already running for them keep their due times.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("acceptance_due_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("acceptance_due_at")
