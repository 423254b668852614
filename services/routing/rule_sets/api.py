"""HTTP API of rule sets: upload, read, dry-run, activate, shadow, roll back; disagreements."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from sqlalchemy import select

from services.routing.rule_sets import service
from services.routing.rule_sets.models import RuleSetEvent, RuleSetVersion, ShadowDisagreement
from services.routing.rule_sets.problems import (
    NothingToRollBack,
    RuleSetExists,
    RuleSetNotFound,
    RuleSetRejected,
    RuleSetStateConflict,
)
from services.routing.rule_sets.schemas import (
    DisagreementPage,
    DisagreementRead,
    DryRunResult,
    RuleSetDetail,
    RuleSetEventPage,
    RuleSetEventRead,
    RuleSetPage,
    RuleSetRead,
    RuleSetUpload,
    SampleReferral,
    TraceEntry,
)
from services.routing.rules.evaluation import evaluate
from services.routing.state import RoutingState
from services.shared import pagination
from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.pagination import CursorQuery, Limit, LongLimit
from services.shared.problems import problem_responses
from services.shared.state import state_of

router = APIRouter(prefix="/v1", tags=["rule sets"])
Admin = Annotated[Principal, requires("rules:admin")]


def _changed(request: Request) -> None:
    """This replica follows its own change at once; others within the rule book's TTL."""
    book = state_of(request.app, RoutingState).rule_book
    book.invalidate()


@router.post(
    "/rule-sets",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a rule set (YAML) as a draft; it is checked and refused whole if invalid",
    responses=problem_responses(RuleSetRejected, RuleSetExists),
)
async def upload_rule_set(
    body: RuleSetUpload, session: SessionDep, principal: Admin
) -> RuleSetRead:
    row = await service.upload(session, body.scope, body.document, principal.client_id)
    return RuleSetRead.model_validate(row)


RULE_SETS, DISAGREEMENTS, EVENTS = "rule-sets", "shadow-disagreements", "rule-set-events"
BAD_CURSOR = problem_responses(pagination.InvalidCursor)


@router.get("/rule-sets", summary="Rule sets, newest first", responses=BAD_CURSOR)
async def list_rule_sets(
    session: SessionDep,
    _: Admin,
    scope: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")] = None,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> RuleSetPage:
    key = (RuleSetVersion.created_at, RuleSetVersion.id)
    query = select(RuleSetVersion).order_by(*(column.desc() for column in key))
    start = pagination.before(key, pagination.decode(cursor, RULE_SETS, (datetime, uuid.UUID)))
    if start is not None:
        query = query.where(start)
    if scope is not None:
        query = query.where(RuleSetVersion.scope == scope)
    rows = list(await session.scalars(query.limit(limit + 1)))
    found, next_cursor = pagination.page_of(
        rows, limit, RULE_SETS, lambda row: (row.created_at, row.id)
    )
    return RuleSetPage(
        items=[RuleSetRead.model_validate(row) for row in found], next_cursor=next_cursor
    )


@router.get("/rule-sets/{rule_set_id}", responses=problem_responses(RuleSetNotFound))
async def get_rule_set(rule_set_id: uuid.UUID, session: SessionDep, _: Admin) -> RuleSetDetail:
    return RuleSetDetail.model_validate(await service.get(session, rule_set_id))


@router.post(
    "/rule-sets/{rule_set_id}/dry-run",
    summary="Evaluate a sample referral against any version, without recording a decision",
    responses=problem_responses(RuleSetNotFound),
)
async def dry_run(
    rule_set_id: uuid.UUID, body: SampleReferral, session: SessionDep, _: Admin
) -> DryRunResult:
    row = await service.get(session, rule_set_id)
    rule_set = service.parse(row.document, f"{row.scope}/{row.version}")
    evaluation = evaluate(rule_set, service.facts_of(body))
    target = evaluation.response_target
    return DryRunResult(
        rule_set_id=row.id,
        rule_set_version=row.version,
        pathway=evaluation.pathway,
        priority=evaluation.policy.priority,
        response_target=timedelta(seconds=target.total_seconds()) if target is not None else None,
        rule_id=evaluation.rule.id,
        reason=evaluation.rule.reason,
        hold=evaluation.rule.hold,
        refuse=evaluation.rule.refuse,
        escalations=evaluation.escalations,
        trace=[TraceEntry.model_validate(entry) for entry in evaluation.trace],
    )


@router.post(
    "/rule-sets/{rule_set_id}/activate",
    summary="Make this version the active one of its scope",
    responses=problem_responses(RuleSetNotFound, RuleSetStateConflict, RuleSetRejected),
)
async def activate(
    rule_set_id: uuid.UUID, request: Request, session: SessionDep, now: NowDep, principal: Admin
) -> RuleSetRead:
    row = await service.get(session, rule_set_id)
    await service.activate(session, row, principal.client_id, now)
    _changed(request)
    return RuleSetRead.model_validate(row)


@router.post(
    "/rule-sets/{rule_set_id}/shadow",
    summary="Evaluate this version beside the active one on live traffic, recording disagreements",
    responses=problem_responses(RuleSetNotFound, RuleSetStateConflict),
)
async def shadow(
    rule_set_id: uuid.UUID, request: Request, session: SessionDep, principal: Admin
) -> RuleSetRead:
    row = await service.get(session, rule_set_id)
    await service.shadow(session, row, principal.client_id)
    _changed(request)
    return RuleSetRead.model_validate(row)


@router.post(
    "/rule-set-scopes/{scope}/rollback",
    summary="Make the previously active version of a scope active again",
    responses=problem_responses(NothingToRollBack),
)
async def rollback(
    scope: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    request: Request,
    session: SessionDep,
    now: NowDep,
    principal: Admin,
) -> RuleSetRead:
    row = await service.rollback(session, scope, principal.client_id, now)
    _changed(request)
    return RuleSetRead.model_validate(row)


@router.get(
    "/shadow-disagreements",
    summary="Live decisions on which a shadow version would have differed, newest first",
    responses=BAD_CURSOR,
)
async def disagreements(
    session: SessionDep,
    _: Admin,
    candidate_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: LongLimit = 100,
) -> DisagreementPage:
    query = select(ShadowDisagreement).order_by(ShadowDisagreement.id.desc())
    start = pagination.before(
        [ShadowDisagreement.id], pagination.decode(cursor, DISAGREEMENTS, (int,))
    )
    if start is not None:
        query = query.where(start)
    if candidate_id is not None:
        query = query.where(ShadowDisagreement.candidate_id == candidate_id)
    rows = list(await session.scalars(query.limit(limit + 1)))
    found, next_cursor = pagination.page_of(rows, limit, DISAGREEMENTS, lambda row: (row.id,))
    return DisagreementPage(
        items=[DisagreementRead.model_validate(row) for row in found], next_cursor=next_cursor
    )


@router.get(
    "/rule-sets/{rule_set_id}/events",
    summary="The audit trail of a rule set: who uploaded, activated, shadowed or rolled it back",
    responses=problem_responses(RuleSetNotFound, pagination.InvalidCursor),
)
async def rule_set_events(
    rule_set_id: uuid.UUID,
    session: SessionDep,
    _: Admin,
    cursor: CursorQuery = None,
    limit: LongLimit = 100,
) -> RuleSetEventPage:
    start = pagination.after([RuleSetEvent.id], pagination.decode(cursor, EVENTS, (int,)))
    await service.get(session, rule_set_id)
    query = (
        select(RuleSetEvent)
        .where(RuleSetEvent.rule_set_id == rule_set_id)
        .order_by(RuleSetEvent.id)
    )
    if start is not None:
        query = query.where(start)
    rows = list(await session.scalars(query.limit(limit + 1)))
    found, next_cursor = pagination.page_of(rows, limit, EVENTS, lambda row: (row.id,))
    return RuleSetEventPage(
        items=[RuleSetEventRead.model_validate(row) for row in found], next_cursor=next_cursor
    )
