"""The referral state machine and its append-only timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.logging import current_request_id
from services.shared.vocabulary import ReferralStatus as S
from services.spa.metrics import count
from services.spa.referrals.models import Referral, ReferralEvent
from services.spa.referrals.problems import IllegalTransition
from services.spa.webhooks import events

TRANSITIONS: dict[S, frozenset[S]] = {
    # Advice given by the county contact centre is resolved as it is recorded.
    S.RECEIVED: frozenset({S.TRIAGED, S.AWAITING_ASSESSMENT, S.RESOLVED_WITH_ADVICE, S.CANCELLED}),
    # A call handler assesses (which triages), resolves with advice, or closes a duplicate.
    S.AWAITING_ASSESSMENT: frozenset({S.TRIAGED, S.RESOLVED_WITH_ADVICE, S.CLOSED, S.CANCELLED}),
    # Closed at once when the rules refuse the case: no team takes it.
    S.TRIAGED: frozenset(
        {
            S.ROUTED,
            S.REDIRECTED_EMERGENCY,
            S.RESOLVED_WITH_ADVICE,
            S.AWAITING_ASSESSMENT,
            S.CANCELLED,
            S.CLOSED,
        }
    ),
    # A team that lets its acceptance window lapse loses the case to the next team (rerouted);
    # when no team is left the locality's call handlers take it.
    S.ROUTED: frozenset(
        {S.ACCEPTED, S.DECLINED, S.REROUTED, S.AWAITING_ASSESSMENT, S.CANCELLED, S.CLOSED}
    ),
    S.DECLINED: frozenset({S.REROUTED, S.AWAITING_ASSESSMENT, S.CANCELLED, S.CLOSED}),
    S.REROUTED: frozenset(
        {S.ACCEPTED, S.DECLINED, S.REROUTED, S.AWAITING_ASSESSMENT, S.CANCELLED, S.CLOSED}
    ),
    S.ACCEPTED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.RESOLVED_WITH_ADVICE: frozenset(),
    S.REDIRECTED_EMERGENCY: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(current: S, target: S) -> bool:
    return target in TRANSITIONS[current]


def record_event(
    session: AsyncSession,
    referral: Referral,
    event_type: str,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> ReferralEvent:
    """Add an event to the referral's timeline, and when subscribers are told of events of its
    type, the webhook event too: both commit with the change, or neither does."""
    event = ReferralEvent(
        referral_id=referral.id,
        event_type=event_type,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        request_id=current_request_id(),
        detail=detail or {},
    )
    session.add(event)
    told = events.webhook_event(event)
    if told is not None:
        session.add(told)
    _count(session, referral, event_type, detail or {})
    return event


def _count(
    session: AsyncSession, referral: Referral, event_type: str, detail: dict[str, Any]
) -> None:
    """The metrics of what the event says happened, counted once it commits."""
    if event_type == "received":
        count(session, "received", channel=referral.channel)
    elif event_type == S.REDIRECTED_EMERGENCY:
        count(session, "redirected")
    elif event_type == S.AWAITING_ASSESSMENT:
        count(session, "queued", queue_reason=referral.queue_reason or "unknown")
    elif event_type == "sla_at_risk":
        count(session, "at_risk", clock=str(detail.get("clock", "response")))
    elif event_type == "sla_breached":
        count(session, "breached", clock=str(detail.get("clock", "response")))


def transition(
    session: AsyncSession,
    referral: Referral,
    target: S,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> ReferralEvent:
    """Move the referral to ``target`` and record it on the timeline, or refuse."""
    current = S(referral.status)
    if not can_transition(current, target):
        raise IllegalTransition(f"A referral that is {current} cannot become {target}.")
    referral.status = target
    if target is S.AWAITING_ASSESSMENT:
        referral.came_to_queue = True
    return record_event(
        session,
        referral,
        target.value,
        actor=actor,
        detail=detail,
        from_status=current,
        to_status=target,
    )
