"""The administrator's pages of spa's own records: the registered API clients and every
client's webhook subscriptions, and a new secret for either.

A secret is never shown on a list: only a rotation shows one, once, in the answer to its form
(not after a redirect, and never stored by the browser). Every view and every rotation is
audited under the person's name.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select

from services.shared.problems import TYPE_PREFIX, ResourceNotFound, ValidationFailed
from services.spa.audit import record_access
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, CheckedForm, Visit, render, requires_role
from services.spa.identity import service as identity
from services.spa.identity.models import Client
from services.spa.webhooks import service as webhooks
from services.spa.webhooks.models import (
    DELETED,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from services.spa.webhooks.schemas import RotationCreate

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
Admin = Annotated[Visit, Depends(requires_role(Role.ADMIN))]
ClientIdPath = Annotated[str, Path(min_length=1, max_length=128)]

# Why an endpoint stopped, in words (services/spa/webhooks: the API, the deliverer).
DISABLED_BECAUSE = {
    "by_client": "Turned off by its client",
    "failing": "Turned off after failing for too long",
    "gone": "Turned off: the receiver said it is gone (410)",
}
# How long the old signing secret goes on signing beside the new one, as the API offers.
OVERLAPS = {
    0: "No overlap: the old secret stops now",
    3600: "1 hour",
    86400: "1 day",
    604800: "7 days",
}
DEFAULT_OVERLAP = 86400


class ClientNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "client-not-found"
    title = "There is no such active client"


class SubscriptionMissing(ResourceNotFound):
    type = TYPE_PREFIX + "subscription-not-found"
    title = "There is no such subscription"


def _audit(visit: Visit, action: str, resource_type: str, resource_id: object) -> None:
    record_access(
        visit.db,
        client_id=visit.signed_in().principal_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
    )


def _shown_once(visit: Visit, template: str, **context: Any) -> Response:
    """A page with a new secret on it: not kept by the browser or any cache on the way. The
    session's CSRF token is renewed first, so the form that asked cannot be sent again (a
    reload resending the POST) to rotate the secret a second time."""
    if visit.session is not None:
        visit.session.csrf_token = secrets.token_urlsafe(32)
    page = render(visit, template, **context)
    page.headers["Cache-Control"] = "no-store"
    page.headers["Pragma"] = "no-cache"
    return page


@router.get("", response_class=HTMLResponse)
async def admin_index(visit: Admin) -> Response:
    _audit(visit, "console.admin.index", "console", "admin")
    return render(visit, "admin/index.html")


# --- Clients -----------------------------------------------------------------------------------


@router.get("/clients", response_class=HTMLResponse)
async def clients_page(visit: Admin) -> Response:
    clients = list(await visit.db.scalars(select(Client).order_by(Client.client_id)))
    _audit(visit, "console.admin.clients", "clients", "*")
    return render(visit, "admin/clients.html", clients=clients)


@router.post("/clients/{client_id}/secret-rotation", response_class=HTMLResponse)
async def rotate_client_secret(
    client_id: ClientIdPath, visit: Admin, form: CheckedForm
) -> Response:
    secret = identity.generate_secret()
    if not await identity.rotate_secret(visit.db, client_id, secret):
        raise ClientNotFound(f"No active client has the id {client_id}.")
    _audit(visit, "console.admin.client_secret_rotated", "client", client_id)
    client = await visit.db.scalar(select(Client).where(Client.client_id == client_id))
    return _shown_once(visit, "admin/client_secret.html", client=client, secret=secret)


# --- Webhook subscriptions ---------------------------------------------------------------------


def _not_deleted() -> Any:
    return or_(
        WebhookEndpoint.disabled_reason.is_(None), WebhookEndpoint.disabled_reason != DELETED
    )


async def _last_attempts(visit: Visit) -> dict[uuid.UUID, WebhookAttempt]:
    """Each endpoint's latest delivery attempt."""
    latest = (
        select(func.max(WebhookAttempt.id))
        .join(WebhookMessage, WebhookMessage.id == WebhookAttempt.message_id)
        .group_by(WebhookMessage.endpoint_id)
    )
    rows = await visit.db.execute(
        select(WebhookMessage.endpoint_id, WebhookAttempt)
        .join(WebhookMessage, WebhookMessage.id == WebhookAttempt.message_id)
        .where(WebhookAttempt.id.in_(latest))
    )
    return {row[0]: row[1] for row in rows}


@router.get("/subscriptions", response_class=HTMLResponse)
async def subscriptions_page(visit: Admin) -> Response:
    endpoints = list(
        await visit.db.scalars(
            select(WebhookEndpoint)
            .where(_not_deleted())
            .order_by(WebhookEndpoint.client_id, WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )
    last = await _last_attempts(visit)
    _audit(visit, "console.admin.subscriptions", "subscriptions", "*")
    return render(
        visit,
        "admin/subscriptions.html",
        endpoints=endpoints,
        last=last,
        disabled_because=DISABLED_BECAUSE,
        overlaps=OVERLAPS,
        default_overlap=DEFAULT_OVERLAP,
    )


def _overlap(value: object) -> timedelta:
    try:
        rotation = RotationCreate.model_validate({"overlap_seconds": value or DEFAULT_OVERLAP})
    except ValidationError as error:
        field = {"in": "body", "field": "overlap_seconds", "reason": "from 0 to 7 days"}
        raise ValidationFailed(
            "Choose how long the old secret goes on signing.", errors=[field]
        ) from error
    return timedelta(seconds=rotation.overlap_seconds)


@router.post("/subscriptions/{subscription_id}/secret-rotation", response_class=HTMLResponse)
async def rotate_subscription_secret(
    subscription_id: uuid.UUID, visit: Admin, form: CheckedForm
) -> Response:
    overlap = _overlap(form.get("overlap_seconds"))
    endpoint = await visit.db.get(WebhookEndpoint, subscription_id, with_for_update=True)
    if endpoint is None or endpoint.disabled_reason == DELETED:
        raise SubscriptionMissing(f"No subscription has the id {subscription_id}.")
    secret = webhooks.rotate(endpoint, overlap, visit.now)
    await visit.db.flush()
    _audit(visit, "console.admin.subscription_secret_rotated", "subscription", endpoint.id)
    return _shown_once(visit, "admin/subscription_secret.html", endpoint=endpoint, secret=secret)
