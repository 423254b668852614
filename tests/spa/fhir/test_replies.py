"""Replies to BaRS senders: a real HTTP server plays the 111 or CAD system, and hears of each
change to its referrals once (after deduplicating by id), in order, with the right codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from services.shared.db import create_engine, create_sessionmaker
from services.spa.webhooks import service as webhooks
from services.spa.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.receiver import Receiver, running_receiver
from tests.spa.fhir import bars
from tests.stack import Stack

PROCESS = "/FHIR/R4/$process-message"
WAIT = {"Prefer": "wait=10"}
SOURCE = "https://sender.test/FHIR/R4"  # the source endpoint of every message in bars.py
CHANGE = "urn:spa-platform:referral-event"
STATUS = "urn:spa-platform:referral-status"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def _register(stack: Stack, receiver: Receiver, client_id: str, path: str) -> None:
    """The operator registers the sender's $process-message, with its credentials there."""
    state = stack.apps["spa"].state
    async with state.sessionmaker() as session, session.begin():
        await webhooks.register_bars_endpoint(
            session,
            client_id=client_id,
            source=SOURCE,
            url=f"{receiver.base_url}{path}",
            headers={"Authorization": f"Bearer {client_id}-key-0123456789"},
            policy=state.webhook_url_policy,
        )


async def _send(
    stack: Stack, client_id: str, bundle: dict[str, Any], correlation_id: str | None = None
) -> dict[str, Any]:
    sent = bars.headers(**({"X-Correlation-Id": correlation_id} if correlation_id else {}))
    async with stack.client("spa", client_id, idempotency_keys=False) as sender:
        answer = await sender.post(PROCESS, content=json.dumps(bundle), headers={**sent, **WAIT})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _referral_id(answer: dict[str, Any]) -> str:
    return str(bars.resource(answer, "ServiceRequest")["id"])


def _replies(receiver: Receiver, path: str) -> dict[str, list[dict[str, Any]]]:
    """Each referral's replies in the order they arrived, a repeat (same id) counted once."""
    seen: set[str] = set()
    found: dict[str, list[dict[str, Any]]] = {}
    for item in receiver.at(path):
        body = json.loads(item.body)
        if body["id"] in seen:
            continue
        seen.add(body["id"])
        found.setdefault(_referral_id(body), []).append(body)
    return found


def _told(replies: list[dict[str, Any]]) -> list[tuple[str | None, str | None, str]]:
    """(change, our status, FHIR status) of each reply."""
    told = []
    for reply in replies:
        request = bars.resource(reply, "ServiceRequest")
        told.append((bars.tag(request, CHANGE), bars.tag(request, STATUS), request["status"]))
    return told


async def _replied(
    stack: Stack, receiver: Receiver, path: str, referral_id: str, count: int
) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        got = _replies(receiver, path).get(referral_id, [])
        return got if len(got) >= count else None

    result: list[dict[str, Any]] = await stack.wait_for(enough, within=15)
    return result


def _care(stack_referral: dict[str, Any]) -> str:
    return str(
        next(a["assignment_id"] for a in stack_referral["assignments"] if a["kind"] == "care")
    )


async def _read(stack: Stack, client_id: str, referral_id: str) -> dict[str, Any]:
    async with stack.client("spa", client_id) as spa:
        found: dict[str, Any] = (await spa.get(f"/v1/referrals/{referral_id}")).json()
    return found


async def _team(stack: Stack, assignment: str, action: str, body: dict[str, Any]) -> None:
    async with stack.client("teams", "team-app") as team:
        answer = await team.post(f"/v1/assignments/{assignment}/{action}", json=body)
    assert answer.status_code == 200, answer.text


async def _reaches(stack: Stack, client_id: str, referral_id: str, status: str) -> None:
    async def reached() -> bool:
        return bool((await _read(stack, client_id, referral_id))["status"] == status)

    await stack.wait_for(reached, within=10)


async def _accepted_and_closed(stack: Stack, client_id: str, referral_id: str) -> str:
    """A team accepts the referral with a planned first contact, then closes it."""
    planned = (stack.clock() + timedelta(hours=1)).isoformat()
    assignment = _care(await _read(stack, client_id, referral_id))
    await _team(stack, assignment, "accept", {"planned_first_contact_at": planned})
    await _reaches(stack, client_id, referral_id, "accepted")
    await _team(stack, assignment, "close", {"outcome": "completed"})
    return planned


async def _advised(stack: Stack, referral_id: str) -> None:
    """A north call handler claims the held case and resolves it with advice."""
    async with stack.client("spa", "north-call-handlers") as handlers:
        claimed = await handlers.post(f"/v1/queue/{referral_id}/claim", json={"handler": "h-7"})
        assert claimed.status_code == 200, claimed.text
        resolved = await handlers.post(
            f"/v1/queue/{referral_id}/advice",
            json={"claim_id": claimed.json()["claim_id"], "advice": {"topics": ["self_care"]}},
        )
    assert resolved.status_code == 200, resolved.text


async def test_a_111_sender_hears_of_acceptance_decline_advice_cancel_and_close_in_order(
    stack: Stack, receiver: Receiver
) -> None:
    await _register(stack, receiver, "nhs111-system", "/nhs111/$process-message")
    first = bars.message()
    conversation = bars.headers()["X-Correlation-Id"]
    accepted = _referral_id(await _send(stack, "nhs111-system", first, conversation))
    declined = _referral_id(await _send(stack, "nhs111-system", bars.message()))
    held = _referral_id(await _send(stack, "nhs111-system", bars.message(codes=[bars.UNMAPPED])))
    cancelled_message = bars.message()
    cancelled = _referral_id(await _send(stack, "nhs111-system", cancelled_message))

    planned = await _accepted_and_closed(stack, "nhs111-system", accepted)
    decline = {"reason": "capacity_full", "note": "Two staff off sick."}
    await _team(stack, _care(await _read(stack, "nhs111-system", declined)), "decline", decline)
    await _reaches(stack, "nhs111-system", declined, "rerouted")
    await _advised(stack, held)
    cancel = bars.change_of(cancelled_message, reason="update", status="revoked")
    await _send(stack, "nhs111-system", cancel)

    path = "/nhs111/$process-message"
    got = {
        accepted: await _replied(stack, receiver, path, accepted, 2),
        declined: await _replied(stack, receiver, path, declined, 2),
        held: await _replied(stack, receiver, path, held, 2),
        cancelled: await _replied(stack, receiver, path, cancelled, 1),
    }
    await asyncio.sleep(0.5)  # anything more that was going to arrive has arrived

    assert _told(_replies(receiver, path)[accepted]) == [
        ("accepted", "accepted", "active"),
        ("closed", "closed", "completed"),
    ]
    assert _told(_replies(receiver, path)[declined]) == [
        ("declined", "declined", "active"),
        ("rerouted", "rerouted", "active"),
    ]
    assert _told(_replies(receiver, path)[held]) == [
        ("awaiting_assessment", "awaiting_assessment", "active"),
        ("resolved_with_advice", "resolved_with_advice", "completed"),
    ]
    assert _told(_replies(receiver, path)[cancelled]) == [("cancelled", "cancelled", "revoked")]
    # Each reply is a BaRS response message to the message that made the referral.
    acceptance = got[accepted][0]
    Bundle.model_validate(acceptance)
    header = bars.resource(acceptance, "MessageHeader")
    assert header["eventCoding"]["code"] == "servicerequest-response"
    assert header["response"] == {"identifier": first["id"], "code": "ok"}
    assert header["destination"][0]["endpoint"] == SOURCE
    assert header["id"] == acceptance["id"]
    request = bars.resource(acceptance, "ServiceRequest")
    assert request["occurrenceDateTime"][:16] == planned[:16]
    assert (
        request["identifier"][1]["value"]
        == bars.resource(first, "ServiceRequest")["identifier"][0]["value"]
    )
    decline_reply = bars.resource(got[declined][0], "ServiceRequest")
    assert bars.tag(decline_reply, "urn:spa-platform:decline_reason") == "capacity_full"
    held_reply = bars.resource(got[held][0], "ServiceRequest")
    assert bars.tag(held_reply, "urn:spa-platform:queue_reason") == "unmapped_codes"
    # On the wire: the sender's credentials, BaRS headers, a stable id per reply.
    wire = receiver.at(path)
    assert all(
        item.headers["authorization"] == "Bearer nhs111-system-key-0123456789" for item in wire
    )
    assert all(item.headers["content-type"] == "application/fhir+json" for item in wire)
    assert all(item.headers["x-request-id"] == json.loads(item.body)["id"] for item in wire)
    first_wire = next(item for item in wire if json.loads(item.body)["id"] == acceptance["id"])
    assert first_wire.headers["x-correlation-id"] == conversation
    # No patient detail travels in a reply.
    raw = b"".join(item.body for item in wire).decode()
    for identifier in ("Testperson", "1941-03-14", "XW1 2ZZ", "Fictional"):
        assert identifier not in raw


async def test_a_999_sender_hears_of_its_own_referrals_and_of_a_redirect(
    stack: Stack, receiver: Receiver
) -> None:
    await _register(stack, receiver, "ambulance-cad", "/cad/$process-message")
    await _register(stack, receiver, "nhs111-system", "/nhs111/$process-message")
    fall = _referral_id(
        await _send(stack, "ambulance-cad", bars.message(safeguarding=True, priority="asap"))
    )
    chest_pain = _referral_id(
        await _send(stack, "ambulance-cad", bars.message(codes=[bars.CHEST_PAIN], priority="asap"))
    )
    await _accepted_and_closed(stack, "ambulance-cad", fall)

    path = "/cad/$process-message"
    await _replied(stack, receiver, path, fall, 2)
    await _replied(stack, receiver, path, chest_pain, 1)
    await asyncio.sleep(0.5)

    replies = _replies(receiver, path)
    assert _told(replies[fall]) == [
        ("accepted", "accepted", "active"),
        ("closed", "closed", "completed"),
    ]
    assert _told(replies[chest_pain]) == [
        ("redirected_emergency", "redirected_emergency", "completed")
    ]
    # Another sender's endpoint hears nothing of these referrals.
    assert receiver.at("/nhs111/$process-message") == []


async def test_a_failing_sender_gets_its_reply_again_and_the_next_waits_behind_it(
    stack: Stack, receiver: Receiver
) -> None:
    await _register(stack, receiver, "nhs111-system", "/down/$process-message")
    receiver.answer(503, body=b"down for maintenance")
    referral_id = _referral_id(await _send(stack, "nhs111-system", bars.message()))
    await _accepted_and_closed(stack, "nhs111-system", referral_id)
    path = "/down/$process-message"

    async def tried() -> bool:
        return len(receiver.at(path)) >= 1

    await stack.wait_for(tried, within=10)
    await asyncio.sleep(0.6)  # the closure's reply is ready, but must wait its turn
    waiting = [json.loads(item.body)["id"] for item in receiver.at(path)]
    stack.clock.now += timedelta(seconds=10)  # past the first retry's wait
    got = await _replied(stack, receiver, path, referral_id, 2)

    async def all_done() -> list[str] | None:
        async with stack.apps["spa"].state.sessionmaker() as session:
            statuses = list(await session.scalars(select(WebhookMessage.status)))
        return statuses if statuses == ["done", "done"] else None

    statuses = await stack.wait_for(all_done)

    assert len(waiting) == 1  # only the acceptance was tried while it failed
    assert [item.headers["x-request-id"] for item in receiver.at(path)][:2] == [waiting[0]] * 2
    assert _told(got) == [("accepted", "accepted", "active"), ("closed", "closed", "completed")]
    assert statuses == ["done", "done"]


async def test_a_sender_that_already_has_a_reply_answers_409_and_it_counts_as_delivered(
    stack: Stack, receiver: Receiver
) -> None:
    await _register(stack, receiver, "ambulance-cad", "/cad/$process-message")
    receiver.answer(409, body=b'{"resourceType":"OperationOutcome"}')
    referral_id = _referral_id(
        await _send(stack, "ambulance-cad", bars.message(codes=[bars.CHEST_PAIN]))
    )
    await _replied(stack, receiver, "/cad/$process-message", referral_id, 1)

    async def done() -> bool:
        async with stack.apps["spa"].state.sessionmaker() as session:
            return bool(await session.scalar(select(WebhookMessage.status)) == "done")

    assert await stack.wait_for(done)


async def test_a_message_from_an_unregistered_source_is_taken_in_and_says_no_reply_will_follow(
    stack: Stack, receiver: Receiver
) -> None:
    answer = await _send(stack, "nhs111-system", bars.message())

    header = bars.resource(answer, "MessageHeader")
    outcome = bars.resource(answer, "OperationOutcome")
    assert header["response"]["code"] == "ok"
    assert header["response"]["details"]["reference"].startswith("urn:uuid:")
    assert outcome["issue"][0]["severity"] == "warning"
    assert bars.tag(bars.resource(answer, "ServiceRequest"), STATUS) == "routed"


def test_the_operator_registers_a_reply_endpoint_with_the_cli(
    postgres_urls: dict[str, str],
) -> None:
    source = "https://fhir.nhs.uk/Id/dos-service-id|2000012345"
    environment = {
        **os.environ,
        "SPA_DATABASE_URL": postgres_urls["spa"],
        "SPA_WEBHOOK_ALLOW_HTTP_HOSTS": '["127.0.0.1"]',
        "SPA_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "CAD_KEY": "cad-api-key-0123456789",
    }
    arguments = ["--client-id", "ambulance-cad", "--source", source]
    arguments += ["--url", "http://127.0.0.1:9/FHIR/R4/$process-message"]
    command = [sys.executable, "-m", "services.spa", "register-bars-endpoint", *arguments]
    done = subprocess.run(
        [*command, "--header-env", "X-Api-Key=CAD_KEY"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    refused = subprocess.run(
        [*command[:-1], "http://192.0.2.1/replies"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    stranger = subprocess.run(
        [*command[:4], "--client-id", "nobody", *arguments[2:]],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["headers"] == ["NHSD-Target-Identifier", "X-Api-Key"]
    assert "cad-api-key" not in done.stdout
    assert refused.returncode == 2
    assert stranger.returncode == 1
    rows = asyncio.run(_endpoints(postgres_urls["spa"], shown["endpoint_id"]))
    assert rows == [("bars_reply", source, "cad-api-key-0123456789")]


async def _endpoints(url: str, endpoint_id: str) -> list[tuple[str, str | None, str]]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            endpoint = await session.get(WebhookEndpoint, uuid.UUID(endpoint_id))
            assert endpoint is not None
            return [(endpoint.purpose, endpoint.bars_source, endpoint.extra_headers["X-Api-Key"])]
    finally:
        await engine.dispose()
