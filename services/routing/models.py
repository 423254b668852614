"""Every routing decision, kept so that it can be explained afterwards."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.shared.db import NAMING_CONVENTION, Timestamped


class Base(DeclarativeBase):
    """The service's own tables: each service owns its database and its metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Decision(Timestamped, Base):
    __tablename__ = "decisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # An opaque reference to the referral in spa; routing holds no patient identifiers.
    referral_id: Mapped[uuid.UUID] = mapped_column(index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
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
    escalations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
