"""Webhooks to a real receiving server: signed per Standard Webhooks, thin, numbered per
referral, retried, disabled on 410, replayable, and never sent to a client without need."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from standardwebhooks import WebhookVerificationError

from services.shared.outbox import OutboxWorker
from services.spa.main import create_app as create_spa
from services.spa.webhooks.delivery import Deliverer, delivery_client, retry_after, sign
from services.spa.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from tests import factories
from tests.receiver import Receiver, running_receiver, verify
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def _subscribe(
    stack: Stack, receiver: Receiver, path: str, client_id: str = "gp-engine", **body: Any
) -> dict[str, Any]:
    async with stack.client("spa", client_id) as spa:
        response = await spa.post(
            "/v1/subscriptions", json={"url": f"{receiver.base_url}{path}", **body}
        )
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


async def _refer(stack: Stack, client_id: str = "gp-engine", **overrides: Any) -> dict[str, Any]:
    body = factories.referral(urgency="crisis", needs=["fall"], **overrides)
    async with stack.client("spa", client_id) as spa:
        referral: dict[str, Any] = (await spa.post("/v1/referrals", json=body, headers=WAIT)).json()
    return referral


async def _hold_deliveries(stack: Stack) -> None:
    """Stop the app's own delivery worker, so that the test drives delivery itself."""
    worker = stack.apps["spa"].state.webhook_deliverer_worker
    worker.stop()
    await worker.stopped()


async def _queued(stack: Stack, *, referrals: int, messages: int) -> None:
    """Post ``referrals`` referrals and wait until ``messages`` messages wait to be sent."""
    for _ in range(referrals):
        await _refer(stack)

    async def enough() -> bool:
        async with stack.apps["spa"].state.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(WebhookMessage))
        return bool(count == messages)

    await stack.wait_for(enough)


async def _arrived(
    stack: Stack, receiver: Receiver, path: str, count: int, within: float = 10
) -> list[Any]:
    async def enough() -> list[Any] | None:
        got = receiver.at(path)
        return got if len(got) >= count else None

    result: list[Any] = await stack.wait_for(enough, within=within)
    return result


async def test_events_are_signed_thin_numbered_and_only_for_those_who_may_know(
    stack: Stack, receiver: Receiver
) -> None:
    mine = await _subscribe(stack, receiver, "/mine")
    await _subscribe(stack, receiver, "/other", client_id="other-engine")
    referral = await _refer(stack)
    got = await _arrived(stack, receiver, "/mine", 3)
    await asyncio.sleep(0.3)

    # One referral's events reach an endpoint one at a time, in the order of their seq.
    bodies = [verify(mine["secret"], item, stack.clock()) for item in got]
    assert [body["type"] for body in bodies] == [
        "referral.received",
        "referral.triaged",
        "referral.routed",
    ]
    assert [body["data"]["seq"] for body in bodies] == [1, 2, 3]
    assert {body["data"]["referral_id"] for body in bodies} == {referral["id"]}
    assert bodies[2]["data"]["links"]["referral"] == f"/v1/referrals/{referral['id']}"
    assert len({item.headers["webhook-id"] for item in got}) == 3
    raw = b"".join(item.body for item in got).decode()
    for identifier in (referral["patient"]["nhs_number"].replace(" ", ""), "Testperson", "1941"):
        assert identifier not in raw.replace(" ", "")
    # Another client's engine is told nothing of a referral it may not see.
    assert receiver.at("/other") == []


async def test_a_failed_delivery_is_retried_until_it_succeeds(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = await _subscribe(stack, receiver, "/hook", event_types=["referral.received"])
    receiver.answer(500, body=b"database down")
    receiver.answer(200, delay=2.0)  # longer than the 1 s timeout
    await _refer(stack)
    await _arrived(stack, receiver, "/hook", 1)
    deliverer = stack.apps["spa"].state.webhook_deliverer_worker
    for wait in (timedelta(seconds=6), timedelta(minutes=6)):
        await asyncio.sleep(0.3)
        stack.clock.now += wait
        await deliverer.run_once()
    got = await _arrived(stack, receiver, "/hook", 3)
    async with stack.client("spa", "gp-engine") as spa:
        page = (await spa.get(f"/v1/subscriptions/{subscription['id']}/messages")).json()
        log = (
            await spa.get(
                f"/v1/subscriptions/{subscription['id']}/messages/{page['items'][0]['id']}"
            )
        ).json()

    assert len({item.headers["webhook-id"] for item in got}) == 1
    assert page["items"][0]["status"] == "done"
    attempts = log["attempts_log"]
    assert [(a["response_status"], a["error"]) for a in attempts] == [
        (500, None),
        (None, "timeout"),
        (204, None),
    ]
    assert attempts[0]["response_body"] == "database down"


async def test_an_endpoint_carries_its_own_headers_which_are_never_shown_again(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = await _subscribe(
        stack,
        receiver,
        "/keyed",
        event_types=["referral.received"],
        headers={"X-Api-Key": "engine-key-0123456789"},
    )
    async with stack.client("spa", "gp-engine") as spa:
        shown = (await spa.get(f"/v1/subscriptions/{subscription['id']}")).json()
        reserved = await spa.post(
            "/v1/subscriptions",
            json={"url": f"{receiver.base_url}/x", "headers": {"Webhook-Signature": "forged"}},
        )
    await _refer(stack)
    got = await _arrived(stack, receiver, "/keyed", 1)

    assert got[0].headers["x-api-key"] == "engine-key-0123456789"
    verify(subscription["secret"], got[0], stack.clock())  # the signature is still ours
    assert shown["header_names"] == ["X-Api-Key"]
    assert "engine-key-0123456789" not in str(shown) + str(subscription)
    assert reserved.status_code == 422
    assert "forged" not in reserved.text


@pytest.mark.parametrize("status", [429, 503])
async def test_a_receiver_that_asks_for_time_gets_it(
    stack: Stack, receiver: Receiver, status: int
) -> None:
    await _subscribe(stack, receiver, "/hook", event_types=["referral.received"])
    receiver.answer(status, headers={"Retry-After": "120"})
    await _refer(stack)
    await _arrived(stack, receiver, "/hook", 1)
    deliverer = stack.apps["spa"].state.webhook_deliverer_worker
    await asyncio.sleep(0.3)  # the failure is recorded
    stack.clock.now += timedelta(seconds=30)  # past the usual first retry (5 s)
    await deliverer.run_once()
    too_soon = len(receiver.at("/hook"))
    stack.clock.now += timedelta(seconds=100)
    await deliverer.run_once()

    assert too_soon == 1
    assert len(await _arrived(stack, receiver, "/hook", 2)) == 2


def test_retry_after_is_read_as_seconds_or_a_date_and_kept_within_bounds() -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    assert retry_after("120", now) == timedelta(seconds=120)
    assert retry_after("Tue, 24 Nov 2026 10:05:00 GMT", now) == timedelta(minutes=5)
    assert retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now) == timedelta(0)
    assert retry_after("99999999999", now) == timedelta(hours=10)
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


async def test_gone_disables_the_endpoint_and_the_client_is_told(
    stack: Stack, receiver: Receiver
) -> None:
    gone = await _subscribe(stack, receiver, "/gone", event_types=["referral.received"])
    await _subscribe(stack, receiver, "/ops", event_types=["endpoint.disabled"])
    receiver.answer(410)
    await _refer(stack)
    told = await _arrived(stack, receiver, "/ops", 1)
    async with stack.client("spa", "gp-engine") as spa:
        state = (await spa.get(f"/v1/subscriptions/{gone['id']}")).json()

    notice = json.loads(told[0].body)
    assert notice["type"] == "endpoint.disabled"
    assert notice["data"] == {"endpoint_id": gone["id"], "reason": "gone"}
    assert (state["enabled"], state["disabled_reason"]) == (False, "gone")


async def test_failed_messages_are_recovered_and_one_can_be_replayed(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = await _subscribe(stack, receiver, "/hook", event_types=["referral.routed"])
    path = f"/v1/subscriptions/{subscription['id']}"
    since = stack.clock() - timedelta(hours=1)
    async with stack.client("spa", "gp-engine") as spa:
        await spa.patch(path, json={"enabled": False})
        await _refer(stack)

        async def failed() -> list[Any] | None:
            items = (await spa.get(f"{path}/messages", params={"status": "failed"})).json()
            return items["items"] or None

        await stack.wait_for(failed)
        await spa.patch(path, json={"enabled": True})
        recovered = (await spa.post(f"{path}/recovery", json={"since": since.isoformat()})).json()
        first = (await _arrived(stack, receiver, "/hook", 1))[0]
        message_id = (await spa.get(f"{path}/messages")).json()["items"][0]["id"]
        replayed = await spa.post(f"{path}/messages/{message_id}/replay")
        again = (await _arrived(stack, receiver, "/hook", 2))[1]

    assert recovered == {"requeued": 1}
    assert replayed.status_code == 200
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert again.body == first.body


async def test_after_rotation_both_secrets_verify_until_the_overlap_ends(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = await _subscribe(stack, receiver, "/hook", event_types=["referral.received"])
    async with stack.client("spa", "gp-engine") as spa:
        rotated = (
            await spa.post(
                f"/v1/subscriptions/{subscription['id']}/secret-rotation",
                json={"overlap_seconds": 3600},
            )
        ).json()
        ping = await spa.post(f"/v1/subscriptions/{subscription['id']}/ping")
    await _refer(stack)
    got = await _arrived(stack, receiver, "/hook", 2)

    assert rotated["secret"] != subscription["secret"]
    assert ping.status_code == 202
    assert json.loads(got[0].body)["type"] == "endpoint.ping"
    for item in got:
        assert len(item.headers["webhook-signature"].split(" ")) == 2
        verify(subscription["secret"], item, stack.clock())
        verify(rotated["secret"], item, stack.clock())
    # With no overlap the old secret stops signing at once.
    async with stack.client("spa", "gp-engine") as spa:
        final = (
            await spa.post(
                f"/v1/subscriptions/{subscription['id']}/secret-rotation",
                json={"overlap_seconds": 0},
            )
        ).json()
        await spa.post(f"/v1/subscriptions/{subscription['id']}/ping")
    last = (await _arrived(stack, receiver, "/hook", 3))[2]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    verify(final["secret"], last, stack.clock())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("http://example.org/hook", "https"),
        ("ftp://example.org/hook", "https"),
        ("https://user:pw@example.org/hook", "credentials"),
        ("not a url at all", "spaces"),
        ("notaurl/x", "https"),
        ("https://100.64.0.1/hook", "private"),
        ("https://[2002:7f00:1::]/hook", "private"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://127.0.0.1\t.example.org/hook", "control"),
        ("https://a..example.org/hook", "resolve"),
        ("https://2130706433/hook", "four decimal numbers"),
        ("https://127.1/hook", "four decimal numbers"),
        ("https://0x7f.0.0.1/hook", "four decimal numbers"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "private"),
        ("https://[::7f00:1]/hook", "private"),
    ],
)
async def test_endpoints_we_may_not_call_are_refused(stack: Stack, url: str, reason: str) -> None:
    async with stack.client("spa", "gp-engine") as spa:
        response = await spa.post("/v1/subscriptions", json={"url": url})

    assert response.status_code == 422
    assert response.json()["type"] == "urn:spa-platform:problem:webhook-endpoint-refused"
    assert reason in response.json()["errors"][0]["reason"] or (
        reason == "resolve" and "not valid" in response.json()["errors"][0]["reason"]
    )


async def test_unknown_event_types_and_other_clients_subscriptions_are_refused(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = await _subscribe(stack, receiver, "/hook")
    async with stack.client("spa", "gp-engine") as spa:
        unknown = await spa.post(
            "/v1/subscriptions",
            json={"url": f"{receiver.base_url}/x", "event_types": ["referral.teleported"]},
        )
    async with stack.client("spa", "other-engine") as other:
        theirs = await other.get(f"/v1/subscriptions/{subscription['id']}")
    async with stack.client("spa", "gp-system") as no_scope:
        refused = await no_scope.get("/v1/subscriptions")

    async with stack.client("spa", "gp-engine") as spa:
        naive = await spa.post(
            f"/v1/subscriptions/{subscription['id']}/recovery",
            json={"since": "2026-01-01T00:00:00"},
        )
        huge = await spa.get(f"/v1/subscriptions/{subscription['id']}/messages/{2**70}")
        nul = await spa.patch(
            f"/v1/subscriptions/{subscription['id']}", json={"description": "a\u0000b"}
        )
        deleted = await spa.delete(f"/v1/subscriptions/{subscription['id']}")
        revived = await spa.patch(f"/v1/subscriptions/{subscription['id']}", json={"enabled": True})
        listed = (await spa.get("/v1/subscriptions")).json()

    assert unknown.status_code == 422
    assert theirs.status_code == 404
    assert refused.status_code == 403
    assert (naive.status_code, huge.status_code, nul.status_code) == (422, 422, 422)
    assert deleted.status_code == 204
    assert revived.status_code == 404
    assert listed == []


async def test_nothing_is_lost_when_spa_stops_between_commit_and_send(
    stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(stack, receiver, "/hook", event_types=["referral.received"])
    old = stack.apps["spa"]
    for name in ("webhook_dispatcher", "webhook_deliverer_worker"):
        getattr(old.state, name).stop()
        await getattr(old.state, name).stopped()
    await _refer(stack)
    await asyncio.sleep(0.3)
    assert receiver.at("/hook") == []

    fresh = create_spa(old.state.settings, mounts=stack.mounts, clock=stack.clock)
    async with LifespanManager(fresh):
        got = await _arrived(stack, receiver, "/hook", 1)
    assert json.loads(got[0].body)["type"] == "referral.received"


async def test_two_replicas_never_send_one_attempt_twice(
    any_stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(any_stack, receiver, "/hook", event_types=["referral.received"])
    app = any_stack.apps["spa"]
    await _hold_deliveries(any_stack)
    await _queued(any_stack, referrals=8, messages=8)
    async with delivery_client(app.state.webhook_url_policy.allowed) as http:
        replicas = [
            OutboxWorker(
                app.state.sessionmaker,
                WebhookMessage,
                Deliverer(
                    app.state.sessionmaker,
                    http,
                    clock=any_stack.clock,
                    allow_http_hosts=("127.0.0.1",),
                    allowed_networks=app.state.webhook_url_policy.allowed,
                ),
                service="spa",
                clock=any_stack.clock,
                batch_size=3,
            )
            for _ in range(2)
        ]
        for _ in range(4):
            await asyncio.gather(*(replica.run_once() for replica in replicas))

    ids = [item.headers["webhook-id"] for item in receiver.at("/hook")]
    assert len(ids) == 8
    assert len(set(ids)) == 8
    async with app.state.sessionmaker() as session:
        attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
    assert attempts == 8


async def test_a_garbage_answer_does_not_break_the_worker(stack: Stack, receiver: Receiver) -> None:
    subscription = await _subscribe(stack, receiver, "/hook", event_types=["referral.received"])
    receiver.answer(200, body=bytes(range(256)) * 40)
    await _refer(stack)
    await _arrived(stack, receiver, "/hook", 1)
    async with stack.client("spa", "gp-engine") as spa:

        async def delivered() -> dict[str, Any] | None:
            items = (await spa.get(f"/v1/subscriptions/{subscription['id']}/messages")).json()
            return (
                items["items"][0]
                if items["items"] and items["items"][0]["status"] == "done"
                else None
            )

        message = await stack.wait_for(delivered)
        log = (
            await spa.get(f"/v1/subscriptions/{subscription['id']}/messages/{message['id']}")
        ).json()
    assert len(log["attempts_log"][0]["response_body"]) <= 1024


def test_the_published_test_vector_is_what_we_sign() -> None:
    root = Path(__file__).resolve().parents[2]
    vector = json.loads((root / "examples" / "webhook_test_vector.json").read_text())
    endpoint = WebhookEndpoint(secret=vector["secret"])
    at = datetime.fromtimestamp(int(vector["webhook-timestamp"]), UTC)

    assert sign(endpoint, vector["webhook-id"], at, vector["body"]) == vector["webhook-signature"]


def test_the_example_receiver_accepts_our_deliveries_and_refuses_forgeries() -> None:
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "receiver", root / "examples" / "webhook_receiver.py"
    )
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    endpoint = WebhookEndpoint(secret=secret)
    body = '{"data":{},"timestamp":"2026-11-24T10:00:00+00:00","type":"endpoint.ping"}'
    now = datetime.now(UTC)  # noqa: TID251 - the example receiver checks on its own clock
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(endpoint, "msg_1", now, body),
    }

    assert example.verify(secret, body.encode(), headers)["type"] == "endpoint.ping"
    with pytest.raises(WebhookVerificationError):
        example.verify(secret, body.replace("ping", "pong").encode(), headers)


async def test_a_slow_endpoint_holds_up_no_other(stack: Stack, receiver: Receiver) -> None:
    receiver.slow["/slow"] = 0.8  # inside the 1 s limit, so every delivery succeeds
    await _subscribe(stack, receiver, "/slow")
    await _subscribe(stack, receiver, "/fast")
    app = stack.apps["spa"]
    await _hold_deliveries(stack)
    await _queued(stack, referrals=6, messages=36)
    async with delivery_client(app.state.webhook_url_policy.allowed) as http:
        deliverer = Deliverer(
            app.state.sessionmaker,
            http,
            clock=stack.clock,
            allow_http_hosts=("127.0.0.1",),
            allowed_networks=app.state.webhook_url_policy.allowed,
            timeout=1.0,
        )
        worker = OutboxWorker(
            app.state.sessionmaker,
            WebhookMessage,
            deliverer,
            service="spa",
            clock=stack.clock,
            batch_size=8,
            poll_interval=0.05,
            claim_filter=deliverer.claim_filter,
        )
        task = asyncio.create_task(worker.run())
        try:
            await _arrived(stack, receiver, "/fast", 18)
            # The slow endpoint takes 0.8 s per 4 deliveries: it is far from done, yet every
            # message for the fast one has gone.
            assert len(receiver.at("/slow")) <= 12
            await _arrived(stack, receiver, "/slow", 18)
        finally:
            worker.stop()
            await task


async def test_a_name_is_checked_again_when_a_delivery_connects(
    stack: Stack, receiver: Receiver
) -> None:
    """A name that passed when the subscription was saved, and now resolves to an address we
    may not call (DNS rebinding), is refused at the moment of connecting."""
    port = receiver.base_url.rsplit(":", 1)[1]
    subscription = await _subscribe(stack, receiver, "/hook", event_types=["referral.received"])
    app = stack.apps["spa"]
    await _hold_deliveries(stack)
    async with app.state.sessionmaker() as session, session.begin():
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(subscription["id"]))
        assert endpoint is not None
        endpoint.url = f"http://localhost:{port}/hook"
    await _queued(stack, referrals=1, messages=1)
    async with delivery_client([]) as http:
        deliverer = Deliverer(
            app.state.sessionmaker, http, clock=stack.clock, allow_http_hosts=("localhost",)
        )
        worker = OutboxWorker(
            app.state.sessionmaker, WebhookMessage, deliverer, service="spa", clock=stack.clock
        )
        await worker.run_once()
    async with app.state.sessionmaker() as session:
        attempt = await session.scalar(select(WebhookAttempt))
    assert attempt is not None
    assert attempt.error == "address_refused"
    assert attempt.response_status is None
    assert receiver.at("/hook") == []


async def test_a_message_waiting_its_turn_keeps_its_claim(stack: Stack, receiver: Receiver) -> None:
    """Behind a slow endpoint, waiting outlasts the claim's lease: the wait renews the claim,
    so no second claim takes the message and counts a try that never happened."""
    receiver.slow["/slow"] = 1.5
    await _subscribe(stack, receiver, "/slow", event_types=["referral.received"])
    app = stack.apps["spa"]
    await _hold_deliveries(stack)
    await _queued(stack, referrals=5, messages=5)
    # Five turns of 1.5 s, one at a time, outlast the lease; the margins are seconds, not
    # fractions of one, so that a busy machine's slow renewal does not lose the claim.
    lease = timedelta(seconds=6)
    async with delivery_client(app.state.webhook_url_policy.allowed) as http:
        deliverer = Deliverer(
            app.state.sessionmaker,
            http,
            clock=stack.clock,
            per_endpoint=1,
            allow_http_hosts=("127.0.0.1",),
            allowed_networks=app.state.webhook_url_policy.allowed,
            timeout=2.0,
            lease=lease,
        )
        worker = OutboxWorker(
            app.state.sessionmaker, WebhookMessage, deliverer, service="spa", batch_size=8,
            poll_interval=0.1, lease_seconds=lease.total_seconds(), clock=stack.clock,
        )  # fmt: skip
        task = asyncio.create_task(worker.run())
        try:
            await _arrived(stack, receiver, "/slow", 5, within=30)
            await asyncio.sleep(0.5)
        finally:
            worker.stop()
            await task

    async with app.state.sessionmaker() as session:
        messages = list(await session.scalars(select(WebhookMessage)))
    assert len({item.headers["webhook-id"] for item in receiver.at("/slow")}) == 5
    assert len(receiver.at("/slow")) == 5
    assert {(message.status, message.attempts) for message in messages} == {("done", 1)}
