"""``GET /v1/audit``: the audit trail, for those holding ``audit:read``; reading it is audited
too."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from services.shared import audit, pagination
from services.shared.auth import Principal, requires
from services.shared.clock import Moment
from services.shared.db import SessionDep
from services.shared.pagination import CursorQuery, LongLimit, Page
from services.shared.problems import problem_responses

Code = Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@*-]+$")]


class AuditRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    client_id: str
    purpose: str
    action: str
    resource_type: str
    resource_id: str
    request_id: str | None
    outcome: str
    seq: int | None
    prev_hash: str | None
    hash: str | None


class AuditPage(Page[AuditRecord]):
    """Audit records, oldest first."""


LIST = "audit"


def audit_router(model: type[Any]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get(
        "/audit",
        summary="The audit trail of access to patient data, oldest first",
        responses=problem_responses(pagination.InvalidCursor),
    )
    async def list_audit(
        session: SessionDep,
        principal: Annotated[Principal, requires("audit:read")],
        client_id: Code | None = None,
        resource_id: Code | None = None,
        action: Code | None = None,
        since: Annotated[Moment | None, Query(alias="from")] = None,
        until: Annotated[Moment | None, Query(alias="to")] = None,
        cursor: CursorQuery = None,
        limit: LongLimit = 100,
    ) -> AuditPage:
        query = select(model)
        start = pagination.after([model.id], pagination.decode(cursor, LIST, (int,)))
        if start is not None:
            query = query.where(start)
        if client_id is not None:
            query = query.where(model.client_id == client_id)
        if resource_id is not None:
            query = query.where(model.resource_id == resource_id)
        if action is not None:
            query = query.where(model.action == action)
        if since is not None:
            query = query.where(model.at >= since)
        if until is not None:
            query = query.where(model.at < until)
        rows = list(await session.scalars(query.order_by(model.id).limit(limit + 1)))
        session.add(
            audit.entry(
                model,
                client_id=principal.client_id,
                action="audit.read",
                resource_type="audit",
                resource_id=_searched(resource_id, client_id),
                purpose=audit.AUDIT,
            )
        )
        found, next_cursor = pagination.page_of(rows, limit, LIST, lambda row: (row.id,))
        items = [AuditRecord.model_validate(row) for row in found]
        return AuditPage(items=items, next_cursor=next_cursor)

    return router


def _searched(resource_id: str | None, client_id: str | None) -> str:
    """What the auditor looked at, as recorded: an id we minted or a client id, never a value
    that could identify a person (a search by anything else is recorded as such)."""
    if resource_id is not None:
        try:
            return str(uuid.UUID(resource_id))
        except ValueError:
            return "search"
    return f"client:{client_id}" if client_id else "*"
