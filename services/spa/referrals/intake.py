"""Taking a referral in exactly once: the idempotency choreography around the intake use case,
the same for every door a referral comes in by.

A request with a key seen before is answered as the first one was (the same status, with the
referral as it is now); a different request under a used key is refused. Two requests with one
key at the same time make one referral: the second to commit finds the first's record and is
answered as a repeat. With ``Prefer: wait`` the answer waits for routing, up to a limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.spa.audit import record_access
from services.spa.referrals import idempotency, service, waiting
from services.spa.referrals.models import IdempotencyRecord, Referral
from services.spa.referrals.schemas import ReferralCreate
from services.spa.settings import SpaSettings

# Waits up to N seconds for the referral's status to leave the in-flight ones; the status then.
WaitForOutcome = Callable[[uuid.UUID, int], Awaitable[str]]


@dataclass(frozen=True)
class TakenIn:
    referral: Referral
    # 201, or 202 while routing is still under way (what a retry of the request is told too).
    status_code: int
    # A retry, answered as the first request was.
    replayed: bool
    # Read after routing had its chance (a wait, or a replay); else as just committed, when the
    # referral holds no assignment yet.
    settled: bool


async def take_in(
    session: AsyncSession,
    body: ReferralCreate,
    principal: Principal,
    key: str,
    now: datetime,
    *,
    settings: SpaSettings,
    wait: int | None,
    wait_for_outcome: WaitForOutcome,
    wake_router: Callable[[], None],
    with_referral: Callable[[Referral], Awaitable[None]] | None = None,
) -> TakenIn:
    """``with_referral`` adds what a door keeps beside a new referral, in its transaction
    (the BaRS door: where the replies go), before anything can happen to it."""
    digest = idempotency.request_hash(body)
    earlier = await idempotency.find(session, principal.client_id, key, now)
    if earlier is not None:
        return await _replayed(session, earlier, digest, principal)
    window = timedelta(hours=settings.duplicate_window_hours)
    referral = await service.create_referral(
        session, body, principal, duplicate_window=window, now=now
    )
    retention = timedelta(hours=settings.idempotency_retention_hours)
    record = idempotency.new_record(principal.client_id, key, digest, referral.id, now, retention)
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        await session.rollback()
        earlier = await idempotency.find(session, principal.client_id, key, now)
        if earlier is None:
            raise
        return await _replayed(session, earlier, digest, principal)
    if with_referral is not None:
        await with_referral(referral)
    in_flight = wait is not None and referral.status in waiting.IN_FLIGHT
    record.status_code = 202 if in_flight else 201
    await session.commit()
    wake_router()
    if wait is None or not in_flight:
        return TakenIn(referral, record.status_code, replayed=False, settled=False)
    if await wait_for_outcome(referral.id, wait) not in waiting.IN_FLIGHT:
        # A retry of this request is answered as this one is.
        record.status_code = 201
        await session.refresh(referral)
    return TakenIn(referral, record.status_code, replayed=False, settled=True)


async def _replayed(
    session: AsyncSession, record: IdempotencyRecord, digest: str, principal: Principal
) -> TakenIn:
    """The first answer's status, with the referral as it is now; audited like any read."""
    idempotency.check_same_request(record, digest)
    referral = await session.get(Referral, record.referral_id)
    assert referral is not None
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.create_replayed",
        resource_type="referral",
        resource_id=referral.id,
    )
    return TakenIn(referral, record.status_code, replayed=True, settled=True)
