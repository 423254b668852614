"""The locality coordinator's page: the cases whose response deadline passed and those at risk
of missing it, in the coordinator's localities, with who holds each and the time left; and
sending a case on to the next team now.

A re-route is the clock's own (services/spa/referrals/rerouting.py), made due at once, so it
goes where a lapsed acceptance window would have sent the case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.responses import HTMLResponse, Response

from services.shared.state import state_of
from services.shared.vocabulary import AssignmentKind
from services.shared.vocabulary import AssignmentStatus as A
from services.spa.api import WakeupsDep
from services.spa.audit import record_access
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, CheckedForm, Visit, render, requires_role, see_other
from services.spa.queue import service as queue
from services.spa.queue.schemas import ClaimRead
from services.spa.referrals import service as referrals
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.referrals.problems import ReferralNotFound
from services.spa.referrals.rerouting import MOVABLE, RerouteReason, request_reroute
from services.spa.state import SpaState

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Coordinator = Annotated[Visit, Depends(requires_role(Role.COORDINATOR))]
SHOWN = 100
REASONS = {
    RerouteReason.TEAM_UNABLE_TO_RESPOND: "The team cannot respond in time",
    RerouteReason.TEAM_AT_CAPACITY: "The team is at capacity",
    RerouteReason.DEADLINE_AT_RISK: "The deadline is at risk",
    RerouteReason.WRONG_TEAM: "The case is with the wrong team",
}


@dataclass(frozen=True)
class Row:
    referral: Referral
    care: ReferralAssignment | None  # the team holding the case for care, if one does
    claim: ClaimRead | None  # a call handler's live claim, if the case waits in a queue
    deadline: datetime | None
    visible: bool  # whether the referral page opens for the coordinator
    movable: bool

    def left(self, now: datetime) -> float | None:
        return (self.deadline - now).total_seconds() if self.deadline else None


async def _row(visit: Visit, referral: Referral) -> Row:
    principal = visit.signed_in().principal()
    held = [
        row
        for row in await referrals.assignments_of(visit.db, referral.id)
        if row.kind == AssignmentKind.CARE and row.status != A.WITHDRAWN
    ]
    target = referral.response_target_seconds
    return Row(
        referral=referral,
        care=held[-1] if held else None,
        claim=queue.live_claim(referral, visit.now),
        deadline=referral.received_at + timedelta(seconds=target) if target else None,
        visible=referrals.handled_by(referral, principal),
        movable=referral.status in MOVABLE and bool(held) and held[-1].status != A.ACCEPTED,
    )


async def _page(visit: Visit, errors: dict[str, str], status: int = 200) -> Response:
    person = visit.signed_in()
    principal = person.principal()
    breached = await queue.list_escalations(visit.db, principal, locality=None, limit=SHOWN)
    at_risk = await queue.list_at_risk(visit.db, principal, limit=SHOWN)
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.escalations",
        resource_type="escalations",
        resource_id=",".join(sorted(person.localities)) or "-",
    )
    return render(
        visit,
        "escalations.html",
        status=status,
        breached=[await _row(visit, referral) for referral in breached],
        at_risk=[await _row(visit, referral) for referral in at_risk],
        reasons=REASONS,
        errors=errors,
        at_risk_share=state_of(visit.request.app, SpaState).clock_policy.at_risk_fraction,
    )


@router.get("/escalations", response_class=HTMLResponse)
async def escalations_page(visit: Coordinator) -> Response:
    return await _page(visit, {})


@router.post("/referrals/{referral_id}/reroute", response_class=HTMLResponse)
async def reroute(
    referral_id: uuid.UUID,
    visit: Coordinator,
    form: CheckedForm,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
) -> Response:
    principal = visit.signed_in().principal()
    referral = await visit.db.get(Referral, referral_id, with_for_update=True)
    if referral is None or not principal.works_locality(referral.locality_code):
        record_access(
            visit.db,
            client_id=principal.client_id,
            action="referral.reroute",
            resource_type="referral",
            resource_id=referral_id,
            outcome="denied",
        )
        raise ReferralNotFound(f"No case {referral_id} is in your localities.")
    try:
        reason = RerouteReason(str(form.get("reason") or ""))
    except ValueError:
        errors = {f"reason-{referral_id}": "Choose why the case goes to another team"}
        return await _page(visit, errors, status=422)
    await request_reroute(visit.db, referral, principal, reason, visit.now)
    background.add_task(wakeups.timers)
    return see_other(f"{PREFIX}/escalations")
