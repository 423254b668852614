"""Referrals, their timeline, their team assignments, and the outbox that routes them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.clock import clock_default
from services.shared.db import Timestamped, UTCDateTime
from services.shared.outbox import OutboxJobColumns
from services.shared.vocabulary import AssignmentStatus
from services.spa.base import Base

BigId = BigInteger().with_variant(Integer, "sqlite")


class Referral(Timestamped, Base):
    __tablename__ = "referrals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Optimistic locking: a change based on a stale read fails instead of overwriting another.
    version: Mapped[int] = mapped_column()
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own shape
    status: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    needs: Mapped[list[str]] = mapped_column(JSON)
    red_flags: Mapped[list[str]] = mapped_column(JSON)

    # The patient: the minimum the teams need to reach and identify them.
    nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    nhs_number_verification: Mapped[str] = mapped_column(String(2))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date, index=True)
    postcode: Mapped[str | None] = mapped_column(String(8))
    registered_practice: Mapped[str | None] = mapped_column(String(12))

    safeguarding: Mapped[dict[str, Any]] = mapped_column(JSON)
    consent: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    # Risk markers the referrer knows (frailty score, long-term conditions, end of life).
    risk: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    referrer_client_id: Mapped[str] = mapped_column(String(128), index=True)
    referrer_organisation: Mapped[str | None] = mapped_column(String(12))
    referrer_reference: Mapped[str | None] = mapped_column(String(64))

    # The routing decision, once made: the pathway and why, and the teams it names.
    decision_id: Mapped[uuid.UUID | None] = mapped_column()
    pathway: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int | None] = mapped_column()
    response_target_seconds: Mapped[int | None] = mapped_column()
    routing_reason: Mapped[str | None] = mapped_column(String(300))
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # What the channel adds: NHS 111's Pathways disposition, the county contact's outcome.
    channel_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The locality the directory placed the patient in (from the practice, else the postcode
    # district), known from routing on; its call handlers work the case if it waits.
    locality_code: Mapped[str | None] = mapped_column(String(16), index=True)
    # Whether the case ever waited in a call-handler queue: those handlers may read it.
    came_to_queue: Mapped[bool] = mapped_column(default=False)
    # Why the case waits for a call handler rather than being routed automatically.
    queue_reason: Mapped[str | None] = mapped_column(String(32))
    possible_duplicate_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    # Advice given at the county tier or by a call handler (topic codes and a note).
    advice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The call handler's contact assessment: who, when, and their note.
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancellation_note: Mapped[str | None] = mapped_column(Text)

    # The response clock starts when the referral is received (on the service's clock) and stops
    # at the first contact recorded by the team holding it for care.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default, index=True)
    # Set when a response deadline passed: the case is on the locality coordinator's list.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # A call handler's claim on the case; it lapses at claim_expires_at.
    claim_id: Mapped[uuid.UUID | None] = mapped_column()
    claim_client_id: Mapped[str | None] = mapped_column(String(128))
    claim_handler: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReferralEvent(Base):
    """The append-only timeline of a referral."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
    event_type: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(128))
    # Codes and ids only: never patient identifiers or free text.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReferralClinical(Base):
    """A referral's clinical payload (``ClinicalIn``), kept apart from the row that routing,
    the queue and webhooks read: only a read that may show it loads it."""

    __tablename__ = "referral_clinical"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)


class ReferralAssignment(Base):
    """A team holding the case in the teams service: for care, or the safeguarding escalation."""

    __tablename__ = "referral_assignments"
    __table_args__ = (UniqueConstraint("referral_id", "kind", "team_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[uuid.UUID] = mapped_column()
    team_code: Mapped[str] = mapped_column(String(64))
    team_name: Mapped[str] = mapped_column(String(200))
    team_type: Mapped[str] = mapped_column(String(32))
    assignment_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=AssignmentStatus.ASSIGNED)
    # The last change reported by teams that was applied here (see the assignment-updates API).
    update_seq: Mapped[int] = mapped_column(default=0)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planned_first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)


class IdempotencyRecord(Base):
    """A client's first request under an Idempotency-Key: its retries are answered with the
    same status and referral; a different request under the same key is refused."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    status_code: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OutboxJob(OutboxJobColumns, Base):
    """Work to do after a commit: routing a referral, withdrawing it from a team, escalating."""

    __tablename__ = "outbox_jobs"
    __in_order_of__ = "referral_id"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))


class ReferralTimer(OutboxJobColumns, Base):
    """A durable timer: it fires once ``due_at`` has passed, whichever replica is running then.
    ``next_attempt_at`` starts at ``due_at`` and moves only while a firing is leased or retried."""

    __tablename__ = "referral_timers"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), index=True)
    assignment_id: Mapped[uuid.UUID | None] = mapped_column()
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
