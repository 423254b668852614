"""The Central Referral Unit's pages: the safeguarding concerns escalated to its teams, each
with its s42 details and the clock on its acknowledgement, and the acknowledgement itself.

The CRU acknowledges a concern by accepting its assignment in teams, as the person; teams
reports the acceptance back to spa, which stops the acknowledgement clock and writes the
referral's timeline. So the console can do no more than teams allows the person's teams.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from services.shared.problems import TYPE_PREFIX, ResourceNotFound, ValidationFailed
from services.spa.audit import record_access
from services.spa.console import delegation
from services.spa.console.pages.queue import S42_QUESTIONS
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, CheckedForm, Visit, render, requires_role, see_other
from services.spa.referrals import safeguarding

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Officer = Annotated[Visit, Depends(requires_role(Role.CRU))]
SHOWN = 100
# When the CRU plans its first contact, as the acceptance tells teams.
FIRST_CONTACT = {
    "hour": ("Within the hour", timedelta(hours=1)),
    "four_hours": ("Within 4 hours", timedelta(hours=4)),
    "day": ("Within a day", timedelta(days=1)),
}


class EscalationNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "safeguarding-escalation-not-found"
    title = "No such safeguarding escalation"


@router.get("/cru", response_class=HTMLResponse)
async def cru_page(visit: Officer) -> Response:
    person = visit.signed_in()
    escalations = await safeguarding.escalations_for(visit.db, person.teams, limit=SHOWN)
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.cru",
        resource_type="safeguarding_escalations",
        resource_id=",".join(sorted(person.teams)) or "-",
    )
    return render(
        visit,
        "cru.html",
        escalations=escalations,
        s42_questions=S42_QUESTIONS,
        first_contact=FIRST_CONTACT,
    )


@router.post("/cru/{assignment_id}/acknowledge")
async def acknowledge(assignment_id: uuid.UUID, visit: Officer, form: CheckedForm) -> Response:
    person = visit.signed_in()
    held = await safeguarding.escalation_held(visit.db, assignment_id, person.teams)
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.cru.acknowledge",
        resource_type="referral",
        resource_id=held.referral_id if held else assignment_id,
        outcome="allowed" if held else "denied",
    )
    if held is None:
        raise EscalationNotFound(f"None of your teams holds escalation {assignment_id}.")
    choice = FIRST_CONTACT.get(str(form.get("first_contact") or ""))
    if choice is None:
        raise ValidationFailed("Choose when the CRU will first make contact.")
    planned = visit.now + choice[1]
    await delegation.call(
        visit.request,
        person,
        "teams",
        "POST",
        f"/v1/assignments/{assignment_id}/accept",
        json={"planned_first_contact_at": planned.isoformat()},
    )
    return see_other(f"{PREFIX}/cru")
