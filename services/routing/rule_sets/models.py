"""Rule sets as versioned data, the trail of their changes, and what shadow versions would
have decided differently."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.routing.base import Base
from services.shared.clock import clock_default
from services.shared.db import Timestamped, UTCDateTime


class RuleSetStatus(StrEnum):
    """A version's life: uploaded as a draft, tried in shadow beside the active one, made
    active (the one before it superseded), and rolled back from."""

    DRAFT = "draft"
    SHADOW = "shadow"
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    ROLLED_BACK = "rolled_back"


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
    status: Mapped[str] = mapped_column(String(16), default=RuleSetStatus.DRAFT)
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
