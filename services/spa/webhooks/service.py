"""Subscriptions of one client: create, change, rotate the secret, ping, replay, recover.
They flush; the request edge commits."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.outbox import JobStatus
from services.spa.identity.models import Client
from services.spa.webhooks import addresses, events
from services.spa.webhooks.fanout import message_for, payload
from services.spa.webhooks.models import (
    BARS_REPLY,
    DELETED,
    WEBHOOK,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from services.spa.webhooks.problems import (
    EndpointRefused,
    MessageNotFound,
    MessageQueued,
    SubscriptionNotFound,
)
from services.spa.webhooks.schemas import SubscriptionCreate, SubscriptionUpdate


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class UrlPolicy:
    """Where subscriptions may point: the configuration's HTTP hosts and allowed networks."""

    def __init__(self, allow_http_hosts: tuple[str, ...], allowed: list[addresses.IpNetwork]):
        self.allow_http_hosts = allow_http_hosts
        self.allowed = allowed

    async def check(self, url: str) -> None:
        try:
            parsed = addresses.parse_url(url, self.allow_http_hosts)
            await addresses.check_url(parsed, self.allowed)
        except addresses.AddressRefused as refusal:
            error = {"in": "body", "field": "url", "reason": str(refusal)}
            raise EndpointRefused("We may not send webhooks to that URL.", errors=[error]) from None


async def create(
    session: AsyncSession, principal: Principal, body: SubscriptionCreate, policy: UrlPolicy
) -> WebhookEndpoint:
    await policy.check(body.url)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        client_id=principal.client_id,
        url=body.url,
        description=body.description,
        event_types=sorted(set(body.event_types)),
        localities=sorted(set(body.localities)),
        teams=sorted(set(body.teams)),
        channels=sorted(set(body.channels)),
        extra_headers=body.headers or {},
        secret=new_secret(),
        enabled=True,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def owned(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """The client's own subscription; another's is answered as missing."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if (
        endpoint is None
        or endpoint.client_id != principal.client_id
        or endpoint.purpose != WEBHOOK
        or endpoint.disabled_reason == DELETED
    ):
        raise SubscriptionNotFound(f"This client has no subscription {endpoint_id}.")
    return endpoint


async def change(endpoint: WebhookEndpoint, body: SubscriptionUpdate, policy: UrlPolicy) -> None:
    if body.url is not None:
        await policy.check(body.url)
        endpoint.url = body.url
    if body.description is not None:
        endpoint.description = body.description
    for name in ("event_types", "localities", "teams", "channels"):
        value = getattr(body, name)
        if value is not None:
            setattr(endpoint, name, sorted(set(value)))
    if body.headers is not None:
        endpoint.extra_headers = body.headers
    if body.enabled is True:
        endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    elif body.enabled is False:
        endpoint.enabled, endpoint.disabled_reason = False, "by_client"


def rotate(endpoint: WebhookEndpoint, overlap: timedelta, now: datetime) -> str:
    """A new secret; the old one goes on signing beside it until the overlap ends."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + overlap
    endpoint.secret = new_secret()
    return endpoint.secret


async def ping(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookMessage:
    event = WebhookEvent(
        kind="dispatch",
        status=JobStatus.DONE,
        event_type=events.PING,
        client_id=endpoint.client_id,
        data={"endpoint_id": str(endpoint.id)},
    )
    session.add(event)
    await session.flush()
    message = message_for(event, endpoint, payload(event))
    session.add(message)
    await session.flush()
    return message


async def messages(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    status: str | None,
    limit: int,
    before_id: int | None = None,
) -> list[WebhookMessage]:
    """The endpoint's messages newest first, from before ``before_id``."""
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
    if status is not None:
        query = query.where(WebhookMessage.status == status)
    if before_id is not None:
        query = query.where(WebhookMessage.id < before_id)
    query = query.order_by(WebhookMessage.id.desc()).limit(limit)
    return list(await session.scalars(query))


async def message_of(
    session: AsyncSession, endpoint: WebhookEndpoint, message_id: int
) -> tuple[WebhookMessage, list[WebhookAttempt]]:
    message = await session.get(WebhookMessage, message_id)
    if message is None or message.endpoint_id != endpoint.id:
        raise MessageNotFound(f"Subscription {endpoint.id} has no message {message_id}.")
    attempts = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.message_id == message.id)
        .order_by(WebhookAttempt.id)
    )
    return message, list(attempts)


def replay(message: WebhookMessage, now: datetime) -> None:
    """Send a delivered or failed message again; the receiver sees the same webhook-id. One
    still queued (or in flight) is refused: it would be sent twice at once."""
    if message.status == JobStatus.PENDING:
        raise MessageQueued(f"Message {message.id} is already queued for delivery.")
    message.status, message.next_attempt_at, message.attempts = JobStatus.PENDING, now, 0


async def recover(
    session: AsyncSession, endpoint: WebhookEndpoint, since: datetime, now: datetime
) -> int:
    """Send again every message to this endpoint that failed since ``since``."""
    result = await session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.endpoint_id == endpoint.id,
            WebhookMessage.status == JobStatus.FAILED,
            WebhookMessage.created_at >= since,
        )
        .values(status=JobStatus.PENDING, next_attempt_at=now, attempts=0)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


class ClientUnknown(Exception):
    """No active client has the id given."""


async def register_bars_endpoint(
    session: AsyncSession,
    *,
    client_id: str,
    source: str,
    url: str,
    headers: dict[str, str],
    policy: UrlPolicy,
) -> WebhookEndpoint:
    """Where the replies to a BaRS client's referrals go when its messages name ``source`` as
    their MessageHeader.source.endpoint: ``url`` (its $process-message), with ``headers``
    (its credentials there). Registering a source again changes its address and headers and
    enables it; the referrals that reply to it follow."""
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None or client.revoked_at is not None:
        raise ClientUnknown(client_id)
    await policy.check(url)
    endpoint = await session.scalar(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.client_id == client_id,
            WebhookEndpoint.purpose == BARS_REPLY,
            WebhookEndpoint.bars_source == source,
        )
        .with_for_update()
    )
    if endpoint is None:
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(),
            client_id=client_id,
            purpose=BARS_REPLY,
            bars_source=source,
            secret=new_secret(),
            event_types=[],
            localities=[],
            teams=[],
            channels=[],
        )
        session.add(endpoint)
    endpoint.url = url
    endpoint.description = "BaRS replies"
    endpoint.extra_headers = {**target_header(source), **headers}
    endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    await session.flush()
    return endpoint


def target_header(source: str) -> dict[str, str]:
    """The NHSD-Target-Identifier that names a sender whose source is ``system|value`` (a DoS
    service id, as BaRS senders name themselves); none for a plain address."""
    system, bar, value = source.rpartition("|")
    if not bar or not value:
        return {}
    named = json.dumps({"value": value, "system": system}, separators=(",", ":"))
    return {"NHSD-Target-Identifier": base64.b64encode(named.encode()).decode()}
