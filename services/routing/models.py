"""Every routing decision, kept so that it can be explained afterwards."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.shared.audit import AuditColumns, AuditHeadColumns
from services.shared.clock import clock_default
from services.shared.db import NAMING_CONVENTION, Timestamped, UTCDateTime


class Base(DeclarativeBase):
    """The service's own tables: each service owns its database and its metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Decision(Timestamped, Base):
    __tablename__ = "decisions"
    # One decision per triage of a referral: a request asked again gets the one recorded.
    __table_args__ = (UniqueConstraint("referral_id", "request_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # An opaque reference to the referral in spa; routing holds no patient identifiers.
    referral_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # The SHA-256 of the request (services.routing.service.request_key); decisions recorded
    # before requests were keyed hold their own id instead, so that none matches a request.
    request_key: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(128))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    rule_set_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rule_sets.id"))
    rule_set_version: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(64))
    pathway: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int]
    response_target_seconds: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(300))
    trace: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The team for the pathway (None for advice and redirects) with the directory's explanation.
    team: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    team_outcome: Mapped[str] = mapped_column(String(16))
    team_explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Why the case is held for a call handler rather than sent to a team, if it is.
    hold: Mapped[str | None] = mapped_column(String(32))
    # Why the rules refuse the case outright (no team, no call handler), if they do.
    refuse: Mapped[str | None] = mapped_column(String(32))
    # Where the directory placed the patient (a locality code), or None if nowhere.
    locality_code: Mapped[str | None] = mapped_column(String(64))
    escalations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class RuleSetVersion(Timestamped, Base):
    """One uploaded version of a rule table, for the county or for one locality."""

    __tablename__ = "rule_sets"
    __table_args__ = (
        UniqueConstraint("scope", "version"),
        # At most one active and one shadow version per scope.
        Index(
            "uq_rule_sets_active_scope",
            "scope",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index(
            "uq_rule_sets_shadow_scope",
            "scope",
            unique=True,
            postgresql_where=text("status = 'shadow'"),
            sqlite_where=text("status = 'shadow'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # "county", or the code of the locality whose referrals this table replaces the county's for.
    scope: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    # draft, active, shadow, superseded or rolled_back.
    status: Mapped[str] = mapped_column(String(16), default="draft")
    document: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RuleSetEvent(Base):
    """The audit trail of rule-set changes: who uploaded, activated, shadowed or rolled back."""

    __tablename__ = "rule_set_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    rule_set_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rule_sets.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)


class ShadowDisagreement(Base):
    """A live decision on which a shadow candidate would have chosen differently."""

    __tablename__ = "shadow_disagreements"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"), index=True)
    candidate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rule_sets.id"), index=True)
    active_pathway: Mapped[str] = mapped_column(String(32))
    active_rule: Mapped[str] = mapped_column(String(64))
    candidate_pathway: Mapped[str] = mapped_column(String(32))
    candidate_rule: Mapped[str] = mapped_column(String(64))
    active_escalations: Mapped[list[str]] = mapped_column(JSON)
    candidate_escalations: Mapped[list[str]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)


class AuditEvent(AuditColumns, Base):
    """Access to patient-related data (see services.shared.audit)."""

    __tablename__ = "audit_events"


class AuditHead(AuditHeadColumns, Base):
    __tablename__ = "audit_head"
