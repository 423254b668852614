"""The event catalogue: every webhook event type with the JSON schema of its body, published
(by ``api.publish_catalogue``) in the ``webhooks`` section of spa's OpenAPI 3.1 document, so that
an integration engine can generate a receiver from it. The schemas describe what
``fanout.payload`` sends."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from services.shared.vocabulary import ReferralStatus
from services.spa.webhooks import events

# Every event type a subscriber may receive, the test ping included.
PUBLISHED = (*events.EVENT_TYPES, events.PING)

HEADERS = (
    "Signed as Standard Webhooks: `webhook-id` (the same on every retry of one message), "
    "`webhook-timestamp` (seconds since 1970) and `webhook-signature` (`v1,` and the base64 "
    "HMAC-SHA256 of `id.timestamp.body` with the subscription's secret; two signatures, "
    "space-separated, during a secret rotation). Answer 2xx to acknowledge; 410 disables the "
    "subscription; anything else is retried with backoff over about a day, waiting at least as "
    "long as a Retry-After on 429 or 503 asks (at most ten hours)."
)

DESCRIPTIONS = {
    "referral.received": "A referral was accepted and stored.",
    "referral.awaiting_assessment": "The case waits in a call-handler queue (see queue_reason).",
    "referral.triaged": "Triage chose the pathway.",
    "referral.routed": "The case was assigned to a team for care.",
    "referral.accepted": "The team accepted the case; detail has planned_first_contact_at.",
    "referral.declined": "The team declined the case; detail has decline_reason.",
    "referral.rerouted": "The case was offered to the next team.",
    "referral.closed": (
        "The team closed the case, a call handler closed a duplicate, or the triage rules "
        "refused it (detail.reason refused_by_rules, detail.refusal its code)."
    ),
    "referral.resolved_with_advice": "The county resolved the contact with advice.",
    "referral.redirected_emergency": "Red flags: the referrer is told to call 999 or go to ED.",
    "referral.cancelled": "The referrer withdrew the referral.",
    "referral.first_contact": "The team first reached the person: the response clock stops.",
    "assignment.accepted": "A team accepted a case that had already moved on.",
    "assignment.declined": "A team declined a case that had already moved on.",
    "assignment.closed": "A team closed a case that had already moved on.",
    "assignment.withdrawn": "A team no longer holds the case (see detail.reason).",
    "safeguarding.escalated": "A safeguarding concern was escalated to the CRU.",
    "safeguarding.acknowledged": "The CRU acknowledged the concern.",
    "safeguarding.declined": "The CRU declined the concern.",
    "safeguarding.first_contact": "The CRU first made contact about the concern.",
    "safeguarding.closed": "The CRU closed its enquiry.",
    "sla.at_risk": "A response clock is close to its target.",
    "sla.breached": "A response clock passed its target; the case is escalated.",
    events.ENDPOINT_DISABLED: "A subscription of this client was disabled (gone or failing).",
    events.MESSAGE_FAILED: "A message to a subscription of this client was given up.",
    events.PING: "A test message asked for by the subscriber.",
}


class EventLinks(BaseModel):
    referral: str = Field(description="GET this (authenticated, audited) for the details")
    timeline: str


class ReferralEventData(BaseModel):
    """Ids, codes and links only: never patient details."""

    referral_id: uuid.UUID
    seq: int = Field(description="The event's place among the referral's events, from 1")
    event: str = Field(description="The timeline event this tells of")
    status: ReferralStatus | None = Field(description="The referral's status it moved to")
    detail: dict[str, Any] = Field(description="Codes and ids, as on the timeline")
    links: EventLinks


class EndpointEventData(BaseModel):
    endpoint_id: uuid.UUID
    reason: str | None = Field(default=None, description='"gone" or "failing"')
    event_id: uuid.UUID | None = Field(default=None, description="The message given up")


def body_model(event_type: str) -> type[BaseModel]:
    """The model of the body sent for ``event_type``."""
    data = (
        EndpointEventData
        if event_type in (*events.OPERATIONAL_EVENTS, events.PING)
        else ReferralEventData
    )
    name = "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))
    kind: Any = Literal[event_type]
    return create_model(
        f"{name}Event",
        __doc__=DESCRIPTIONS[event_type],
        type=(kind, ...),
        timestamp=(datetime, Field(description="When the change happened")),
        data=(data, ...),
    )
