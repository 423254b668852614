"""Subscriptions, the events they are told of, and each delivery and its attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.clock import clock_default
from services.shared.db import Timestamped, UTCDateTime
from services.shared.outbox import OutboxJobColumns
from services.spa.base import Base

BigId = BigInteger().with_variant(Integer, "sqlite")


# The disabled_reason of a subscription its client deleted: gone for good, its log kept.
DELETED = "deleted"

# What an endpoint is for: a subscription to events (made through /v1/subscriptions), or the
# $process-message of a BaRS sender, where the replies to its referrals go (registered by an
# operator with ``register-bars-endpoint``).
WEBHOOK = "webhook"
BARS_REPLY = "bars_reply"


class WebhookEndpoint(Timestamped, Base):
    """A client's subscription: where to send which events, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    purpose: Mapped[str] = mapped_column(String(16), default=WEBHOOK, server_default=WEBHOOK)
    url: Mapped[str] = mapped_column(String(2048))
    # A BaRS reply endpoint: the MessageHeader.source.endpoint its client's messages name.
    bars_source: Mapped[str | None] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    # Empty means every event type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Empty means every locality (or team).
    localities: Mapped[list[str]] = mapped_column(JSON, default=list)
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Headers the receiver expects on every delivery (an API key): kept like the signing
    # secret, never shown again once set and never logged.
    extra_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Signing secrets ("whsec_..."); during a rotation the previous one signs too until it ends.
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    # When the current run of failed attempts began; cleared by any success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def header_names(self) -> list[str]:
        return sorted(self.extra_headers or {})


class WebhookEvent(OutboxJobColumns, Base):
    """An event, written in the transaction of the change it reports. The dispatcher fans it
    out to the matching endpoints, one referral's events in order."""

    __tablename__ = "webhook_events"
    __in_order_of__ = "referral_id"

    event_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    event_type: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[uuid.UUID | None] = mapped_column()
    # For operational events: the client whose endpoints are told.
    client_id: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
    # Per referral, 1, 2, 3...: assigned when dispatched, in the referral's order of events.
    seq: Mapped[int | None] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookMessage(OutboxJobColumns, Base):
    """One event for one endpoint: delivered at least once, or failed for good."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_messages_due", "status", "next_attempt_at", "id"),
        Index("ix_webhook_messages_waiting", "in_order_of", "status", "id"),
    )
    # Messages with the same key are sent one at a time, in order (a BaRS sender hears of
    # one referral's changes in the order they happened); None for a webhook, whose
    # receiver orders by seq.
    __in_order_of__ = "in_order_of"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_events.event_id"))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    in_order_of: Mapped[str | None] = mapped_column(String(80))
    # The BaRS conversation a reply belongs to (its X-Correlation-Id).
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One try at delivering a message: the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_messages.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
    response_status: Mapped[int | None] = mapped_column()
    latency_ms: Mapped[float] = mapped_column()
    # The receiver's answer, cut short; or what went wrong on the way.
    response_body: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(String(64))
