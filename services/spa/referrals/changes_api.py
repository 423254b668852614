"""``GET /v1/referrals``: the changes feed, for catching up after an outage."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.shared.auth import Principal, requires
from services.shared.clock import Moment, NowDep
from services.shared.db import SessionDep
from services.shared.pagination import CursorQuery, InvalidCursor, Limit
from services.shared.problems import problem_responses
from services.shared.state import state_of
from services.spa.audit import record_access
from services.spa.referrals import changes
from services.spa.referrals.schemas import ChangeLinks, ReferralChangePage, ReferralChangeRead
from services.spa.state import SpaState

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])


@router.get(
    "",
    summary="The referrals this client may see that changed since a time or a cursor",
    description=(
        "Each changed referral once, at the place of its latest timeline event, oldest first. "
        "Start with `updated_since`; then pass each page's `next_cursor` as `cursor` (with the "
        "same `updated_since`) while `more` is true, and keep the last cursor to resume from. A "
        "referral that changes again is listed again further on. Changes appear once they are "
        "a few seconds old (`SPA_CHANGES_SETTLE_SECONDS`)."
    ),
    responses=problem_responses(InvalidCursor),
)
async def list_changes(
    request: Request,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("referrals:read")],
    updated_since: Annotated[Moment | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> ReferralChangePage:
    settings = state_of(request.app, SpaState).settings
    after = changes.decode_cursor(cursor)
    found, more = await changes.changed_since(
        session,
        principal,
        since=updated_since,
        after_event=after,
        limit=limit,
        settled_before=now - timedelta(seconds=settings.changes_settle_seconds),
    )
    for change in found:
        record_access(
            session,
            client_id=principal.client_id,
            action="referral.changes.read",
            resource_type="referral",
            resource_id=change.referral.id,
        )
    last = found[-1].last_event_id if found else after
    return ReferralChangePage(
        items=[_read(change) for change in found],
        next_cursor=changes.encode_cursor(last) if last else None,
        more=more,
    )


def _read(change: changes.Change) -> ReferralChangeRead:
    referral = change.referral
    base = f"/v1/referrals/{referral.id}"
    return ReferralChangeRead(
        referral_id=referral.id,
        status=referral.status,
        channel=referral.channel,
        urgency=referral.urgency,
        pathway=referral.pathway,
        locality_code=referral.locality_code,
        last_event=change.last_event_type,
        changed_at=change.changed_at,
        links=ChangeLinks(referral=base, timeline=f"{base}/timeline"),
    )
