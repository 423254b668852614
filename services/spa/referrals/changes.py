"""The changes feed: the referrals a client may see that changed since a point, for a system
catching up after an outage (webhooks missed, or never subscribed).

A referral changes when an event joins its timeline. The feed lists each changed referral once,
at the place of its latest event, oldest first; the cursor is that event's number, so a page
read again gives the same referrals, and a referral that changes again after being listed is
listed again further on. Need to know is applied in the query, as for a single read.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared import pagination
from services.shared.auth import ALL_LOCALITIES, Principal
from services.spa.referrals.models import Referral, ReferralAssignment, ReferralEvent
from services.spa.referrals.service import is_call_handler

CHANGES = "referral-changes"


@dataclass(frozen=True)
class Change:
    referral: Referral
    last_event_id: int
    last_event_type: str
    changed_at: datetime


def encode_cursor(event_id: int) -> str:
    return pagination.encode(CHANGES, (event_id,))


def decode_cursor(cursor: str | None) -> int:
    """The timeline event a cursor is after (0 for none); a cursor of another list, or none
    we gave out, is ``InvalidCursor``. A cursor of the earlier form (``e`` and the event's
    number) is still taken, so a consumer's saved place survives an upgrade."""
    legacy = _legacy_cursor(cursor)
    if legacy is not None:
        return legacy
    found = pagination.decode(cursor, CHANGES, (int,))
    if found is None:
        return 0
    event_id: int = found[0]
    if event_id < 0:
        raise pagination.InvalidCursor("The cursor is not one this list gave out.")
    return event_id


def _legacy_cursor(cursor: str | None) -> int | None:
    if not cursor or len(cursor) > 32:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    if text.startswith("e") and text[1:].isdigit() and len(text) <= 20:
        event_id = int(text[1:])
        if event_id < 2**63:  # no event has a number past a 64-bit column
            return event_id
    return None


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """Need to know, as a query: the referrer, the call handlers of a locality whose queue the
    case came to (or whose coordinator's list it is on), and the teams holding it."""
    clauses: list[ColumnElement[bool]] = [Referral.referrer_client_id == principal.client_id]
    if is_call_handler(principal):
        came = or_(
            Referral.queue_reason.is_not(None),
            Referral.came_to_queue.is_(True),
            Referral.escalated_at.is_not(None),
        )
        if ALL_LOCALITIES in principal.localities:
            clauses.append(came)
        elif principal.localities:
            clauses.append(and_(came, Referral.locality_code.in_(sorted(principal.localities))))
    if principal.teams:
        held = select(ReferralAssignment.id).where(
            ReferralAssignment.referral_id == Referral.id,
            ReferralAssignment.team_code.in_(sorted(principal.teams)),
        )
        clauses.append(exists(held))
    return or_(false(), *clauses)


async def changed_since(
    session: AsyncSession,
    principal: Principal,
    *,
    since: datetime | None,
    after_event: int,
    limit: int,
    settled_before: datetime,
) -> tuple[list[Change], bool]:
    """A page of changes, and whether more wait beyond it.

    Only events written before ``settled_before`` are listed: event numbers are taken as
    transactions insert, not as they commit, so a number can become visible after a higher
    one; holding the newest back a few seconds keeps a cursor from passing over it."""
    latest = select(ReferralEvent.referral_id, func.max(ReferralEvent.id).label("last_id")).where(
        ReferralEvent.id > after_event, ReferralEvent.at < settled_before
    )
    if since is not None:
        latest = latest.where(ReferralEvent.at >= since)
    latest_sub = latest.group_by(ReferralEvent.referral_id).subquery()
    query = (
        select(Referral, ReferralEvent)
        .join(latest_sub, latest_sub.c.referral_id == Referral.id)
        .join(ReferralEvent, ReferralEvent.id == latest_sub.c.last_id)
        .where(visible_to(principal))
        .order_by(latest_sub.c.last_id)
        .limit(limit + 1)
    )
    rows = (await session.execute(query)).all()
    changes = [
        Change(referral, event.id, event.event_type, event.at) for referral, event in rows[:limit]
    ]
    return changes, len(rows) > limit
