"""NHS England's published BaRS 999 validation request (its patient swapped for a synthetic
one; see data/README.md): taken, routed by the triage rules and answered back to its sender."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.spa.referrals.models import Referral
from services.spa.webhooks import service as webhooks
from tests.receiver import Receiver, running_receiver
from tests.spa.fhir import bars
from tests.stack import Stack

PUBLISHED = Path(__file__).parent / "data" / "bars-validation-request-1.1.0.json"
PROCESS = "/FHIR/R4/$process-message"
SOURCE = "http://fhir.nhs.uk/Id/dos-service-id|2222222222"  # as the example names its sender


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def _published() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(PUBLISHED.read_text())
    return found


async def _post(stack: Stack, bundle: dict[str, Any]) -> Any:
    async with stack.client("spa", "ambulance-cad", idempotency_keys=False) as cad:
        return await cad.post(
            PROCESS, content=json.dumps(bundle), headers={**bars.headers(), "Prefer": "wait=10"}
        )


async def _register_sender(stack: Stack, receiver: Receiver) -> None:
    state = stack.apps["spa"].state
    async with state.sessionmaker() as session, session.begin():
        await webhooks.register_bars_endpoint(
            session,
            client_id="ambulance-cad",
            source=SOURCE,
            url=f"{receiver.base_url}/cad/$process-message",
            headers={},
            policy=state.webhook_url_policy,
        )


async def _reply(stack: Stack, receiver: Receiver) -> tuple[dict[str, Any], dict[str, str]]:
    async def replied() -> list[Any] | None:
        return receiver.at("/cad/$process-message") or None

    got = await stack.wait_for(replied, within=15)
    assert len(got) == 1
    reply: dict[str, Any] = json.loads(got[0].body)
    return reply, dict(got[0].headers)


async def _referral(stack: Stack, referral_id: str) -> tuple[Referral | None, int | None]:
    async with stack.apps["spa"].state.sessionmaker() as session:
        referral = await session.get(Referral, referral_id)
        count = await session.scalar(select(func.count()).select_from(Referral))
    return referral, count


async def test_the_published_message_is_taken_routed_and_answered_back(
    stack: Stack, receiver: Receiver
) -> None:
    await _register_sender(stack, receiver)
    published = _published()

    answer = await _post(stack, published)

    assert answer.status_code == 200, answer.text
    request = bars.resource(answer.json(), "ServiceRequest")
    referral_id = request["id"]
    referral, count = await _referral(stack, referral_id)
    assert referral is not None
    assert count == 1
    assert referral.channel == "ambulance"
    assert referral.nhs_number == "9991234578"
    # Category 3 is the urgency of a two-hour response; the discriminator (new or worsening
    # breathlessness) is a red flag, so the triage rules hand the case back to the ambulance
    # service; the symptom group (palpitations) adds nothing of its own and holds nothing up.
    assert referral.urgency == "crisis"
    assert referral.red_flags == ["breathing_difficulty"]
    assert referral.channel_details.get("unmapped_codes", []) == []
    assert referral.status == "redirected_emergency"
    assert referral.pathway == "redirect_emergency"
    assert bars.tag(request, "urn:spa-platform:referral-status") == "redirected_emergency"

    reply, headers = await _reply(stack, receiver)
    header = bars.resource(reply, "MessageHeader")
    assert header["response"] == {"identifier": published["id"], "code": "ok"}
    assert header["destination"][0]["endpoint"] == SOURCE
    replied = bars.resource(reply, "ServiceRequest")
    assert replied["id"] == referral_id
    assert bars.tag(replied, "urn:spa-platform:referral-event") == "redirected_emergency"
    target = json.loads(base64.b64decode(headers["nhsd-target-identifier"]))
    assert target == {"value": "2222222222", "system": "http://fhir.nhs.uk/Id/dos-service-id"}


async def test_the_published_message_with_a_discriminator_not_listed_is_held(
    stack: Stack, receiver: Receiver
) -> None:
    """The same message reaching a discriminator the county has not reviewed: kept, and a call
    handler decides, reading both codes (the known group gives the rules nothing alone)."""
    await _register_sender(stack, receiver)
    published = _published()
    plan = bars.resource(published, "CarePlan")
    for concept in plan["activity"][0]["outcomeCodeableConcept"]:
        for coding in concept.get("coding", []):
            if coding["code"] == "SD4033":
                coding["code"] = "SD4999"

    answer = await _post(stack, published)

    assert answer.status_code == 200, answer.text
    referral_id = bars.resource(answer.json(), "ServiceRequest")["id"]
    reply, _ = await _reply(stack, receiver)
    referral, _ = await _referral(stack, referral_id)
    assert referral is not None
    assert referral.status == "awaiting_assessment"
    assert referral.queue_reason == "unmapped_codes"
    assert referral.channel_details["unmapped_codes"] == [
        {"system": "https://fhir.nhs.uk/CodeSystem/pathways-sd-codes", "code": "SD4999"},
        {"system": "https://fhir.nhs.uk/CodeSystem/pathways-sg-codes", "code": "SG1137"},
    ]
    assert referral.red_flags == []
    replied = bars.resource(reply, "ServiceRequest")
    assert bars.tag(replied, "urn:spa-platform:referral-event") == "awaiting_assessment"
    assert bars.tag(replied, "urn:spa-platform:queue_reason") == "unmapped_codes"


def _outcomes(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = bars.resource(bundle, "CarePlan")["activity"][0][
        "outcomeCodeableConcept"
    ]
    return found


def _with_category(bundle: dict[str, Any], category: str) -> dict[str, Any]:
    for concept in _outcomes(bundle):
        for coding in concept.get("coding", []):
            if coding["system"].endswith("arp-priority-code"):
                coding["code"] = category
    return bundle


async def test_a_category_1_or_2_call_is_refused_whatever_its_priority(stack: Stack) -> None:
    plain = await _post(stack, _with_category(_published(), "C2"))
    prioritised = _with_category(_published(), "C1")
    bars.resource(prioritised, "ServiceRequest")["priority"] = "routine"
    with_priority = await _post(stack, prioritised)

    for answer in (plain, with_priority):
        assert answer.status_code == 422, answer.text
        assert bars.bars_codes(answer.json()) == [("REC_UNPROCESSABLE_ENTITY", "business-rule")]
        assert answer.json()["issue"][0]["expression"][0].endswith("resource.activity")
    assert await stack.count_rows("spa", Referral) == 0


async def test_the_more_urgent_of_priority_and_category_is_taken(
    stack: Stack, receiver: Receiver
) -> None:
    await _register_sender(stack, receiver)
    published = _published()
    bars.resource(published, "ServiceRequest")["priority"] = "routine"

    answer = await _post(stack, published)

    assert answer.status_code == 200, answer.text
    referral, _ = await _referral(stack, bars.resource(answer.json(), "ServiceRequest")["id"])
    assert referral is not None
    assert referral.urgency == "crisis"  # category 3 outranks the routine priority


async def test_a_symptom_group_alone_gives_the_rules_nothing_and_is_held(
    stack: Stack, receiver: Receiver
) -> None:
    """A reviewed code that adds nothing never lets a case be routed on no need at all."""
    await _register_sender(stack, receiver)
    published = _published()
    plan = bars.resource(published, "CarePlan")
    plan["activity"][0]["outcomeCodeableConcept"] = [
        concept
        for concept in _outcomes(published)
        if not any(coding.get("code") == "SD4033" for coding in concept.get("coding", []))
    ]

    answer = await _post(stack, published)

    assert answer.status_code == 200, answer.text
    referral, _ = await _referral(stack, bars.resource(answer.json(), "ServiceRequest")["id"])
    assert referral is not None
    assert referral.status == "awaiting_assessment"
    assert referral.queue_reason == "unmapped_codes"
    assert referral.channel_details["unmapped_codes"] == [
        {"system": "https://fhir.nhs.uk/CodeSystem/pathways-sg-codes", "code": "SG1137"},
    ]
