"""HTTP API of caseloads: spa assigns cases; a team's own system works them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared import audit, pagination
from services.shared.auth import Principal, requires
from services.shared.batches import (
    BatchAnswer,
    BatchRequest,
    ItemAnswer,
    answered,
    checked,
    refused,
)
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.pagination import CursorQuery, LongLimit
from services.shared.problems import Problem, problem_responses
from services.shared.state import state_of
from services.shared.vocabulary import AssignmentKind
from services.teams.audit import AuditEvent
from services.teams.caseloads import service as assignments
from services.teams.caseloads.models import Assignment
from services.teams.caseloads.problems import (
    AssignmentNotFound,
    AssignmentStateConflict,
    InvalidTime,
    UnknownTeam,
)
from services.teams.caseloads.schemas import (
    AcceptBody,
    AssignmentCreate,
    AssignmentRead,
    AssignmentWithdrawal,
    CaseloadRead,
    CloseBody,
    DeclineBody,
    FirstContactBody,
    WithdrawalCreate,
    WorklistItem,
    WorklistRead,
)
from services.teams.directory import service as directory
from services.teams.directory.api import TeamCodePath
from services.teams.directory.models import Team
from services.teams.directory.problems import TeamNotFound, TeamNotPermitted
from services.teams.directory.schemas import TeamSummary
from services.teams.state import TeamsState

router = APIRouter(prefix="/v1", tags=["caseloads"])
ManagerDep = Annotated[Principal, requires("caseload:manage")]
CHANGE_PROBLEMS = problem_responses(
    AssignmentNotFound, TeamNotPermitted, AssignmentStateConflict, InvalidTime
)


@router.post(
    "/assignments",
    status_code=status.HTTP_201_CREATED,
    summary="Put a case on a team's caseload (idempotent per referral, team and kind)",
    responses={
        200: {"model": AssignmentRead, "description": "Already assigned"},
        **problem_responses(UnknownTeam),
    },
)
async def create_assignment(
    body: AssignmentCreate,
    response: Response,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("assignments:create")],
) -> AssignmentRead:
    assignment, created = await assignments.assign(session, body, principal.client_id, now)
    await session.flush()
    _audit(session, principal, "assignment.create", assignment.id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return AssignmentRead.model_validate(assignment)


@router.post(
    "/assignments/batch",
    summary="Put many cases on caseloads in one request",
    description=(
        "Each item is an assignment as `POST /v1/assignments` takes it, and is answered as that "
        "would answer it, in the order given: `status` 201 with the new assignment as `result`, "
        "200 with the one already made for the same referral, team and kind, or a problem "
        "status with its `problem`. One item's problem never fails the others; the assignments "
        "are made in one transaction."
    ),
)
async def create_assignments(
    body: BatchRequest,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("assignments:create")],
) -> BatchAnswer[AssignmentRead]:
    outcomes: list[tuple[Assignment, bool] | Problem] = []
    for item in checked(AssignmentCreate, body.items):
        if isinstance(item, Problem):
            outcomes.append(item)
            continue
        try:
            outcomes.append(await assignments.assign(session, item, principal.client_id, now))
        except Problem as problem:
            outcomes.append(problem)
    await session.flush()
    answers: list[ItemAnswer[AssignmentRead]] = []
    for outcome in outcomes:
        if isinstance(outcome, Problem):
            answers.append(refused(outcome))
            continue
        assignment, created = outcome
        _audit(session, principal, "assignment.create", assignment.id)
        answers.append(answered(AssignmentRead.model_validate(assignment), created))
    return BatchAnswer[AssignmentRead](items=answers)


@router.post(
    "/assignments/withdrawals",
    summary="Withdraw a referral from the caseloads holding it (the referrer cancelled it)",
)
async def create_withdrawal(
    body: WithdrawalCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("assignments:create")],
) -> list[AssignmentRead]:
    withdrawn = await assignments.withdraw(session, body, now)
    await session.flush()
    for assignment in withdrawn:
        _audit(session, principal, "assignment.withdraw", assignment.id)
    return [AssignmentRead.model_validate(assignment) for assignment in withdrawn]


@router.post(
    "/assignments/{assignment_id}/withdrawal",
    summary="Take back a case the team has not accepted (its acceptance window lapsed)",
    responses=problem_responses(AssignmentNotFound, AssignmentStateConflict),
)
async def withdraw_assignment(
    assignment_id: uuid.UUID,
    body: AssignmentWithdrawal,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("assignments:create")],
) -> AssignmentRead:
    assignment = await session.get(Assignment, assignment_id, with_for_update=True)
    if assignment is None:
        raise AssignmentNotFound(f"No assignment has the id {assignment_id}.")
    assignments.withdraw_one(session, assignment, body.reason, now)
    await session.flush()
    _audit(session, principal, "assignment.withdraw", assignment.id)
    return AssignmentRead.model_validate(assignment)


CASELOAD, WORKLIST = "caseload", "worklist"


@router.get(
    "/teams/{team_code}/caseload",
    responses=problem_responses(TeamNotFound, TeamNotPermitted, pagination.InvalidCursor),
)
async def get_caseload(
    team_code: TeamCodePath,
    session: SessionDep,
    principal: ManagerDep,
    status_filter: Annotated[
        str | None, Query(alias="status", max_length=16, pattern=r"^[a-z_]+$")
    ] = None,
    kind: AssignmentKind | None = None,
    cursor: CursorQuery = None,
    limit: LongLimit = 100,
) -> CaseloadRead:
    start = pagination.decode(cursor, CASELOAD, (datetime, uuid.UUID))
    team = await _team_for(session, principal, team_code, "caseload.read")
    items = await assignments.caseload(
        session, team, status=status_filter, kind=kind, after=start, limit=limit + 1
    )
    _audit(session, principal, "caseload.read", team.id, resource_type="caseload")
    found, next_cursor = pagination.page_of(items, limit, CASELOAD, _assignment_key)
    return CaseloadRead(
        team=TeamSummary.model_validate(team),
        items=[AssignmentRead.model_validate(i) for i in found],
        next_cursor=next_cursor,
    )


def _assignment_key(assignment: Assignment) -> tuple[datetime, uuid.UUID]:
    return (assignment.created_at, assignment.id)


@router.get(
    "/teams/{team_code}/worklist",
    summary="Open cases flagged high-risk, for the team's next MDT meeting",
    responses=problem_responses(TeamNotFound, TeamNotPermitted, pagination.InvalidCursor),
)
async def get_worklist(
    team_code: TeamCodePath,
    request: Request,
    session: SessionDep,
    principal: ManagerDep,
    cursor: CursorQuery = None,
    limit: LongLimit = 100,
) -> WorklistRead:
    settings = state_of(request.app, TeamsState).settings
    start = pagination.decode(cursor, WORKLIST, (datetime, uuid.UUID))
    team = await _team_for(session, principal, team_code, "worklist.read")
    _audit(session, principal, "worklist.read", team.id, resource_type="caseload")
    flagged: list[tuple[Assignment, list[str]]] = []
    for case in await assignments.open_cases(session, team, after=start):
        reasons = assignments.worklist_reasons(
            case.risk,
            frailty_threshold=settings.mdt_frailty_threshold,
            conditions_threshold=settings.mdt_long_term_conditions_threshold,
        )
        if reasons:
            flagged.append((case, reasons))
            if len(flagged) > limit:
                break
    found, next_cursor = pagination.page_of(
        flagged, limit, WORKLIST, lambda item: _assignment_key(item[0])
    )
    items = [
        WorklistItem.model_validate(
            {**AssignmentRead.model_validate(case).model_dump(), "reasons": reasons}
        )
        for case, reasons in found
    ]
    return WorklistRead(team=TeamSummary.model_validate(team), items=items, next_cursor=next_cursor)


Change = Callable[[AsyncSession, Assignment, Any, datetime], None]


@dataclass
class AssignmentChanger:
    """What every change a team makes to an assignment needs, gathered once per request."""

    request: Request
    background: BackgroundTasks
    session: SessionDep
    now: NowDep
    principal: ManagerDep

    async def apply(self, assignment_id: uuid.UUID, body: Any, change: Change) -> AssignmentRead:
        action = f"assignment.{change.__name__}"
        try:
            assignment, _ = await assignments.get_for(self.session, assignment_id, self.principal)
        except AssignmentNotFound:
            # Kept though the request fails: a refused access is audited too.
            _audit(self.session, self.principal, action, assignment_id, outcome="denied")
            raise
        change(self.session, assignment, body, self.now)
        await self.session.flush()
        _audit(self.session, self.principal, action, assignment.id)
        worker = state_of(self.request.app, TeamsState).worker
        # Runs after the response, so after the commit: the report to spa goes out at once.
        self.background.add_task(worker.notify)
        return AssignmentRead.model_validate(assignment)


ChangerDep = Annotated[AssignmentChanger, Depends()]


@router.post(
    "/assignments/{assignment_id}/accept",
    summary="Accept a case, with the planned first contact",
    responses=CHANGE_PROBLEMS,
)
async def accept(assignment_id: uuid.UUID, body: AcceptBody, changer: ChangerDep) -> AssignmentRead:
    return await changer.apply(assignment_id, body, assignments.accept)


@router.post(
    "/assignments/{assignment_id}/decline",
    summary="Decline a case with a reason code",
    responses=CHANGE_PROBLEMS,
)
async def decline(
    assignment_id: uuid.UUID, body: DeclineBody, changer: ChangerDep
) -> AssignmentRead:
    return await changer.apply(assignment_id, body, assignments.decline)


@router.post(
    "/assignments/{assignment_id}/first-contact",
    summary="Record the first contact with the person",
    responses=CHANGE_PROBLEMS,
)
async def first_contact(
    assignment_id: uuid.UUID, body: FirstContactBody, changer: ChangerDep
) -> AssignmentRead:
    return await changer.apply(assignment_id, body, assignments.record_first_contact)


@router.post(
    "/assignments/{assignment_id}/close",
    summary="Close a case the team has finished",
    responses=CHANGE_PROBLEMS,
)
async def close(assignment_id: uuid.UUID, body: CloseBody, changer: ChangerDep) -> AssignmentRead:
    return await changer.apply(assignment_id, body, assignments.close)


def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource_id: object,
    resource_type: str = "assignment",
    outcome: str = "allowed",
) -> None:
    audit.record(
        session,
        AuditEvent,
        client_id=principal.client_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
    )


async def _team_for(
    session: AsyncSession, principal: Principal, team_code: str, action: str
) -> Team:
    """The team whose caseload the client asks for; a refusal is audited."""
    team = await directory.get_team(session, team_code)
    if not directory.may_manage(principal, team):
        _audit(session, principal, action, team.id, "caseload", outcome="denied")
        directory.require_team(principal, team)
    return team
