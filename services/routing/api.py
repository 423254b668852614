"""HTTP API of the routing service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import service
from services.routing.clients import TeamsClient
from services.routing.models import AuditEvent
from services.routing.problems import DecisionNotFound, DirectoryUnavailable, NoActiveRuleSet
from services.routing.rule_sets import RuleBook
from services.routing.schemas import DecisionCreate, DecisionRead
from services.shared import audit
from services.shared.auth import Principal, requires
from services.shared.db import SessionDep
from services.shared.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["decisions"])


async def _rule_book(request: Request) -> RuleBook:
    book: RuleBook = request.app.state.rule_book
    return book


async def _teams(request: Request) -> TeamsClient:
    teams: TeamsClient = request.app.state.teams
    return teams


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
    decision, created = await service.decide(session, book, teams, body, principal.client_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    _audit(session, principal, "decision.create" if created else "decision.read", decision.id)
    return DecisionRead.from_row(decision)


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


def _audit(session: AsyncSession, principal: Principal, action: str, decision_id: object) -> None:
    audit.record(
        session,
        AuditEvent,
        client_id=principal.client_id,
        action=action,
        resource_type="decision",
        resource_id=decision_id,
    )
