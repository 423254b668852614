"""Delivery of webhook messages (``fanout`` makes them from events).

The deliverer sends each message, signed per Standard Webhooks, at least once: a message counts as delivered only on a 2xx answer, and
until then it is retried on RETRY_SCHEDULE (with jitter), about a day in all, before it fails
for good. ``410 Gone`` disables the endpoint at once; so does failure sustained past
``disable_after``. Each disabling and each final failure is itself an event, told to the
client's other endpoints.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import aiohttp
import structlog
from sqlalchemy import ColumnElement, Table, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from services.shared.batching import Batcher
from services.shared.clock import Clock
from services.shared.outbox import Claim, JobStatus
from services.spa.metrics import count
from services.spa.webhooks import addresses, events
from services.spa.webhooks.models import (
    BARS_REPLY,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

log = structlog.get_logger(__name__)

RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
BODY_KEPT = 1024


def next_delay(attempts: int) -> timedelta | None:
    """The wait before the next try after ``attempts`` tries, or None when none is left."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    return base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security


# Answers whose Retry-After is honoured: the receiver is over its rate, or down for a while.
RETRY_AFTER_STATUSES = (429, 503)
# However long a receiver asks for, a message is tried again within this.
LONGEST_RETRY_AFTER = timedelta(hours=10)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date; RFC 9110, 10.2.3) as a wait from
    ``now``, at most LONGEST_RETRY_AFTER; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value[:9]))
    else:
        try:
            wait = email.utils.parsedate_to_datetime(value) - now
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(wait, timedelta(0)), LONGEST_RETRY_AFTER)


def sign(endpoint: WebhookEndpoint, message_id: str, at: datetime, body: str) -> str:
    """The signature header: one signature per live secret, so a rotation loses nothing."""
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and endpoint.previous_secret_until > at
    ):
        secrets.append(endpoint.previous_secret)
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)


@dataclass
class _Outcome:
    """One delivery's result, waiting to be recorded with the others that finished with it."""

    message_id: int
    endpoint_id: uuid.UUID
    claimed: int
    attempt: WebhookAttempt
    retry_after: timedelta | None = None
    # A BaRS receiver answers a message it has processed already 409 (REC_CONFLICT,
    # duplicate): it has the reply, so that counts as delivered.
    conflict_is_delivered: bool = False

    @property
    def kind(self) -> str:
        """What was sent, for the metrics: a BaRS reply or a webhook message."""
        return "bars_reply" if self.conflict_is_delivered else "webhook"

    @property
    def delivered(self) -> bool:
        status = self.attempt.response_status
        if status == 409 and self.conflict_is_delivered:
            return True
        return status is not None and 200 <= status < 300


class Deliverer:
    """The outbox handler of webhook messages.

    Each message is sent in its own task, but the database work is shared: the messages
    claimed together are read in one query, and the outcomes that finish together are
    recorded in one transaction (``Batcher``). That is what lets one process keep hundreds of
    deliveries a second going.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: aiohttp.ClientSession,
        *,
        clock: Clock,
        per_endpoint: int = 4,
        allow_http_hosts: tuple[str, ...] = (),
        allowed_networks: list[addresses.IpNetwork] | None = None,
        disable_after: timedelta = timedelta(days=3),
        timeout: float = 15.0,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._timeout = timeout
        self._lease = lease
        # A claim lasts ``lease``; past this much of it, renew before sending, so the delivery
        # (at most ``timeout``) still ends well inside the claim.
        self._renew_after = max(0.0, lease.total_seconds() - 2 * timeout)
        self._http = http
        self._clock = clock
        self._limits: dict[uuid.UUID, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_endpoint)
        )
        self._allow_http_hosts = allow_http_hosts
        self._allowed_networks = allowed_networks or []
        self._disable_after = disable_after
        # Messages in hand per endpoint (sending or waiting for a turn): an endpoint with
        # twice its limit in hand is passed over by the next claim, so a slow endpoint's
        # backlog never fills the worker and holds up the others.
        self._per_endpoint = per_endpoint
        self._in_hand: Counter[uuid.UUID] = Counter()
        self._load = Batcher(self._load_all)
        self._record = Batcher(self._record_all)

    async def __call__(self, claim: Claim) -> None:
        started = time.monotonic()
        found = await self._load(claim.id)
        if found is None:
            return
        message, endpoint = found
        claimed = message.attempts
        if not endpoint.enabled:
            await self._keep_for_recovery(message.id, claimed)
            return
        self._in_hand[endpoint.id] += 1
        limit = self._limits[endpoint.id]
        try:
            # A long wait for a turn renews the claim as it goes, so no other claim takes the
            # message meanwhile (which would count a try that never happened); a claim already
            # lost leaves the message to whoever holds it now.
            keeper = None
            if limit.locked():
                keeper = asyncio.create_task(self._keep_claim(message.id, claimed, started))
            try:
                async with limit:
                    if keeper is not None:
                        keeper.cancel()
                        if _lost(keeper) or not await self._still_held(
                            message.id, claimed, started
                        ):
                            return
                    attempt, retry_after = await self._send(endpoint, message)
            finally:
                if keeper is not None:
                    keeper.cancel()  # also when this delivery is itself cancelled
        finally:
            self._in_hand[endpoint.id] -= 1
            if not self._in_hand[endpoint.id]:
                del self._in_hand[endpoint.id]
        bars = endpoint.purpose == BARS_REPLY
        await self._record(
            _Outcome(
                message.id, endpoint.id, claimed, attempt, retry_after, conflict_is_delivered=bars
            )
        )

    async def _keep_claim(self, message_id: int, claimed: int, since: float) -> bool:
        """Renew the claim while the message waits for its turn; False once it is lost."""
        while True:
            await asyncio.sleep(max(since + self._renew_after - time.monotonic(), 0.5))
            if not await self._renew(message_id, claimed):
                return False
            since = time.monotonic()

    async def _still_held(self, message_id: int, claimed: int, since: float) -> bool:
        """After a wait: renew once more if much of the claim has gone."""
        if time.monotonic() - since <= self._renew_after:
            return True
        return await self._renew(message_id, claimed)

    def claim_filter(self) -> ColumnElement[bool] | None:
        """For the worker's claims: pass over the endpoints with enough in hand already."""
        full = [
            endpoint for endpoint, count in self._in_hand.items() if count >= 2 * self._per_endpoint
        ]
        return WebhookMessage.endpoint_id.not_in(full) if full else None

    async def _load_all(
        self, job_ids: list[int]
    ) -> list[tuple[WebhookMessage, WebhookEndpoint] | None]:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(WebhookMessage, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
                .where(WebhookMessage.id.in_(job_ids), WebhookMessage.status == JobStatus.PENDING)
            )
            found = {message.id: (message, endpoint) for message, endpoint in rows}
        return [found.get(job_id) for job_id in job_ids]

    async def _keep_for_recovery(self, message_id: int, claimed: int) -> None:
        """The endpoint was disabled since the message was made: keep it, unsent, for a
        recovery after the endpoint is enabled."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(WebhookMessage)
                .where(*_held(message_id, claimed))
                .values(status=JobStatus.FAILED, last_error="endpoint_disabled")
                .execution_options(synchronize_session=False)
            )

    async def _renew(self, message_id: int, claimed: int) -> bool:
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(WebhookMessage)
                .where(*_held(message_id, claimed))
                .values(next_attempt_at=self._clock() + self._lease)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _send(
        self, endpoint: WebhookEndpoint, message: WebhookMessage
    ) -> tuple[WebhookAttempt, timedelta | None]:
        """One try; with how long the receiver asked us to wait (Retry-After), if it did."""
        started = time.perf_counter()
        attempt = WebhookAttempt(message_id=message.id, attempted_at=self._clock())
        retry_after = None
        try:
            # One limit for the whole delivery (lookup, connect, send, answer), well inside
            # the claim, so that no other replica takes the message while it is in flight.
            async with asyncio.timeout(self._timeout):
                retry_after = await self._post(endpoint, message, attempt)
        except addresses.AddressRefused:
            attempt.error = "address_refused"
        except (TimeoutError, aiohttp.ServerTimeoutError):
            attempt.error = "timeout"
        except Exception as exc:
            attempt.error = type(exc).__name__[:64]
        attempt.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return attempt, retry_after

    async def _post(
        self, endpoint: WebhookEndpoint, message: WebhookMessage, attempt: WebhookAttempt
    ) -> timedelta | None:
        url = addresses.parse_url(endpoint.url, self._allow_http_hosts)
        # A name is checked by the client's resolver as it connects; a literal, here.
        addresses.check_literal(url, self._allowed_networks)
        message_id = f"msg_{message.event_id.hex}"
        sent_at = self._clock()
        headers = {
            **endpoint.extra_headers,  # the subscriber's own; none may replace those below
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": sign(endpoint, message_id, sent_at, message.payload),
        }
        if endpoint.purpose == BARS_REPLY:
            headers.update(bars_headers(message))
        async with self._http.post(
            url, data=message.payload.encode(), headers=headers, allow_redirects=False
        ) as response:
            attempt.response_status = response.status
            kept = b""
            while len(kept) < BODY_KEPT:
                chunk = await response.content.read(BODY_KEPT - len(kept))
                if not chunk:
                    break
                kept += chunk
        # Whatever the receiver sent, kept as text a database can hold (no NUL).
        text = kept.decode("utf-8", errors="replace")
        attempt.response_body = text.replace("\x00", "\ufffd")
        if response.status not in RETRY_AFTER_STATUSES:
            return None
        return retry_after(response.headers.get("retry-after"), sent_at)

    async def _record_all(self, outcomes: list[_Outcome]) -> list[None]:
        """Every attempt goes in the log; a delivery marks its message done if this replica
        still holds the claim; a failure is settled one by one (it is rare, and it may
        disable an endpoint)."""
        async with self._sessionmaker() as session, session.begin():
            # Endpoint rows are locked first and in one order, so that two replicas recording
            # at once never wait on each other's locks (a deadlock).
            await session.execute(
                select(WebhookEndpoint.id)
                .where(WebhookEndpoint.id.in_({outcome.endpoint_id for outcome in outcomes}))
                .order_by(WebhookEndpoint.id)
                .with_for_update()
            )
            session.add_all([outcome.attempt for outcome in outcomes])
            delivered = [outcome for outcome in outcomes if outcome.delivered]
            if delivered:
                await self._mark_delivered(session, delivered)
            for outcome in outcomes:
                if not outcome.delivered:
                    await self._settle_failure(session, outcome)
        return [None] * len(outcomes)

    async def _mark_delivered(self, session: AsyncSession, delivered: list[_Outcome]) -> None:
        now = self._clock()
        messages = cast(Table, WebhookMessage.__table__)
        connection = await session.connection()
        # Only the messages this replica still holds (the try it claimed is still the last).
        marked = await connection.execute(
            update(messages)
            .where(
                tuple_(messages.c.id, messages.c.attempts).in_(
                    [(outcome.message_id, outcome.claimed) for outcome in delivered]
                ),
                messages.c.status == JobStatus.PENDING,
            )
            .values(status=JobStatus.DONE, delivered_at=now, last_error=None, updated_at=now)
            .returning(messages.c.id)
        )
        done = set(marked.scalars())
        for outcome in delivered:
            if outcome.message_id in done:
                count(session, "deliveries", kind=outcome.kind, outcome="delivered")
        # Any success ends an endpoint's run of failures.
        await session.execute(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id.in_({outcome.endpoint_id for outcome in delivered}),
                WebhookEndpoint.failing_since.is_not(None),
            )
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )

    async def _settle_failure(self, session: AsyncSession, outcome: _Outcome) -> None:
        """Record a failed attempt, only if this replica still holds the claim."""
        message = await session.get(
            WebhookMessage, outcome.message_id, with_for_update=True, populate_existing=True
        )
        if (
            message is None
            or message.status != JobStatus.PENDING
            or message.attempts != outcome.claimed
        ):
            return
        endpoint = await session.get(
            WebhookEndpoint, message.endpoint_id, with_for_update=True, populate_existing=True
        )
        assert endpoint is not None
        now = self._clock()
        status = outcome.attempt.response_status
        message.last_error = outcome.attempt.error or f"status_{status}"
        if status == 410:
            message.status = JobStatus.FAILED
            _disable(session, endpoint, "gone")
            count(session, "deliveries", kind=outcome.kind, outcome="endpoint_gone")
            return
        endpoint.failing_since = endpoint.failing_since or now
        delay = next_delay(message.attempts)
        if delay is not None and outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        if delay is None:
            message.status = JobStatus.FAILED
        gave_up = "gave_up" if delay is None else "failed"
        count(session, "deliveries", kind=outcome.kind, outcome=gave_up)
        if delay is None and message.event_type not in events.OPERATIONAL_EVENTS:
            # Not for operational messages: failures would echo between dead endpoints.
            events.operational(
                session,
                events.MESSAGE_FAILED,
                endpoint.client_id,
                {"endpoint_id": str(endpoint.id), "event_id": str(message.event_id)},
            )
        if delay is not None:
            message.next_attempt_at = now + delay
        if now - endpoint.failing_since >= self._disable_after:
            _disable(session, endpoint, "failing")
        log.warning(
            "webhook_attempt_failed",
            endpoint_id=str(endpoint.id),
            message_id=message.id,
            attempts=message.attempts,
            error=message.last_error,
        )


def bars_headers(message: WebhookMessage) -> dict[str, str]:
    """A BaRS reply goes as a FHIR message with the headers BaRS asks of every request: its
    X-Request-Id is the reply's own stable id (every retry carries the same one, so a
    receiver that has it answers 409 duplicate), its X-Correlation-Id the referral's."""
    headers = {
        "content-type": "application/fhir+json",
        "accept": "application/fhir+json",
        "x-request-id": str(reply_id(message.event_id)),
    }
    if message.correlation_id:
        headers["x-correlation-id"] = message.correlation_id
    return headers


def reply_id(event_id: uuid.UUID) -> uuid.UUID:
    """The id of the BaRS reply that tells of an event: its Bundle.id, its MessageHeader.id
    and the X-Request-Id it is sent with, the same on every try."""
    return uuid.uuid5(REPLY_NAMESPACE, event_id.hex)


# A fixed namespace, so a reply's id depends on its event alone.
REPLY_NAMESPACE = uuid.UUID("6f1d4c1e-5b0a-4f57-9a43-2a7d0c2b8e11")


def _lost(keeper: asyncio.Task[bool]) -> bool:
    """Whether the claim keeper found the claim gone (a failure to renew counts as gone)."""
    if not keeper.done() or keeper.cancelled():
        return False
    return keeper.exception() is not None or not keeper.result()


def _held(message_id: int, claimed: int) -> tuple[ColumnElement[bool], ...]:
    """The message, while it is still pending under the claim this replica made."""
    return (
        WebhookMessage.id == message_id,
        WebhookMessage.attempts == claimed,
        WebhookMessage.status == JobStatus.PENDING,
    )


@asynccontextmanager
async def delivery_client(
    allowed: list[addresses.IpNetwork],
) -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP client for subscribers' endpoints, which are not our services: no service
    credentials, no cookies kept from one answer to the next, no proxy from the environment
    (it would carry requests past the address checks), and every name checked as it is
    resolved. Redirects are refused per request; the time limit is the deliverer's."""
    connector = aiohttp.TCPConnector(
        resolver=addresses.CheckedResolver(allowed), limit=256, ttl_dns_cache=60
    )
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"user-agent": "spa-webhooks/1"},
        auto_decompress=False,
    ) as http:
        yield http


def _disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    if not endpoint.enabled:
        return
    endpoint.enabled, endpoint.disabled_reason = False, reason
    events.operational(
        session,
        events.ENDPOINT_DISABLED,
        endpoint.client_id,
        {"endpoint_id": str(endpoint.id), "reason": reason},
    )
    log.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint.id), reason=reason)
