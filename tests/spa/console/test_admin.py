"""The administrator's console: the API clients and a new secret for one, every client's
webhook subscriptions, the routing rule sets with their checks, and the directory with its
history; none of it for anyone else, and no rotation without the form's token."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from importlib import resources

import httpx
import pytest
import yaml
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.outbox import JobStatus
from services.spa.audit import AuditEvent
from services.spa.identity import service as identity
from services.spa.identity.models import Client
from services.spa.webhooks.models import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from tests.spa.console.helpers import signed_in
from tests.stack import CHEAP_HASHER, Stack

SHOWN_SECRET = re.compile(r'id="new-secret"[^>]*value="([^"]+)"')
ROTATED = "console-rotation-check"
OLD_SECRET = "console-rotation-old-secret-0123"
DEFAULT_RULES = resources.files("services.routing.rules").joinpath("default_rules.yaml")


def _shown_secret(page: httpx.Response) -> str:
    found = SHOWN_SECRET.search(page.text)
    assert found, page.text[:1000]
    return html.unescape(found.group(1))


async def _token_status(stack: Stack, client_id: str, secret: str) -> int:
    async with stack.raw("spa") as spa:
        answer = await spa.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    return answer.status_code


async def _actions(stack: Stack, person: str) -> list[str]:
    async with stack.apps["spa"].state.sessionmaker() as session:
        found = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.client_id == person)
        )
        return list(found)


@pytest.fixture
async def rotated_client(stack: Stack) -> AsyncIterator[str]:
    """A client of this test's own (the registered clients outlive each test's stack)."""
    sessionmaker = stack.apps["spa"].state.sessionmaker
    async with sessionmaker() as session, session.begin():
        await identity.register_client(
            session,
            client_id=ROTATED,
            name="Rotation check",
            secret=OLD_SECRET,
            scopes=["reports:read"],
            audiences=["spa"],
            replace=True,
            hasher=CHEAP_HASHER,
        )
    try:
        yield ROTATED
    finally:
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(Client).where(Client.client_id == ROTATED))


async def test_the_admin_sees_the_clients_and_never_a_secret(stack: Stack) -> None:
    browser = await signed_in(stack, "admin")

    index = await browser.get("/console/admin")
    page = await browser.get("/console/admin/clients")

    for href in ("clients", "subscriptions", "rule-sets", "directory"):
        assert f'href="/console/admin/{href}"' in index.text
    assert page.status_code == 200
    for client_id in ("gp-system", "north-call-handlers", "clinical-lead", "spa-service"):
        assert f"<code>{client_id}</code>" in page.text
    assert "referrals:create" in page.text
    assert "test-secret-0123456789" not in page.text
    assert "spa-service-secret-0123" not in page.text
    assert "$argon2" not in page.text
    assert "console.admin.clients" in await _actions(stack, "person:admin")


async def test_a_rotated_client_secret_is_shown_once_and_the_old_one_stops(
    stack: Stack, rotated_client: str
) -> None:
    browser = await signed_in(stack, "admin")
    await browser.get("/console/admin/clients")
    assert await _token_status(stack, rotated_client, OLD_SECRET) == 200

    answer = await browser.post(f"/console/admin/clients/{rotated_client}/secret-rotation")

    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "will not be shown again" in answer.text
    secret = _shown_secret(answer)
    assert await _token_status(stack, rotated_client, OLD_SECRET) == 401
    assert await _token_status(stack, rotated_client, secret) == 200
    resent = await browser.post(f"/console/admin/clients/{rotated_client}/secret-rotation")
    assert resent.status_code == 403  # a reload resending the form rotates nothing
    assert await _token_status(stack, rotated_client, secret) == 200
    listed = await browser.get("/console/admin/clients")
    assert secret not in listed.text
    async with stack.apps["spa"].state.sessionmaker() as session:
        rotation = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "console.admin.client_secret_rotated")
        )
    assert rotation is not None
    assert (rotation.client_id, rotation.resource_id) == ("person:admin", rotated_client)


async def test_a_rotation_without_the_forms_token_is_refused_and_changes_nothing(
    stack: Stack, rotated_client: str
) -> None:
    browser = await signed_in(stack, "admin")
    await browser.get("/console/admin/clients")

    refused = await browser.client.post(f"/console/admin/clients/{rotated_client}/secret-rotation")
    forged = await browser.client.post(
        f"/console/admin/clients/{rotated_client}/secret-rotation", data={"csrf_token": "forged"}
    )

    assert refused.status_code == 403
    assert forged.status_code == 403
    assert 'id="new-secret"' not in refused.text + forged.text
    assert await _token_status(stack, rotated_client, OLD_SECRET) == 200


async def test_an_unknown_client_is_a_page_not_a_failure(stack: Stack) -> None:
    browser = await signed_in(stack, "admin")
    await browser.get("/console/admin/clients")

    answer = await browser.post("/console/admin/clients/no-such-client/secret-rotation")

    assert answer.status_code == 404
    assert "There is no such active client" in answer.text


async def _endpoints(stack: Stack) -> tuple[WebhookEndpoint, WebhookEndpoint]:
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        live = WebhookEndpoint(
            client_id="gp-engine",
            url="https://engine.example/hooks/spa",
            event_types=["referral.routed"],
            secret="whsec_" + "a" * 32,
        )
        failing = WebhookEndpoint(
            client_id="county-engine",
            url="https://county.example/hooks",
            secret="whsec_" + "b" * 32,
            enabled=False,
            disabled_reason="failing",
        )
        session.add_all([live, failing])
        await session.flush()
        for endpoint, answers in ((live, [500, 204]), (failing, [204, 503])):
            await _delivered(session, endpoint, answers)
    return live, failing


async def _delivered(session: AsyncSession, endpoint: WebhookEndpoint, answers: list[int]) -> None:
    """A ping to ``endpoint`` and the receiver's answers to it, in order."""
    event = WebhookEvent(
        kind="dispatch",
        status=JobStatus.DONE,
        event_type="endpoint.ping",
        client_id=endpoint.client_id,
    )
    session.add(event)
    await session.flush()
    # Done, so that the stack's own deliverer leaves it alone.
    message = WebhookMessage(
        kind="deliver", endpoint_id=endpoint.id, event_id=event.event_id,
        event_type=event.event_type, payload="{}", status=JobStatus.DONE,
    )  # fmt: skip
    session.add(message)
    await session.flush()
    for status in answers:
        session.add(WebhookAttempt(message_id=message.id, response_status=status, latency_ms=5.0))
        await session.flush()


async def test_the_admin_sees_every_clients_subscriptions_and_rotates_a_signing_secret(
    stack: Stack,
) -> None:
    live, _failing = await _endpoints(stack)
    browser = await signed_in(stack, "admin")

    page = await browser.get("/console/admin/subscriptions")
    rotated = await browser.post(
        f"/console/admin/subscriptions/{live.id}/secret-rotation", {"overlap_seconds": "3600"}
    )

    assert page.status_code == 200
    assert "https://engine.example/hooks/spa" in page.text
    assert "https://county.example/hooks" in page.text
    assert "referral.routed" in page.text
    assert "Turned off after failing for too long" in page.text
    assert "Delivered (204)" in page.text
    assert "Failed (503)" in page.text
    assert "Failed (500)" not in page.text
    assert "whsec_" not in page.text
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    assert "will not be shown again" in rotated.text
    secret = _shown_secret(rotated)
    async with stack.apps["spa"].state.sessionmaker() as session:
        endpoint = await session.get(WebhookEndpoint, live.id)
    assert endpoint is not None
    assert (endpoint.secret, endpoint.previous_secret) == (secret, "whsec_" + "a" * 32)
    assert endpoint.previous_secret_until is not None
    assert "console.admin.subscription_secret_rotated" in await _actions(stack, "person:admin")


async def test_a_signing_secret_rotation_without_the_forms_token_changes_nothing(
    stack: Stack,
) -> None:
    live, _ = await _endpoints(stack)
    browser = await signed_in(stack, "admin")
    await browser.get("/console/admin/subscriptions")

    refused = await browser.client.post(f"/console/admin/subscriptions/{live.id}/secret-rotation")

    assert refused.status_code == 403
    async with stack.apps["spa"].state.sessionmaker() as session:
        endpoint = await session.get(WebhookEndpoint, live.id)
    assert endpoint is not None
    assert (endpoint.secret, endpoint.previous_secret) == ("whsec_" + "a" * 32, None)


def _without_advice() -> str:
    document = yaml.safe_load(DEFAULT_RULES.read_text("utf-8"))
    document["version"] = "county-no-advice-1"
    document["rules"] = [rule for rule in document["rules"] if rule["id"] != "advice-only"]
    return yaml.safe_dump(document, sort_keys=False)


async def test_the_rule_sets_page_lists_routings_versions_with_their_checks(
    stack: Stack,
) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        uploaded = await lead.post(
            "/v1/rule-sets", json={"scope": "county", "document": _without_advice()}
        )
    assert uploaded.status_code == 201, uploaded.text
    browser = await signed_in(stack, "admin")

    page = await browser.get("/console/admin/rule-sets")

    assert page.status_code == 200, page.text
    assert "county-default-1" in page.text
    assert "county-no-advice-1" in page.text
    assert "Active" in page.text
    assert "Draft" in page.text
    assert "no rule that can match chooses the pathway advice" in page.text
    assert "Passed: no findings" in page.text
    assert "<code>clinical-lead</code>" in page.text
    assert "console.admin.rule_sets" in await _actions(stack, "person:admin")


async def test_the_directory_page_lists_teams_with_capacity_and_pages_the_history(
    stack: Stack,
) -> None:
    browser = await signed_in(stack, "admin")

    page = await browser.get("/console/admin/directory")

    assert page.status_code == 200, page.text
    assert "Locality Integrated Team North" in page.text
    assert "<code>lit-north</code>" in page.text
    assert "<code>M91001</code>" in page.text
    assert 'id="changes"' in page.text
    assert "<code>tests</code>" in page.text
    found = re.search(r'href="(/console/admin/directory\?cursor=[^"#]+)#changes"', page.text)
    assert found, "the first page of changes has a Next link"
    older = await browser.get(html.unescape(found.group(1)))
    assert older.status_code == 200, older.text
    assert "(older)" in older.text
    bad = await browser.get("/console/admin/directory?cursor=not-a-cursor")
    assert bad.status_code == 400
    assert "console.admin.directory" in await _actions(stack, "person:admin")


@pytest.mark.parametrize(
    "path",
    [
        "/console/admin",
        "/console/admin/clients",
        "/console/admin/subscriptions",
        "/console/admin/rule-sets",
        "/console/admin/directory",
    ],
)
async def test_a_call_handler_is_refused_every_administration_page(stack: Stack, path: str) -> None:
    browser = await signed_in(stack, "north.handler")

    page = await browser.get(path)

    assert page.status_code == 403
    assert "This page is for administrator" in page.text


async def test_a_call_handler_cannot_rotate_a_secret(stack: Stack, rotated_client: str) -> None:
    browser = await signed_in(stack, "north.handler")

    refused = await browser.post(f"/console/admin/clients/{rotated_client}/secret-rotation")

    assert refused.status_code == 403
    assert await _token_status(stack, rotated_client, OLD_SECRET) == 200
