"""Caseloads: cases put on a team's caseload by spa, and what the team does with them.

Each change a team makes (accept, decline, first contact, close) is reported to spa through the
outbox, in order, so that the referral's status stays true. Teams pushes rather than spa
polling: a push reaches spa within moments of the change, survives either side being down
(the outbox retries), and costs nothing while nothing changes, whereas polling would ask about
every open referral on every cycle.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared import pagination
from services.shared.auth import Principal
from services.shared.logging import current_request_id
from services.shared.tracing import current_traceparent
from services.shared.vocabulary import AssignmentStatus as A
from services.shared.vocabulary import Pathway
from services.teams.caseloads.models import Assignment, OutboxJob
from services.teams.caseloads.problems import (
    AssignmentNotFound,
    AssignmentStateConflict,
    InvalidTime,
    UnknownTeam,
)
from services.teams.caseloads.schemas import (
    AcceptBody,
    AssignmentCreate,
    CloseBody,
    DeclineBody,
    FirstContactBody,
    WithdrawalCreate,
)
from services.teams.directory.hours import open_time_ends
from services.teams.directory.models import Locality, Team
from services.teams.directory.service import may_manage

REPORT_JOB = "report"
CLOCK_SKEW = timedelta(minutes=2)
LATEST_PLANNED_CONTACT = timedelta(days=60)
OPEN = (A.ASSIGNED, A.ACCEPTED)


async def assign(
    session: AsyncSession, request: AssignmentCreate, assigned_by: str, now: datetime
) -> tuple[Assignment, bool]:
    """Put a case on a team's caseload. Returns the assignment and whether it is new: a retry of
    the same referral, team and kind returns the first assignment instead of a second one."""
    existing = await _find(session, request)
    if existing is not None:
        return existing, False
    team = await session.get(Team, request.team_id)
    if team is None or team.retired_at is not None:
        raise UnknownTeam(f"No active team has the id {request.team_id}.")
    assignment = Assignment(
        referral_id=request.referral_id,
        team_id=request.team_id,
        kind=request.kind,
        pathway=request.pathway,
        urgency=request.urgency,
        decision_id=request.decision_id,
        linked_worker=request.linked_worker,
        risk=request.risk.model_dump(exclude_defaults=True),
        acceptance_due_at=await acceptance_due(session, team, request, now),
        assigned_by=assigned_by,
    )
    try:
        async with session.begin_nested():
            session.add(assignment)
    except IntegrityError:
        # A concurrent retry won the race; its assignment is the one.
        existing = await _find(session, request)
        if existing is None:
            raise
        return existing, False
    return assignment, True


async def acceptance_due(
    session: AsyncSession, team: Team, request: AssignmentCreate, now: datetime
) -> datetime | None:
    """When the acceptance window ends. Work that may wait for the team to open counts only
    the team's service hours, so a case given to a PLMDT on Friday evening is not taken from it
    over the weekend. Work that cannot wait reached the team because it is open, and must not
    pause when it closes: its window runs from now."""
    window = request.acceptance_window
    if window is None:
        return None
    if request.pathway is None or await cannot_wait(session, team, request.pathway):
        return now + window
    return open_time_ends(team.hours, now, window)


async def cannot_wait(session: AsyncSession, team: Team, pathway: Pathway) -> bool:
    """Whether the team's locality lists the pathway as time-critical; a county-wide team
    serves every locality, so for it any locality's list counts."""
    query = select(Locality.time_critical_pathways).where(Locality.retired_at.is_(None))
    if team.locality_id is not None:
        query = query.where(Locality.id == team.locality_id)
    return any(pathway in listed for listed in await session.scalars(query))


async def _find(session: AsyncSession, request: AssignmentCreate) -> Assignment | None:
    return await session.scalar(
        select(Assignment).where(
            Assignment.referral_id == request.referral_id,
            Assignment.team_id == request.team_id,
            Assignment.kind == request.kind,
        )
    )


async def get_for(
    session: AsyncSession, assignment_id: uuid.UUID, principal: Principal
) -> tuple[Assignment, Team]:
    """The assignment, if the client acts for its team. Another team's assignment is answered
    exactly as a missing one, so a probe learns nothing of which cases a team holds."""
    assignment = await session.get(Assignment, assignment_id, with_for_update=True)
    team = await session.get(Team, assignment.team_id) if assignment is not None else None
    if assignment is None or team is None or not may_manage(principal, team):
        raise AssignmentNotFound(f"No assignment has the id {assignment_id}.")
    return assignment, team


def accept(session: AsyncSession, assignment: Assignment, body: AcceptBody, now: datetime) -> None:
    _require_status(assignment, "accepted", A.ASSIGNED)
    if not now - CLOCK_SKEW <= body.planned_first_contact_at <= now + LATEST_PLANNED_CONTACT:
        raise InvalidTime("The planned first contact must be from now and within 60 days.")
    assignment.status = A.ACCEPTED
    assignment.accepted_at = now
    assignment.planned_first_contact_at = body.planned_first_contact_at
    _report(
        session,
        assignment,
        "accepted",
        now,
        planned_first_contact_at=body.planned_first_contact_at.isoformat(),
    )


def decline(
    session: AsyncSession, assignment: Assignment, body: DeclineBody, now: datetime
) -> None:
    _require_status(assignment, "declined", A.ASSIGNED)
    assignment.status = A.DECLINED
    assignment.declined_at = now
    assignment.decline_reason = body.reason
    assignment.decline_note = body.note
    # The note is free text and stays with the team; spa learns only the reason code.
    _report(session, assignment, "declined", now, decline_reason=str(body.reason))


def record_first_contact(
    session: AsyncSession, assignment: Assignment, body: FirstContactBody, now: datetime
) -> None:
    _require_status(assignment, "first_contact", A.ACCEPTED)
    if assignment.first_contact_at is not None:
        raise AssignmentStateConflict("First contact is already recorded for this assignment.")
    if body.at > now + CLOCK_SKEW or body.at < assignment.created_at - CLOCK_SKEW:
        raise InvalidTime("First contact cannot be in the future or before the case was assigned.")
    assignment.first_contact_at = body.at
    _report(session, assignment, "first_contact", body.at)


def close(session: AsyncSession, assignment: Assignment, body: CloseBody, now: datetime) -> None:
    _require_status(assignment, "closed", A.ACCEPTED)
    assignment.status = A.CLOSED
    assignment.closed_at = now
    _report(session, assignment, "closed", now, outcome=body.outcome)


async def withdraw(
    session: AsyncSession, body: WithdrawalCreate, now: datetime
) -> list[Assignment]:
    """Withdraw the referral's open assignments of this kind; a repeat finds none left open.
    Nothing is reported back: the change came from spa."""
    query = select(Assignment).where(
        Assignment.referral_id == body.referral_id,
        Assignment.kind == body.kind,
        Assignment.status.in_(OPEN),
    )
    withdrawn = list(await session.scalars(query.with_for_update()))
    for assignment in withdrawn:
        assignment.status = A.WITHDRAWN
        assignment.closed_at = now
    return withdrawn


def withdraw_one(session: AsyncSession, assignment: Assignment, reason: str, now: datetime) -> bool:
    """Take back a case the team has not accepted (it let the acceptance window lapse). True
    when withdrawn now, False when it already was; an accepted case is the team's and stays."""
    if assignment.status == A.WITHDRAWN:
        return False
    _require_status(assignment, "withdrawn", A.ASSIGNED, A.DECLINED)
    assignment.status = A.WITHDRAWN
    assignment.decline_reason = assignment.decline_reason or reason[:32]
    assignment.closed_at = now
    return True


def _require_status(assignment: Assignment, change: str, *allowed: A) -> None:
    if assignment.status not in allowed:
        raise AssignmentStateConflict(
            f"An assignment that is {assignment.status} cannot be {change.replace('_', ' ')}."
        )


def _report(
    session: AsyncSession, assignment: Assignment, change: str, at: datetime, **extra: Any
) -> None:
    assignment.update_seq += 1
    payload = {
        "assignment_id": str(assignment.id),
        "team_id": str(assignment.team_id),
        "kind": assignment.kind,
        "change": change,
        "at": at.isoformat(),
        "seq": assignment.update_seq,
        **extra,
    }
    session.add(
        OutboxJob(
            kind=REPORT_JOB,
            assignment_id=assignment.id,
            payload=payload,
            request_id=current_request_id(),
            traceparent=current_traceparent(),
        )
    )


async def caseload(
    session: AsyncSession,
    team: Team,
    *,
    status: str | None,
    kind: str | None,
    after: tuple[Any, ...] | None = None,
    limit: int | None = None,
) -> list[Assignment]:
    """The team's assignments oldest first, from after the key ``after`` (created_at, id)."""
    query = _in_order(select(Assignment).where(Assignment.team_id == team.id), after)
    if status is not None:
        query = query.where(Assignment.status == status)
    if kind is not None:
        query = query.where(Assignment.kind == kind)
    return list(await session.scalars(query.limit(limit)))


def _in_order(query: Select[Any], after: tuple[Any, ...] | None) -> Select[Any]:
    start = pagination.after([Assignment.created_at, Assignment.id], after)
    if start is not None:
        query = query.where(start)
    return query.order_by(Assignment.created_at, Assignment.id)


def worklist_reasons(
    risk: dict[str, Any], *, frailty_threshold: int, conditions_threshold: int
) -> list[str]:
    reasons = []
    frailty = risk.get("clinical_frailty_scale")
    if frailty is not None and frailty >= frailty_threshold:
        reasons.append(f"clinical frailty scale {frailty}")
    conditions = risk.get("long_term_conditions")
    if conditions is not None and conditions >= conditions_threshold:
        reasons.append(f"{conditions} long-term conditions")
    if risk.get("end_of_life"):
        reasons.append("end of life")
    return reasons


async def open_cases(
    session: AsyncSession, team: Team, *, after: tuple[Any, ...] | None = None
) -> list[Assignment]:
    query = select(Assignment).where(Assignment.team_id == team.id, Assignment.status.in_(OPEN))
    return list(await session.scalars(_in_order(query, after)))
