"""Which changes are told to subscribers, and how an event is written with its change.

Every timeline event passes through the session; a flush hook writes the matching webhook
event in the same transaction, so an event exists exactly when its change committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from services.spa.referrals.models import ReferralEvent
from services.spa.webhooks.models import WebhookEvent

# Timeline event type -> webhook event type.
REFERRAL_EVENTS = {
    "received": "referral.received",
    "triaged": "referral.triaged",
    "routed": "referral.routed",
    "accepted": "referral.accepted",
    "declined": "referral.declined",
    "rerouted": "referral.rerouted",
    "closed": "referral.closed",
    "cancelled": "referral.cancelled",
    "safeguarding_escalated": "safeguarding.escalated",
    "sla_at_risk": "sla.at_risk",
    "sla_breached": "sla.breached",
}
ENDPOINT_DISABLED = "endpoint.disabled"
MESSAGE_FAILED = "message.failed"
OPERATIONAL_EVENTS = (ENDPOINT_DISABLED, MESSAGE_FAILED)
EVENT_TYPES = (*REFERRAL_EVENTS.values(), *OPERATIONAL_EVENTS)
# Sent only by the test ping of one endpoint.
PING = "endpoint.ping"


def _emit(session: Session, _context: Any, _instances: Any) -> None:
    for item in list(session.new):
        if isinstance(item, ReferralEvent) and item.event_type in REFERRAL_EVENTS:
            # A timeline event's time and this one's both come from the engine's clock.
            when = {"occurred_at": item.at} if item.at is not None else {}
            session.add(
                WebhookEvent(
                    kind="dispatch",
                    event_type=REFERRAL_EVENTS[item.event_type],
                    referral_id=item.referral_id,
                    **when,
                    data={
                        "event": item.event_type,
                        "status": item.to_status,
                        # Codes and ids only, as on the timeline.
                        "detail": item.detail or {},
                    },
                    request_id=item.request_id,
                )
            )


def install() -> None:
    """Write webhook events with every timeline event (idempotent; spa's models only)."""
    if not event.contains(Session, "before_flush", _emit):
        event.listen(Session, "before_flush", _emit)


def operational(
    session: Session | Any, event_type: str, client_id: str, data: dict[str, Any]
) -> None:
    """An event about the delivery itself, told to the client's other endpoints."""
    session.add(
        WebhookEvent(kind="dispatch", event_type=event_type, client_id=client_id, data=data)
    )


# Registered on import: whatever process writes referrals, their events are written too.
install()
