"""Each team records when its published record last changed, for Open Referral's
``modified_after``: the team's own changes and those of what is published with it (its
locality, organisation and covered practices).

Existing teams start from their own last update.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch operations, so that SQLite (which cannot alter a column in place) migrates too.
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE teams SET last_modified_at = updated_at")
    with op.batch_alter_table("teams") as batch:
        batch.alter_column(
            "last_modified_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("last_modified_at")
