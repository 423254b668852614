"""The team member's pages: the caseload of each team they are bound to, accepting a case with
its planned first contact, declining it with a reason, recording the first contact, closing it;
the team's capacity; the MDT worklist.

The caseload and every change to it are the teams service's: the console asks it as the person
(see delegation.py), so teams checks their team bindings and audits them by name. Who each case
is comes from spa's own referral rows, shown beside what teams answers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from services.shared.problems import TYPE_PREFIX, Problem, ResourceNotFound
from services.spa.audit import record_access
from services.spa.console.delegation import call
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, CheckedForm, Visit, render, requires_role, see_other
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.referrals.service import age_on

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Member = Annotated[Visit, Depends(requires_role(Role.TEAM_MEMBER, Role.CRU))]
TeamCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
StatusQuery = Annotated[str | None, Query(alias="status", max_length=16, pattern=r"^[a-z_]+$")]
# The times people type are the UK's; the services keep UTC.
UK = ZoneInfo("Europe/London")
DECLINE_REASONS = {
    "capacity_full": "The team has no capacity",
    "not_appropriate": "Not appropriate for this team",
    "wrong_team": "Another team should take it",
}
CLOSE_OUTCOMES = {
    "completed": "Care completed",
    "no_longer_needed": "No longer needed",
    "transferred": "Transferred to another service",
}
OPERATING_STATUSES = {"open": "Open", "pressured": "Under pressure", "closed": "Closed"}


class NotYourTeam(ResourceNotFound):
    title = "No team of yours has this code"


def _team_of(visit: Visit, code: str) -> str:
    if code not in visit.signed_in().teams:
        raise NotYourTeam(f"You are not bound to the team {code}.")
    return code


async def _people(visit: Visit, referral_ids: list[uuid.UUID]) -> dict[uuid.UUID, Referral]:
    """The referrals behind a caseload, from spa's own rows."""
    if not referral_ids:
        return {}
    rows = await visit.db.scalars(select(Referral).where(Referral.id.in_(referral_ids)))
    return {row.id: row for row in rows}


def _local(value: Any) -> str:
    """An answer's time, in the UK's time, for a page."""
    if not value:
        return ""
    moment = datetime.fromisoformat(str(value))
    return moment.astimezone(UK).strftime("%d %b %Y %H:%M")


def _for_input(moment: datetime) -> str:
    return moment.astimezone(UK).strftime("%Y-%m-%dT%H:%M")


@router.get("/teams", response_class=HTMLResponse)
async def my_teams(visit: Member) -> Response:
    person = visit.signed_in()
    teams = []
    for code in sorted(person.teams):
        teams.append(await call(visit.request, person, "teams", "GET", f"/v1/teams/{code}"))
    return render(visit, "teams.html", teams=teams, when=_local)


@router.get("/teams/{team_code}", response_class=HTMLResponse)
async def caseload(team_code: TeamCode, visit: Member, status: StatusQuery = None) -> Response:
    person = visit.signed_in()
    code = _team_of(visit, team_code)
    params = {"status": status} if status else {}
    answer = await call(
        visit.request, person, "teams", "GET", f"/v1/teams/{code}/caseload", params=params
    )
    items = answer["items"]
    people = await _people(visit, [uuid.UUID(item["referral_id"]) for item in items])
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.caseload.read",
        resource_type="caseload",
        resource_id=code,
    )
    rows = [
        {
            "item": item,
            "referral": people.get(uuid.UUID(item["referral_id"])),
        }
        for item in items
    ]
    return render(
        visit,
        "caseload.html",
        team=answer["team"],
        rows=rows,
        shown_status=status,
        age_on=age_on,
        when=_local,
        default_time=_for_input(visit.now),
        decline_reasons=DECLINE_REASONS,
        close_outcomes=CLOSE_OUTCOMES,
    )


@router.get("/teams/{team_code}/worklist", response_class=HTMLResponse)
async def worklist(team_code: TeamCode, visit: Member) -> Response:
    person = visit.signed_in()
    code = _team_of(visit, team_code)
    answer = await call(visit.request, person, "teams", "GET", f"/v1/teams/{code}/worklist")
    items = answer["items"]
    people = await _people(visit, [uuid.UUID(item["referral_id"]) for item in items])
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.worklist.read",
        resource_type="caseload",
        resource_id=code,
    )
    rows = [
        {"item": item, "referral": people.get(uuid.UUID(item["referral_id"]))} for item in items
    ]
    return render(
        visit, "worklist.html", team=answer["team"], rows=rows, when=_local, age_on=age_on
    )


def _moment(form: FormData, name: str) -> str | None:
    """A date and time typed in the UK, as the ISO time with its offset the services take."""
    text = str(form.get(name) or "").strip()
    try:
        typed = datetime.strptime(text, "%Y-%m-%dT%H:%M")
    except ValueError:
        return None
    return typed.replace(tzinfo=UK).isoformat()


def _back_to_team(visit: Visit, form: FormData) -> str:
    code = str(form.get("team") or "")
    return f"{PREFIX}/teams/{code}" if code in visit.signed_in().teams else f"{PREFIX}/teams"


class FormIncomplete(Problem):
    type = TYPE_PREFIX + "form-incomplete"
    title = "Some answers are missing"
    status = 422


@router.get("/assignments/{assignment_id}")
async def assignment(assignment_id: uuid.UUID, visit: Member) -> Response:
    """An assignment's place: its team's caseload (where a refused change sends people back)."""
    held = await visit.db.scalar(
        select(ReferralAssignment.team_code).where(
            ReferralAssignment.assignment_id == assignment_id
        )
    )
    if held is None or held not in visit.signed_in().teams:
        raise NotYourTeam(f"No assignment {assignment_id} is on a caseload of yours.")
    return see_other(f"{PREFIX}/teams/{held}")


async def _change(
    visit: Visit, assignment_id: uuid.UUID, change: str, body: dict[str, Any], form: FormData
) -> Response:
    await call(
        visit.request,
        visit.signed_in(),
        "teams",
        "POST",
        f"/v1/assignments/{assignment_id}/{change}",
        json=body,
    )
    return see_other(_back_to_team(visit, form))


@router.post("/assignments/{assignment_id}/accept")
async def accept(assignment_id: uuid.UUID, visit: Member, form: CheckedForm) -> Response:
    planned = _moment(form, "planned_first_contact_at")
    if planned is None:
        raise FormIncomplete("Enter when the team plans its first contact, as a date and time.")
    body = {"planned_first_contact_at": planned}
    return await _change(visit, assignment_id, "accept", body, form)


@router.post("/assignments/{assignment_id}/decline")
async def decline(assignment_id: uuid.UUID, visit: Member, form: CheckedForm) -> Response:
    reason = str(form.get("reason") or "")
    if reason not in DECLINE_REASONS:
        raise FormIncomplete("Choose why the team declines the case.")
    note = str(form.get("note") or "").strip()
    body = {"reason": reason, **({"note": note} if note else {})}
    return await _change(visit, assignment_id, "decline", body, form)


@router.post("/assignments/{assignment_id}/first-contact")
async def first_contact(assignment_id: uuid.UUID, visit: Member, form: CheckedForm) -> Response:
    at = _moment(form, "at")
    if at is None:
        raise FormIncomplete("Enter when the first contact was made, as a date and time.")
    return await _change(visit, assignment_id, "first-contact", {"at": at}, form)


@router.post("/assignments/{assignment_id}/close")
async def close(assignment_id: uuid.UUID, visit: Member, form: CheckedForm) -> Response:
    outcome = str(form.get("outcome") or "completed")
    if outcome not in CLOSE_OUTCOMES:
        raise FormIncomplete("Choose how the case ended.")
    return await _change(visit, assignment_id, "close", {"outcome": outcome}, form)


@router.get("/teams/{team_code}/capacity", response_class=HTMLResponse)
async def capacity_form(team_code: TeamCode, visit: Member) -> Response:
    person = visit.signed_in()
    code = _team_of(visit, team_code)
    team = await call(visit.request, person, "teams", "GET", f"/v1/teams/{code}")
    return render(
        visit, "capacity.html", team=team, errors={}, statuses=OPERATING_STATUSES, when=_local
    )


@router.post("/teams/{team_code}/capacity", response_class=HTMLResponse)
async def report_capacity(team_code: TeamCode, visit: Member, form: CheckedForm) -> Response:
    person = visit.signed_in()
    code = _team_of(visit, team_code)
    errors: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for name, words in (("available", "places free"), ("maximum", "places in all")):
        text = str(form.get(name) or "").strip()
        if not text.isdigit() or int(text) > 100_000:
            errors[name] = f"Enter the number of {words}, a whole number from 0"
        else:
            numbers[name] = int(text)
    if not errors and numbers["available"] > numbers["maximum"]:
        errors["available"] = "Places free cannot be more than places in all"
    status = str(form.get("operating_status") or "open")
    if status not in OPERATING_STATUSES:
        errors["operating_status"] = "Choose whether the team is open"
    if errors:
        team = await call(visit.request, person, "teams", "GET", f"/v1/teams/{code}")
        return render(
            visit,
            "capacity.html",
            status=422,
            team=team,
            errors=errors,
            statuses=OPERATING_STATUSES,
            when=_local,
        )
    body = {**numbers, "unit": "cases", "operating_status": status}
    await call(visit.request, person, "teams", "PUT", f"/v1/teams/{code}/capacity", json=body)
    return see_other(f"{PREFIX}/teams/{code}/capacity")
