"""Fan-out of webhook events: each event becomes one message per endpoint that may see it and
asked for it, one referral's events at a time and in order, numbered per referral. A thin
payload: ids, codes, status and links; patient details only through an authenticated, audited
read of the referral."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.clock import Clock
from services.shared.outbox import BatchDone, JobStatus
from services.shared.vocabulary import ReferralStatus
from services.spa.identity.models import Client
from services.spa.referrals import service as referrals
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.webhooks.models import (
    DELETED,
    WEBHOOK,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)

# An event of a referral not yet placed in a locality waits this long at most for routing to
# place it, so that subscriptions filtered by locality hear of it; it is looked at again
# every PLACEMENT_POLL.
PLACEMENT_WAIT = timedelta(minutes=10)


PLACEMENT_POLL = timedelta(milliseconds=500)


class Replier(Protocol):
    """Makes the messages other than subscriptions' that a batch of events calls for (the
    replies to a BaRS sender), each with the endpoint it goes to, in the claim's transaction."""

    async def __call__(
        self, session: AsyncSession, events: list[WebhookEvent]
    ) -> list[tuple[WebhookMessage, WebhookEndpoint]]: ...


class Dispatcher:
    """The batch handler of webhook events: numbers each referral's events in order and makes
    one message per matching endpoint, for a whole batch in the claim's transaction. A batch
    holds at most one event per referral (the claim passes over an event while an earlier one
    of its referral waits), so numbering cannot race."""

    def __init__(
        self,
        clock: Clock,
        placement_wait: timedelta = PLACEMENT_WAIT,
        repliers: Sequence[Replier] = (),
    ) -> None:
        self._clock = clock
        self._placement_wait = placement_wait
        self._repliers = repliers

    async def __call__(self, session: AsyncSession, batch: list[WebhookEvent]) -> BatchDone:
        """Says which events wait for placement, and whether some message is to be sent."""
        # Each event is written once, numbered and done together, not once per change.
        with session.no_autoflush:
            subscribers = await Subscribers.load(session, batch)
            now = self._clock()
            waiting = [event for event in batch if self._awaits_placement(event, subscribers, now)]
            ready = [event for event in batch if event not in waiting]
            await _number(session, [event for event in ready if event.referral_id is not None])
        # Later events of the referral wait behind one that waits, so their order holds.
        later = {event.id: now + PLACEMENT_POLL for event in waiting}
        made: list[tuple[WebhookMessage, WebhookEndpoint]] = []
        for event in ready:
            body = None
            for endpoint in subscribers.of(event):
                body = body or payload(event)  # the same for every endpoint: made once
                made.append((message_for(event, endpoint, body), endpoint))
        for replier in self._repliers:
            made += await replier(session, ready)
        sent = 0
        for message, endpoint in made:
            if not endpoint.enabled:
                # Kept, not sent: a recovery after the endpoint is enabled sends it.
                message.status, message.last_error = JobStatus.FAILED, "endpoint_disabled"
            else:
                sent += 1
            session.add(message)
        return BatchDone(later=later, made_work=sent > 0)

    def _awaits_placement(
        self, event: WebhookEvent, subscribers: Subscribers, now: datetime
    ) -> bool:
        """Whether a locality filter cannot yet be applied to the event: its referral has not
        been placed (routing, which finds the locality, has not run) and some endpoint filters
        by locality. It waits for placement, up to ``placement_wait``."""
        referral = subscribers.referrals.get(event.referral_id) if event.referral_id else None
        if referral is None or referral.status != ReferralStatus.RECEIVED:
            return False
        if referral.locality_code is not None or now - event.occurred_at > self._placement_wait:
            return False
        return any(endpoint.localities for endpoint in subscribers.endpoints)


async def _number(session: AsyncSession, batch: list[WebhookEvent]) -> None:
    """Each referral's next sequence number."""
    if not batch:
        return
    rows = await session.execute(
        select(WebhookEvent.referral_id, func.max(WebhookEvent.seq))
        .where(WebhookEvent.referral_id.in_({event.referral_id for event in batch}))
        .group_by(WebhookEvent.referral_id)
    )
    last: dict[uuid.UUID | None, int | None] = dict(rows.all())
    for event in batch:
        event.seq = (last.get(event.referral_id) or 0) + 1


def message_for(event: WebhookEvent, endpoint: WebhookEndpoint, body: str) -> WebhookMessage:
    """The message that takes ``event`` (as ``body``) to ``endpoint``."""
    return WebhookMessage(
        kind="deliver",
        endpoint_id=endpoint.id,
        event_id=event.event_id,
        event_type=event.event_type,
        payload=body,
        request_id=event.request_id,
        traceparent=event.traceparent,
        # One referral's events reach each endpoint one at a time, in the order of their seq.
        in_order_of=in_order_of(endpoint, event),
    )


def in_order_of(endpoint: WebhookEndpoint, event: WebhookEvent) -> str | None:
    """The key a message waits behind others of: its endpoint and its referral (an event of no
    referral, such as ``message.failed``, waits for nothing)."""
    if event.referral_id is None:
        return None
    return f"{endpoint.id.hex}:{event.referral_id.hex}"


def payload(event: WebhookEvent) -> str:
    """A thin payload: ids, codes, status and links. Patient details only through an
    authenticated, audited GET of the referral."""
    data: dict[str, Any] = dict(event.data)
    if event.referral_id is not None:
        data = {
            "referral_id": str(event.referral_id),
            "seq": event.seq,
            **data,
            "links": {
                "referral": f"/v1/referrals/{event.referral_id}",
                "timeline": f"/v1/referrals/{event.referral_id}/timeline",
            },
        }
    body = {"type": event.event_type, "timestamp": event.occurred_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


@dataclass
class Subscribers:
    """Who is told of each event of a batch: everything read once for the whole batch."""

    endpoints: list[WebhookEndpoint]
    referrals: dict[uuid.UUID, Referral]
    held: dict[uuid.UUID, list[ReferralAssignment]]
    clients: dict[str, Client]

    @classmethod
    async def load(cls, session: AsyncSession, batch: list[WebhookEvent]) -> Subscribers:
        endpoints = list(
            await session.scalars(
                select(WebhookEndpoint)
                .where(
                    WebhookEndpoint.purpose == WEBHOOK,
                    or_(
                        WebhookEndpoint.disabled_reason.is_(None),
                        WebhookEndpoint.disabled_reason != DELETED,
                    ),
                )
                .order_by(WebhookEndpoint.created_at)
            )
        )
        wanted_types = {t for endpoint in endpoints for t in endpoint.event_types or ()}
        every_type = any(not endpoint.event_types for endpoint in endpoints)
        ids = {
            event.referral_id
            for event in batch
            if event.referral_id is not None
            and endpoints
            and (every_type or event.event_type in wanted_types)
        }
        if not ids:
            # Nobody subscribes to these referrals' events: no need to read the referrals.
            return cls(endpoints, {}, {}, {})
        found = await session.scalars(select(Referral).where(Referral.id.in_(ids)))
        held: dict[uuid.UUID, list[ReferralAssignment]] = defaultdict(list)
        for row in await session.scalars(
            select(ReferralAssignment)
            .where(ReferralAssignment.referral_id.in_(ids))
            .order_by(ReferralAssignment.created_at)
        ):
            held[row.referral_id].append(row)
        owners = {endpoint.client_id for endpoint in endpoints}
        clients = await session.scalars(select(Client).where(Client.client_id.in_(owners)))
        return cls(
            endpoints,
            {referral.id: referral for referral in found},
            held,
            {client.client_id: client for client in clients},
        )

    def of(self, event: WebhookEvent) -> list[WebhookEndpoint]:
        endpoints = [
            endpoint
            for endpoint in self.endpoints
            if (event.client_id is None or endpoint.client_id == event.client_id)
            and (not endpoint.event_types or event.event_type in endpoint.event_types)
        ]
        if event.referral_id is None:
            excluded = event.data.get("endpoint_id")
            return [endpoint for endpoint in endpoints if str(endpoint.id) != excluded]
        referral = self.referrals.get(event.referral_id)
        if not endpoints or referral is None:
            return []
        held = self.held.get(referral.id, [])
        team_codes = [row.team_code for row in held]
        return [
            endpoint
            for endpoint in endpoints
            if _wanted(endpoint, referral, held)
            and (client := self.clients.get(endpoint.client_id)) is not None
            and _may_see(client, referral, team_codes)
        ]


def _wanted(endpoint: WebhookEndpoint, referral: Referral, held: list[ReferralAssignment]) -> bool:
    if endpoint.localities and referral.locality_code not in endpoint.localities:
        return False
    if endpoint.channels and referral.channel not in endpoint.channels:
        return False
    return not endpoint.teams or any(row.team_code in endpoint.teams for row in held)


def _may_see(client: Client, referral: Referral, team_codes: list[str]) -> bool:
    """Need to know holds for events as for reads: the referrer, a team holding the case, or
    the call handlers of its locality; and the client must hold referrals:read for spa."""
    if client.revoked_at is not None:
        return False
    if "referrals:read" not in client.scopes or "spa" not in client.audiences:
        return False
    principal = Principal(
        client.client_id,
        frozenset(client.scopes),
        {"teams": client.teams, "localities": client.localities},
    )
    return referrals.may_see(referral, principal, team_codes)
