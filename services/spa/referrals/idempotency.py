"""Idempotent intake: a client retrying a POST with the same Idempotency-Key gets the status it
was first given with the referral as it now stands, and never a second referral.

The key is unique per client in the database, and its record is written in the transaction
that stores the referral, so of two concurrent requests with one key only one can commit; the
other finds the winner's record and replays it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.spa.referrals.models import IdempotencyRecord
from services.spa.referrals.problems import (
    IdempotencyKeyRepeated,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
)
from services.spa.referrals.schemas import ReferralCreate

HEADER = "Idempotency-Key"
KEY_PATTERN = "^[!-~]{1,255}$"  # visible ASCII, as the document says
_KEY = re.compile(KEY_PATTERN)


def require_key(values: list[str]) -> str:
    """The one key sent. Of two, a proxy or a retry layer added one: which of them the client
    will retry with cannot be known, so neither is taken."""
    if len(values) > 1:
        raise IdempotencyKeyRepeated(f"Send one {HEADER} header; this request has {len(values)}.")
    value = values[0] if values else None
    if value is None or not _KEY.match(value):
        raise IdempotencyKeyRequired(
            f"Send an {HEADER} header (for example a UUID) so that a retry cannot create a "
            "second referral."
        )
    return value


def request_hash(body: ReferralCreate) -> str:
    """A digest of the request's meaning: key order and spacing in the JSON do not change it."""
    meaning = body.model_dump(mode="json")
    # Without a clinical payload, the digest is what it was before the payload existed.
    if meaning.get("clinical") is None:
        meaning.pop("clinical", None)
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find(
    session: AsyncSession, client_id: str, key: str, now: datetime
) -> IdempotencyRecord | None:
    """The live record of this key; an expired one is removed so that the key can be reused."""
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key
        )
    )
    if record is not None and record.expires_at <= now:
        await session.delete(record)
        await session.flush()
        return None
    return record


def new_record(
    client_id: str, key: str, digest: str, referral_id: Any, now: datetime, retention: timedelta
) -> IdempotencyRecord:
    """Only the request's digest, the referral and the status first answered are kept: a
    replay reads the referral afresh, so no second copy of patient data is held here."""
    return IdempotencyRecord(
        client_id=client_id,
        key=key,
        request_hash=digest,
        referral_id=referral_id,
        status_code=201,
        created_at=now,
        expires_at=now + retention,
    )


def check_same_request(record: IdempotencyRecord, digest: str) -> None:
    if record.request_hash != digest:
        raise IdempotencyKeyReused(
            f"The {HEADER} was first used with a different request body; use a new key for a "
            "new referral."
        )
