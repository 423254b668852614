"""Every change an integration engine must hear of becomes a webhook event: each status in the
lifecycle table, each change to a team's hold on the case, the clocks and the CRU."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.shared.outbox import OutboxBatchWorker
from services.shared.vocabulary import ReferralStatus
from services.spa.referrals.lifecycle import TRANSITIONS
from services.spa.referrals.schemas import AssignmentChange
from services.spa.referrals.service import ASSIGNMENT_WITHDRAWN
from services.spa.webhooks.events import EVENT_TYPES, REFERRAL_EVENTS
from services.spa.webhooks.fanout import Dispatcher
from services.spa.webhooks.models import WebhookEvent
from tests import factories
from tests.e2e.test_caseload_lifecycle import care_assignment
from tests.e2e.test_refusals import child_in_south, south_refuses_children
from tests.receiver import Receiver, running_receiver
from tests.stack import Stack, post_referral


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def test_every_status_in_the_lifecycle_table_has_an_event() -> None:
    reachable = {ReferralStatus.RECEIVED} | {t for targets in TRANSITIONS.values() for t in targets}
    missing = sorted(status.value for status in reachable if status.value not in REFERRAL_EVENTS)

    assert set(TRANSITIONS) == set(ReferralStatus)  # the table names every status
    assert missing == []


def test_every_change_to_a_teams_hold_has_an_event() -> None:
    timeline_types = [
        f"{prefix}{change.value}"
        for prefix in ("team_", "safeguarding_")
        for change in AssignmentChange
    ]
    missing = [
        name for name in [*timeline_types, ASSIGNMENT_WITHDRAWN] if name not in REFERRAL_EVENTS
    ]

    assert missing == []
    assert set(REFERRAL_EVENTS.values()) <= set(EVENT_TYPES)


def test_the_openapi_document_publishes_every_event_with_its_schema() -> None:
    document = json.loads((Path(__file__).parents[2] / "openapi" / "spa.json").read_text())
    schemas = document["components"]["schemas"]

    def type_of(event_type: str) -> str:
        body = document["webhooks"][event_type]["post"]["requestBody"]["content"]
        name = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        const: str = schemas[name]["properties"]["type"]["const"]
        return const

    assert document["openapi"].startswith("3.1")
    assert {event_type: type_of(event_type) for event_type in EVENT_TYPES} == {
        event_type: event_type for event_type in EVENT_TYPES
    }


async def _subscribe(stack: Stack, receiver: Receiver, client_id: str, path: str) -> None:
    async with stack.client("spa", client_id) as spa:
        response = await spa.post("/v1/subscriptions", json={"url": receiver.base_url + path})
    assert response.status_code == 201, response.text


async def _told(
    stack: Stack, receiver: Receiver, path: str, referral_id: str, wanted: set[str]
) -> dict[str, dict[str, Any]]:
    """Wait until every event type in ``wanted`` arrived for the referral; by type."""

    def bodies() -> dict[str, dict[str, Any]]:
        parsed = (json.loads(item.body) for item in receiver.at(path))
        return {
            body["type"]: body for body in parsed if body["data"].get("referral_id") == referral_id
        }

    async def arrived() -> dict[str, dict[str, Any]] | None:
        got = bodies()
        return got if wanted <= got.keys() else None

    try:
        result: dict[str, dict[str, Any]] = await stack.wait_for(arrived, within=10)
    except AssertionError:
        raise AssertionError(f"missing {sorted(wanted - bodies().keys())}") from None
    return result


async def test_a_county_contact_held_for_assessment_is_told(
    stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(stack, receiver, "county-engine", "/county")
    contact = {"outcome": "contact_assessment_needed"}
    body = factories.referral(channel="county_contact", contact=contact)
    referral = await post_referral(stack, "county-engine", body)

    told = await _told(
        stack,
        receiver,
        "/county",
        referral["id"],
        {"referral.received", "referral.awaiting_assessment"},
    )

    assert told["referral.awaiting_assessment"]["data"]["status"] == "awaiting_assessment"


async def test_advice_given_by_the_county_is_told(stack: Stack, receiver: Receiver) -> None:
    await _subscribe(stack, receiver, "county-engine", "/county")
    contact = {"outcome": "advice_given", "advice": {"topics": ["carer_support"]}}
    body = factories.referral(channel="carer", needs=["carer_support"], contact=contact)
    referral = await post_referral(stack, "county-engine", body)

    told = await _told(
        stack, receiver, "/county", referral["id"], {"referral.resolved_with_advice"}
    )

    assert told["referral.resolved_with_advice"]["data"]["status"] == "resolved_with_advice"


async def test_a_redirect_to_emergency_services_is_told(stack: Stack, receiver: Receiver) -> None:
    await _subscribe(stack, receiver, "gp-engine", "/gp")
    body = factories.referral(urgency="crisis", needs=["fall"], red_flags=["chest_pain"])
    referral = await post_referral(stack, "gp-engine", body)

    told = await _told(stack, receiver, "/gp", referral["id"], {"referral.redirected_emergency"})

    assert referral["status"] == "redirected_emergency"
    assert told["referral.redirected_emergency"]["data"]["status"] == "redirected_emergency"


async def test_a_refusal_by_a_localitys_rules_is_told_with_its_reason(
    stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(stack, receiver, "gp-engine", "/gp")
    await south_refuses_children(stack)
    referral = await post_referral(stack, "gp-engine", child_in_south())

    told = await _told(
        stack, receiver, "/gp", referral["id"], {"referral.triaged", "referral.closed"}
    )

    closed = told["referral.closed"]["data"]
    assert (closed["event"], closed["status"]) == ("closed", "closed")
    # Codes and ids only, as every event: the reason in words is on the referral's own read.
    assert closed["detail"] == {
        "reason": "refused_by_rules",
        "refusal": "under_18",
        "decision_id": referral["routing"]["decision_id"],
        "rule_id": "child-held-for-call-handler",
    }


async def test_acceptance_with_its_plan_and_the_first_contact_are_told(
    stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(stack, receiver, "gp-engine", "/gp")
    referral = await post_referral(
        stack, "gp-engine", factories.referral(urgency="crisis", needs=["fall"])
    )
    assignment = care_assignment(referral)
    planned = stack.clock() + timedelta(minutes=40)
    async with stack.client("teams", "team-app") as team:
        accept = f"/v1/assignments/{assignment}/accept"
        await team.post(accept, json={"planned_first_contact_at": planned.isoformat()})
        await _told(stack, receiver, "/gp", referral["id"], {"referral.accepted"})
        contact = {"at": stack.clock().isoformat()}
        await team.post(f"/v1/assignments/{assignment}/first-contact", json=contact)

    told = await _told(
        stack, receiver, "/gp", referral["id"], {"referral.accepted", "referral.first_contact"}
    )

    accepted = told["referral.accepted"]["data"]["detail"]
    assert accepted["planned_first_contact_at"] == planned.isoformat()
    assert told["referral.first_contact"]["data"]["detail"]["change"] == "first_contact"


async def test_a_cancellation_and_the_teams_release_are_told(
    stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(stack, receiver, "gp-engine", "/gp")
    referral = await post_referral(
        stack, "gp-engine", factories.referral(urgency="crisis", needs=["fall"])
    )
    async with stack.client("spa", "gp-engine") as spa:
        cancelled = await spa.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "no_longer_needed"}
        )

    told = await _told(
        stack, receiver, "/gp", referral["id"], {"referral.cancelled", "assignment.withdrawn"}
    )

    assert cancelled.status_code == 200, cancelled.text
    withdrawn = told["assignment.withdrawn"]["data"]["detail"]
    assert withdrawn["reason"] == "referrer_cancelled"
    assert withdrawn["assignment_id"] == care_assignment(referral)


# Each way a referral can go, from a referrer in the north: (client, body, its last event).
WAYS: dict[str, tuple[str, dict[str, Any], str]] = {
    "routed": (
        "gp-engine",
        factories.referral(urgency="crisis", needs=["fall"]),
        "referral.routed",
    ),
    "contact assessment": (
        "county-engine",
        factories.referral(
            channel="county_contact", contact={"outcome": "contact_assessment_needed"}
        ),
        "referral.awaiting_assessment",
    ),
    "redirected": (
        "gp-engine",
        factories.referral(urgency="crisis", needs=["fall"], red_flags=["chest_pain"]),
        "referral.redirected_emergency",
    ),
    "held for a child": (
        "gp-engine",
        factories.referral(urgency="urgent", needs=["fall"], born=date(2016, 5, 1)),
        "referral.awaiting_assessment",
    ),
}


@pytest.mark.parametrize("way", WAYS)
async def test_every_filter_holds_for_every_way_a_referral_goes(
    stack: Stack, receiver: Receiver, way: str
) -> None:
    client_id, body, last = WAYS[way]
    filters = {
        "/north": {"localities": ["north"]},
        "/south": {"localities": ["south"]},
        "/channel": {"channels": [body["channel"]]},
        "/other-channel": {"channels": ["hospital_discharge"]},
        "/last-only": {"event_types": [last]},
    }
    async with stack.client("spa", client_id) as spa:
        for path, wanted in filters.items():
            response = await spa.post(
                "/v1/subscriptions", json={"url": receiver.base_url + path, **wanted}
            )
            assert response.status_code == 201, response.text
    referral = await post_referral(stack, client_id, body)

    north = await _told(stack, receiver, "/north", referral["id"], {"referral.received", last})
    by_channel = await _told(stack, receiver, "/channel", referral["id"], {last})
    only = await _told(stack, receiver, "/last-only", referral["id"], {last})
    await asyncio.sleep(0.5)

    assert referral["locality_code"] == "north"
    assert by_channel.keys() == north.keys()
    assert list(only) == [last]
    assert receiver.at("/south") == []
    assert receiver.at("/other-channel") == []


async def test_numbering_holds_across_a_dispatcher_that_dies_and_another_that_takes_over(
    stack: Stack, receiver: Receiver
) -> None:
    await _subscribe(stack, receiver, "gp-engine", "/gp")
    dying = stack.apps["spa"].state.webhook_dispatcher
    dying.stop()  # as if killed: what it had not dispatched waits in the outbox
    await dying.stopped()
    referral = await post_referral(
        stack, "gp-engine", factories.referral(urgency="crisis", needs=["fall"])
    )
    async with stack.client("spa", "gp-engine") as spa:
        await spa.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "no_longer_needed"}
        )
    app = stack.apps["spa"]
    successor = OutboxBatchWorker(
        app.state.sessionmaker,
        WebhookEvent,
        {"dispatch": Dispatcher(stack.clock)},
        service="spa",
        in_order_of="referral_id",
        clock=stack.clock,
        batch_size=1,  # one at a time, so a half-done turn would show as a gap
        then=app.state.webhook_deliverer_worker.notify,
    )
    for _ in range(12):
        await successor.run_once()

    told = await _told(
        stack, receiver, "/gp", referral["id"], {"referral.cancelled", "assignment.withdrawn"}
    )
    async with stack.client("spa", "gp-engine") as spa:
        timeline = (await spa.get(f"/v1/referrals/{referral['id']}/timeline")).json()["events"]

    ordered = sorted(told.values(), key=lambda body: body["data"]["seq"])
    assert [body["data"]["seq"] for body in ordered] == list(range(1, len(ordered) + 1))
    told_in_order = [body["data"]["event"] for body in ordered]
    assert told_in_order == [event["event_type"] for event in timeline]
