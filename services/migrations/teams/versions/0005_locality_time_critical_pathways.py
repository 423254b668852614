"""Which pathways cannot wait for a team to open is each locality's policy, in the directory.

Existing localities get the new default, rapid response only: reablement (a two-day standard)
now waits for the locality team rather than going to the out-of-hours service. A locality that
wants otherwise lists its pathways in the directory.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch operations, so that SQLite (which cannot alter constraints in place) migrates too.
    with op.batch_alter_table("localities") as batch:
        batch.add_column(
            sa.Column(
                "time_critical_pathways",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("""'["rapid_response"]'"""),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("localities") as batch:
        batch.drop_column("time_critical_pathways")
