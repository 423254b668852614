"""HTTP API of decisions: triage a referral, many at once, and read a decision back."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.audit import AuditEvent
from services.routing.decisions import service
from services.routing.decisions.clients import TeamsClient
from services.routing.decisions.problems import (
    DecisionNotFound,
    DirectoryUnavailable,
    NoActiveRuleSet,
)
from services.routing.decisions.schemas import DecisionCreate, DecisionRead
from services.routing.rule_sets.service import RuleBook
from services.routing.state import RoutingState
from services.shared import audit
from services.shared.auth import Principal, requires
from services.shared.batches import (
    BatchAnswer,
    BatchRequest,
    ItemAnswer,
    answered,
    checked,
    refused,
)
from services.shared.db import SessionDep
from services.shared.problems import Problem, problem_responses
from services.shared.state import state_of

router = APIRouter(prefix="/v1", tags=["decisions"])


async def _rule_book(request: Request) -> RuleBook:
    return state_of(request.app, RoutingState).rule_book


async def _teams(request: Request) -> TeamsClient:
    return state_of(request.app, RoutingState).teams


@router.post(
    "/decisions",
    status_code=status.HTTP_201_CREATED,
    summary="Triage a referral and choose the team for it",
    description=(
        "Triages the referral on the facts given and records the decision: `201`. A request "
        "repeating one already answered (the same `referral_id`, `assessed_at` and facts, as "
        "when a caller retries after a timeout) records nothing new and is answered `200` with "
        "the decision recorded the first time, though rules or the directory have changed since. "
        "Requests made at the same time for the same triage end with one decision."
    ),
    responses={
        status.HTTP_200_OK: {
            "model": DecisionRead,
            "description": "The decision already recorded for this same request",
        },
        **problem_responses(DirectoryUnavailable, NoActiveRuleSet),
    },
)
async def create_decision(
    body: DecisionCreate,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, requires("decisions:create")],
    book: Annotated[RuleBook, Depends(_rule_book)],
    teams: Annotated[TeamsClient, Depends(_teams)],
) -> DecisionRead:
    decided = await service.decide(session, book, teams, body, principal.client_id)
    if not decided.created:
        response.status_code = status.HTTP_200_OK
    _audit_decided(session, principal, decided)
    return DecisionRead.from_row(decided.decision)


@router.post(
    "/decisions/batch",
    summary="Triage many referrals in one request",
    description=(
        "Each item is a decision request as `POST /v1/decisions` takes it, and is answered as "
        "that would answer it, in the order given: `status` 201 with the new `decision`, 200 "
        "with the one already recorded for the same request, or a problem status with its "
        "`problem` (an item that fails validation, or whose directory lookup failed). One "
        "item's problem never fails the others; the decisions are recorded in one transaction."
    ),
)
async def create_decisions(
    body: BatchRequest,
    session: SessionDep,
    principal: Annotated[Principal, requires("decisions:create")],
    book: Annotated[RuleBook, Depends(_rule_book)],
    teams: Annotated[TeamsClient, Depends(_teams)],
) -> BatchAnswer[DecisionRead]:
    items = checked(DecisionCreate, body.items)
    valid = [item for item in items if not isinstance(item, Problem)]
    outcomes = iter(await service.decide_many(session, book, teams, valid, principal.client_id))
    answers: list[ItemAnswer[DecisionRead]] = []
    for item in items:
        outcome = item if isinstance(item, Problem) else next(outcomes)
        if isinstance(outcome, Problem):
            answers.append(refused(outcome))
            continue
        _audit_decided(session, principal, outcome)
        answers.append(answered(DecisionRead.from_row(outcome.decision), outcome.created))
    return BatchAnswer[DecisionRead](items=answers)


@router.get(
    "/decisions/{decision_id}",
    summary="A recorded decision with its trace",
    responses=problem_responses(DecisionNotFound),
)
async def get_decision(
    decision_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, requires("decisions:read")],
) -> DecisionRead:
    decision = await service.get_decision(session, decision_id)
    _audit(session, principal, "decision.read", decision.id)
    return DecisionRead.from_row(decision)


def _audit_decided(session: AsyncSession, principal: Principal, decided: service.Decided) -> None:
    action = "decision.create" if decided.created else "decision.read"
    _audit(session, principal, action, decided.decision.id)


def _audit(session: AsyncSession, principal: Principal, action: str, decision_id: object) -> None:
    audit.record(
        session,
        AuditEvent,
        client_id=principal.client_id,
        action=action,
        resource_type="decision",
        resource_id=decision_id,
    )
