"""HTTP API of the routing service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
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
    responses=problem_responses(DirectoryUnavailable, NoActiveRuleSet),
)
async def create_decision(
    body: DecisionCreate,
    session: SessionDep,
    principal: Annotated[Principal, requires("decisions:create")],
    book: Annotated[RuleBook, Depends(_rule_book)],
    teams: Annotated[TeamsClient, Depends(_teams)],
) -> DecisionRead:
    decision = await service.decide(session, book, teams, body, principal.client_id)
    _audit(session, principal, "decision.create", decision.id)
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
