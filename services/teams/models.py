"""The directory (localities, practices, teams, coverage) and team caseloads (assignments)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.shared.audit import AuditColumns, AuditHeadColumns
from services.shared.clock import clock_default
from services.shared.db import NAMING_CONVENTION, Timestamped, UTCDateTime
from services.shared.outbox import OutboxJobColumns
from services.teams.entries import DEFAULT_TIME_CRITICAL_PATHWAYS


class Base(DeclarativeBase):
    """The service's own tables: each service owns its database and its metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Organisation(Timestamped, Base):
    """The county organisation whose directory this is."""

    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Locality(Timestamped, Base):
    __tablename__ = "localities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # "A", "B" or "custom"; a custom model names its own pathway-to-team-type mapping.
    operating_model: Mapped[str] = mapped_column(String(16))
    pathway_team_types: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Postcode districts (outward codes) that fall back to this locality for unknown practices.
    postcode_districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Pathways that cannot wait for a team to open (see services.teams.resolver.Availability).
    time_critical_pathways: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: [str(pathway) for pathway in DEFAULT_TIME_CRITICAL_PATHWAYS]
    )
    # Where cases go when the locality's teams are closed and their backups are exhausted.
    out_of_hours_team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", use_alter=True)
    )


class Practice(Timestamped, Base):
    __tablename__ = "practices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    ods_code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(10))
    locality_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("localities.id"), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    locality: Mapped[Locality] = relationship(lazy="joined")


class Team(Timestamped, Base):
    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team_type: Mapped[str] = mapped_column(String(32), index=True)
    # County-wide teams (the CRU, the equipment service, the contact centre) have no locality.
    locality_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("localities.id"), index=True)
    backup_team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disciplines: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Pathways the team takes; empty means every pathway its locality's model sends it.
    pathways: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Weekly service hours and bank-holiday hours (see services.teams.hours); None is always open.
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    endpoint_url: Mapped[str | None] = mapped_column(String(500))

    # Capacity in the Open Referral / HSDS service_capacity shape, set by the team's own client.
    capacity_available: Mapped[int | None]
    capacity_maximum: Mapped[int | None]
    capacity_unit: Mapped[str | None] = mapped_column(String(32))
    capacity_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    operating_status: Mapped[str] = mapped_column(String(16), default="open")

    coverage: Mapped[list[TeamPractice]] = relationship(
        back_populates="team", cascade="all, delete-orphan", lazy="selectin"
    )


class TeamPractice(Base):
    """A practice a team covers; in Model B, with the team's linked worker for that practice."""

    __tablename__ = "team_practices"

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    practice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practices.id"), primary_key=True, index=True
    )
    linked_worker: Mapped[str | None] = mapped_column(String(200))

    team: Mapped[Team] = relationship(back_populates="coverage")
    practice: Mapped[Practice] = relationship(lazy="joined")


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
    status: Mapped[str] = mapped_column(String(16), default="assigned")
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


class DirectoryChange(Base):
    """One change to the directory: who made it, when, and the entry before and after."""

    __tablename__ = "directory_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_code: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxJob(OutboxJobColumns, Base):
    """An assignment change to report to spa, sent after the change commits."""

    __tablename__ = "outbox_jobs"
    __in_order_of__ = "assignment_id"

    assignment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assignments.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEvent(AuditColumns, Base):
    """Access to patient-related data (see services.shared.audit)."""

    __tablename__ = "audit_events"


class AuditHead(AuditHeadColumns, Base):
    __tablename__ = "audit_head"
