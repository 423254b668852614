"""Which changes are told to subscribers, and the webhook event that tells one.

The referral lifecycle writes a timeline event and its webhook event together
(``lifecycle.record_event``), so an event exists exactly when its change committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.shared.tracing import current_traceparent
from services.shared.vocabulary import ReferralStatus
from services.spa.referrals.models import ReferralEvent
from services.spa.webhooks.models import WebhookEvent

# Timeline event type -> webhook event type. Every status a referral can enter is told (a
# test walks the lifecycle table), and so is every change to a team's hold on the case.
STATUS_EVENTS = {status.value: f"referral.{status.value}" for status in ReferralStatus}
CHANGE_EVENTS = {
    # The team's first contact with the person: what stops the two-hour clock.
    "team_first_contact": "referral.first_contact",
    # A care team's change that moves no status (the referral had moved on already).
    "team_accepted": "assignment.accepted",
    "team_declined": "assignment.declined",
    "team_closed": "assignment.closed",
    "assignment_withdrawn": "assignment.withdrawn",
    "safeguarding_escalated": "safeguarding.escalated",
    "safeguarding_accepted": "safeguarding.acknowledged",
    "safeguarding_declined": "safeguarding.declined",
    "safeguarding_first_contact": "safeguarding.first_contact",
    "safeguarding_closed": "safeguarding.closed",
    "sla_at_risk": "sla.at_risk",
    "sla_breached": "sla.breached",
}
REFERRAL_EVENTS = {**STATUS_EVENTS, **CHANGE_EVENTS}
ENDPOINT_DISABLED = "endpoint.disabled"
MESSAGE_FAILED = "message.failed"
OPERATIONAL_EVENTS = (ENDPOINT_DISABLED, MESSAGE_FAILED)
EVENT_TYPES = (*REFERRAL_EVENTS.values(), *OPERATIONAL_EVENTS)
# Sent only by the test ping of one endpoint.
PING = "endpoint.ping"


def webhook_event(item: ReferralEvent) -> WebhookEvent | None:
    """The webhook event telling subscribers of a timeline event, if its type is told."""
    event_type = REFERRAL_EVENTS.get(item.event_type)
    if event_type is None:
        return None
    # A timeline event's time and this one's both come from the engine's clock.
    when = {"occurred_at": item.at} if item.at is not None else {}
    return WebhookEvent(
        kind="dispatch",
        event_type=event_type,
        referral_id=item.referral_id,
        **when,
        # Codes and ids only, as on the timeline.
        data={"event": item.event_type, "status": item.to_status, "detail": item.detail or {}},
        request_id=item.request_id,
        traceparent=current_traceparent(),
    )


def operational(
    session: Session | Any, event_type: str, client_id: str, data: dict[str, Any]
) -> None:
    """An event about the delivery itself, told to the client's other endpoints."""
    session.add(
        WebhookEvent(kind="dispatch", event_type=event_type, client_id=client_id, data=data)
    )
