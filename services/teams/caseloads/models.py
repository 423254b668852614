"""Team caseloads: the cases assigned to teams, and the changes to report to spa."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.db import Timestamped, UTCDateTime
from services.shared.outbox import OutboxJobColumns
from services.shared.vocabulary import AssignmentStatus
from services.teams.base import Base


class Assignment(Timestamped, Base):
    """A case on a team's caseload. One per referral, team and kind, however often spa retries."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("referral_id", "team_id", "kind"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(index=True)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    pathway: Mapped[str | None] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=AssignmentStatus.ASSIGNED)
    decision_id: Mapped[uuid.UUID | None] = mapped_column()
    # Model B: the team member linked to the patient's practice, who holds the case.
    linked_worker: Mapped[str | None] = mapped_column(String(200))
    assigned_by: Mapped[str] = mapped_column(String(128))
    # Risk markers for MDT worklists (frailty score, number of long-term conditions, end of life).
    risk: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When spa offers the case to the next team unless this one accepts it (see assign).
    acceptance_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planned_first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(String(32))
    decline_note: Mapped[str | None] = mapped_column(String(1000))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Counts the changes reported to spa, so that spa applies each once and in order.
    update_seq: Mapped[int] = mapped_column(default=0)


class OutboxJob(OutboxJobColumns, Base):
    """An assignment change to report to spa, sent after the change commits."""

    __tablename__ = "outbox_jobs"
    __in_order_of__ = "assignment_id"
    # An assignment's later changes wait behind one given up on: spa must hear them in order.
    __failed_blocks__ = True

    assignment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assignments.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
