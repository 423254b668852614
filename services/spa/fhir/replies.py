"""Replies to a BaRS sender: each change it must hear of goes back as a BaRS response message
to the endpoint it registered for the ``MessageHeader.source.endpoint`` of its referral, through
the webhook outbox (durable, one referral's replies sent one at a time and in order, retried,
the address checked at every try, the endpoint's own headers carrying the sender's
credentials). Each reply has an id of its own, the same on every try, for the sender to
deduplicate by.

A message whose source endpoint the sender has not registered is taken in all the same (a
referral is never refused for want of a reply path); its answer says that no reply will follow.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.spa.fhir import documents
from services.spa.fhir.messages import Message
from services.spa.fhir.models import BarsReplyRoute
from services.spa.referrals.models import Referral
from services.spa.webhooks.delivery import reply_id
from services.spa.webhooks.models import (
    BARS_REPLY,
    DELETED,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)

log = structlog.get_logger(__name__)

# The changes a sender is told of, by webhook event type. Routing itself is not: the answer
# to the message tells it (with Prefer: wait), and the team's acceptance is what counts.
REPLIED = (
    "referral.accepted",
    "referral.declined",
    "referral.rerouted",
    "referral.redirected_emergency",
    "referral.resolved_with_advice",
    "referral.awaiting_assessment",
    "referral.cancelled",
    "referral.closed",
)


async def reply_endpoint(
    session: AsyncSession, client_id: str, source: str | None
) -> WebhookEndpoint | None:
    """The client's registered reply endpoint for the source its message names, if any."""
    if not source:
        return None
    found: WebhookEndpoint | None = await session.scalar(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.client_id == client_id,
            WebhookEndpoint.purpose == BARS_REPLY,
            WebhookEndpoint.bars_source == source,
            WebhookEndpoint.enabled.is_(True),
        )
        .order_by(WebhookEndpoint.created_at.desc())
        .limit(1)
    )
    return found


def request_message_id(message: Message, request_id: str) -> str:
    """How a reply names the message it answers: the Bundle's id, as the published examples
    do, else the MessageHeader's, else the request's."""
    return message.bundle.id or message.header.id or request_id


async def remember_route(
    session: AsyncSession,
    message: Message,
    referral: Referral,
    *,
    client_id: str,
    request_id: str,
    correlation_id: str,
) -> bool:
    """Record where the referral's replies go; False when the sender registered no endpoint
    for the message's source (the referral is taken in without replies)."""
    source = message.header.source.endpoint
    endpoint = await reply_endpoint(session, client_id, str(source) if source else None)
    if endpoint is None:
        log.warning("bars_reply_endpoint_unregistered", client_id=client_id)
        return False
    version = message.bundle.meta.versionId if message.bundle.meta is not None else None
    session.add(
        BarsReplyRoute(
            referral_id=referral.id,
            endpoint_id=endpoint.id,
            request_message_id=request_message_id(message, request_id),
            correlation_id=correlation_id,
            bars_version=version or "",
        )
    )
    return True


async def has_route(session: AsyncSession, referral_id: uuid.UUID) -> bool:
    return await session.get(BarsReplyRoute, referral_id) is not None


class Replier:
    """For the webhook dispatcher: the replies a batch of events makes, one per told change
    of a referral that has a reply route."""

    def __init__(self, own_endpoint: str) -> None:
        self._own_endpoint = own_endpoint

    async def __call__(
        self, session: AsyncSession, events: list[WebhookEvent]
    ) -> list[tuple[WebhookMessage, WebhookEndpoint]]:
        told = [e for e in events if e.referral_id is not None and e.event_type in REPLIED]
        if not told:
            return []
        routes = {
            route.referral_id: route
            for route in await session.scalars(
                select(BarsReplyRoute).where(
                    BarsReplyRoute.referral_id.in_({e.referral_id for e in told})
                )
            )
        }
        if not routes:
            return []
        referrals = await _by_id(session, Referral, {r.referral_id for r in routes.values()})
        endpoints = await _by_id(session, WebhookEndpoint, {r.endpoint_id for r in routes.values()})
        made = []
        for event in told:
            route = routes.get(event.referral_id) if event.referral_id else None
            endpoint = endpoints.get(route.endpoint_id) if route else None
            if route is None or endpoint is None or endpoint.disabled_reason == DELETED:
                continue
            referral = referrals[route.referral_id]
            made.append((self._message(event, route, endpoint, referral), endpoint))
        return made

    def _message(
        self,
        event: WebhookEvent,
        route: BarsReplyRoute,
        endpoint: WebhookEndpoint,
        referral: Referral,
    ) -> WebhookMessage:
        body = documents.reply_message(
            referral,
            change=str(event.data.get("event", "")),
            status=str(event.data.get("status") or referral.status),
            detail=event.data.get("detail") or {},
            reply=documents.Reply(
                id=reply_id(event.event_id),
                answers=route.request_message_id,
                version=route.bars_version,
                destination=endpoint.bars_source or endpoint.url,
                source=self._own_endpoint,
                at=event.occurred_at,
            ),
        )
        return WebhookMessage(
            kind="deliver",
            endpoint_id=endpoint.id,
            event_id=event.event_id,
            event_type=event.event_type,
            payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
            request_id=event.request_id,
            traceparent=event.traceparent,
            # One referral's replies leave one at a time, in the order of its events.
            in_order_of=f"bars:{referral.id.hex}",
            correlation_id=route.correlation_id,
        )


async def _by_id(session: AsyncSession, model: Any, ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await session.scalars(select(model).where(model.id.in_(ids)))
    return {row.id: row for row in rows}
