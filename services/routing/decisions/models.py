"""Every routing decision, kept so that it can be explained afterwards."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.routing.base import Base
from services.shared.db import Timestamped


class Decision(Timestamped, Base):
    __tablename__ = "decisions"
    # One decision per triage of a referral: a request asked again gets the one recorded.
    __table_args__ = (UniqueConstraint("referral_id", "request_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # An opaque reference to the referral in spa; routing holds no patient identifiers.
    referral_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # The SHA-256 of the request (services.routing.decisions.service.request_key); decisions
    # recorded before requests were keyed hold their own id instead, so that none matches a request.
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
