"""HTTP API of webhook subscriptions (scope ``subscriptions:manage``); a client sees and
changes only its own."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Path, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import or_, select

from services.shared import pagination
from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.outbox import JobStatus
from services.shared.pagination import CursorQuery, Limit, LongLimit
from services.shared.problems import problem_responses
from services.shared.state import state_of
from services.spa.api import WakeupsDep
from services.spa.state import SpaState
from services.spa.webhooks import catalogue, service
from services.spa.webhooks.models import DELETED, WEBHOOK, WebhookEndpoint
from services.spa.webhooks.problems import (
    EndpointRefused,
    MessageNotFound,
    MessageQueued,
    SubscriptionNotFound,
)
from services.spa.webhooks.schemas import (
    AttemptRead,
    MessageLog,
    MessagePage,
    MessageRead,
    RecoveryCreate,
    RecoveryRead,
    RotationCreate,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionRead,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)

router = APIRouter(prefix="/v1/subscriptions", tags=["webhooks"])
ManagerDep = Annotated[Principal, requires("subscriptions:manage")]
NOT_FOUND = problem_responses(SubscriptionNotFound)
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _policy(request: Request) -> service.UrlPolicy:
    return state_of(request.app, SpaState).webhook_url_policy


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe an endpoint; the signing secret is shown only in this answer",
    responses=problem_responses(EndpointRefused),
)
async def create_subscription(
    body: SubscriptionCreate, request: Request, session: SessionDep, principal: ManagerDep
) -> SubscriptionWithSecret:
    endpoint = await service.create(session, principal, body, _policy(request))
    return _with_secret(endpoint, endpoint.secret)


SUBSCRIPTIONS, MESSAGES = "subscriptions", "messages"


@router.get(
    "",
    summary="This client's subscriptions",
    responses=problem_responses(pagination.InvalidCursor),
)
async def list_subscriptions(
    session: SessionDep, principal: ManagerDep, cursor: CursorQuery = None, limit: Limit = 50
) -> SubscriptionPage:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.client_id == principal.client_id,
        WebhookEndpoint.purpose == WEBHOOK,
        or_(WebhookEndpoint.disabled_reason.is_(None), WebhookEndpoint.disabled_reason != DELETED),
    )
    key = (WebhookEndpoint.created_at, WebhookEndpoint.id)
    start = pagination.after(key, pagination.decode(cursor, SUBSCRIPTIONS, (datetime, uuid.UUID)))
    if start is not None:
        query = query.where(start)
    rows = list(await session.scalars(query.order_by(*key).limit(limit + 1)))
    found, next_cursor = pagination.page_of(
        rows, limit, SUBSCRIPTIONS, lambda row: (row.created_at, row.id)
    )
    return SubscriptionPage(
        items=[SubscriptionRead.model_validate(row) for row in found], next_cursor=next_cursor
    )


@router.get("/{subscription_id}", responses=NOT_FOUND)
async def get_subscription(
    subscription_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> SubscriptionRead:
    return SubscriptionRead.model_validate(await service.owned(session, principal, subscription_id))


@router.patch(
    "/{subscription_id}",
    summary="Change the URL, filters, or enable and disable",
    responses=problem_responses(SubscriptionNotFound, EndpointRefused),
)
async def update_subscription(
    subscription_id: uuid.UUID,
    body: SubscriptionUpdate,
    request: Request,
    session: SessionDep,
    principal: ManagerDep,
) -> SubscriptionRead:
    endpoint = await service.owned(session, principal, subscription_id)
    await service.change(endpoint, body, _policy(request))
    await session.flush()
    return SubscriptionRead.model_validate(endpoint)


@router.delete("/{subscription_id}", status_code=204, responses=NOT_FOUND)
async def delete_subscription(
    subscription_id: uuid.UUID, session: SessionDep, principal: ManagerDep
) -> Response:
    endpoint = await service.owned(session, principal, subscription_id)
    # The delivery log stays; the endpoint stops receiving.
    endpoint.enabled, endpoint.disabled_reason = False, DELETED
    endpoint.url = "https://deleted.invalid/"
    return Response(status_code=204)


@router.post(
    "/{subscription_id}/secret-rotation",
    summary="A new secret; the old one signs beside it until the overlap ends",
    responses=NOT_FOUND,
)
async def rotate_secret(
    subscription_id: uuid.UUID,
    body: RotationCreate,
    session: SessionDep,
    now: NowDep,
    principal: ManagerDep,
) -> SubscriptionWithSecret:
    endpoint = await service.owned(session, principal, subscription_id)
    secret = service.rotate(endpoint, timedelta(seconds=body.overlap_seconds), now)
    await session.flush()
    return _with_secret(endpoint, secret)


@router.post(
    "/{subscription_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a signed endpoint.ping to test the endpoint",
    responses=NOT_FOUND,
)
async def ping(
    subscription_id: uuid.UUID,
    request: Request,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
    session: SessionDep,
    principal: ManagerDep,
) -> MessageRead:
    endpoint = await service.owned(session, principal, subscription_id)
    message = await service.ping(session, endpoint)
    background.add_task(wakeups.deliveries)
    return MessageRead.model_validate(message)


@router.get(
    "/{subscription_id}/messages",
    summary="The delivery log, newest first",
    responses=problem_responses(SubscriptionNotFound, pagination.InvalidCursor),
)
async def list_messages(
    subscription_id: uuid.UUID,
    session: SessionDep,
    principal: ManagerDep,
    status: JobStatus | None = None,
    cursor: CursorQuery = None,
    limit: LongLimit = 100,
) -> MessagePage:
    start = pagination.decode(cursor, MESSAGES, (int,))
    endpoint = await service.owned(session, principal, subscription_id)
    rows = await service.messages(
        session, endpoint, status, limit + 1, before_id=start[0] if start else None
    )
    found, next_cursor = pagination.page_of(rows, limit, MESSAGES, lambda row: (row.id,))
    return MessagePage(
        items=[MessageRead.model_validate(row) for row in found], next_cursor=next_cursor
    )


@router.get(
    "/{subscription_id}/messages/{message_id}",
    summary="One message with every attempt at it",
    responses=problem_responses(SubscriptionNotFound, MessageNotFound),
)
async def get_message(
    subscription_id: uuid.UUID, message_id: MessageId, session: SessionDep, principal: ManagerDep
) -> MessageLog:
    endpoint = await service.owned(session, principal, subscription_id)
    message, attempts = await service.message_of(session, endpoint, message_id)
    return MessageLog(
        **MessageRead.model_validate(message).model_dump(),
        attempts_log=[AttemptRead.model_validate(attempt) for attempt in attempts],
    )


@router.post(
    "/{subscription_id}/messages/{message_id}/replay",
    summary="Send one delivered or failed message again",
    responses=problem_responses(SubscriptionNotFound, MessageNotFound, MessageQueued),
)
async def replay_message(
    subscription_id: uuid.UUID,
    message_id: MessageId,
    request: Request,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
    session: SessionDep,
    now: NowDep,
    principal: ManagerDep,
) -> MessageRead:
    endpoint = await service.owned(session, principal, subscription_id)
    message, _ = await service.message_of(session, endpoint, message_id)
    service.replay(message, now)
    background.add_task(wakeups.deliveries)
    return MessageRead.model_validate(message)


@router.post(
    "/{subscription_id}/recovery",
    summary="Send again every message that failed since a time",
    responses=NOT_FOUND,
)
async def recover(
    subscription_id: uuid.UUID,
    body: RecoveryCreate,
    request: Request,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
    session: SessionDep,
    now: NowDep,
    principal: ManagerDep,
) -> RecoveryRead:
    endpoint = await service.owned(session, principal, subscription_id)
    requeued = await service.recover(session, endpoint, body.since, now)
    background.add_task(wakeups.deliveries)
    return RecoveryRead(requeued=requeued)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> SubscriptionWithSecret:
    read = SubscriptionRead.model_validate(endpoint)
    return SubscriptionWithSecret(**read.model_dump(), secret=secret)


def publish_catalogue(app: FastAPI) -> None:
    """Add every event type, with the schema of its body, to the app's OpenAPI ``webhooks``."""
    for event_type in catalogue.PUBLISHED:
        _publish_event(app, event_type, catalogue.body_model(event_type))


def _publish_event(app: FastAPI, event_type: str, model: type[BaseModel]) -> None:
    async def receive(body: Any) -> None:
        """Never called: it only documents what subscribers receive."""

    receive.__annotations__["body"] = model

    app.webhooks.post(
        event_type,
        summary=catalogue.DESCRIPTIONS[event_type],
        description=catalogue.HEADERS,
        operation_id=f"webhook_{event_type.replace('.', '_')}",
        status_code=204,
    )(receive)
