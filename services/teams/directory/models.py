"""The directory: the county organisation, its localities, practices and teams, and the
history of every change to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.shared.clock import clock_default
from services.shared.db import Timestamped, UTCDateTime
from services.teams.base import Base
from services.teams.directory.entries import DEFAULT_TIME_CRITICAL_PATHWAYS


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
    # Pathways that cannot wait for a team to open
    # (see services.teams.directory.resolver.Availability).
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
    # Weekly service hours and bank-holiday hours (see services.teams.directory.hours); None is
    # always open.
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    endpoint_url: Mapped[str | None] = mapped_column(String(500))

    # Capacity in the Open Referral / HSDS service_capacity shape, set by the team's own client.
    capacity_available: Mapped[int | None]
    capacity_maximum: Mapped[int | None]
    capacity_unit: Mapped[str | None] = mapped_column(String(32))
    capacity_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    operating_status: Mapped[str] = mapped_column(String(16), default="open")
    # When the team's published record last changed: the team itself (capacity and status
    # included) or what is published with it, its locality, organisation and the practices it
    # covers (see services.teams.directory.loading.mark_published_changes). Open Referral's
    # last_modified; always from the service's clock.
    last_modified_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=clock_default, onupdate=clock_default
    )

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
