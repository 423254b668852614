"""NHS England's published BaRS 999 validation request (its patient swapped for a synthetic
one; see data/README.md), fed to the receiver as published and as the referral it would be."""

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
CATEGORY = "https://fhir.nhs.uk/CodeSystem/message-category-servicerequest"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def _published() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(PUBLISHED.read_text())
    return found


def _as_referral(bundle: dict[str, Any]) -> dict[str, Any]:
    """What a referral has that a validation request lacks: its use case and a priority."""
    request = bars.resource(bundle, "ServiceRequest")
    request["category"] = [{"coding": [{"system": CATEGORY, "code": "referral"}]}]
    request["priority"] = "urgent"
    return bundle


async def _post(stack: Stack, bundle: dict[str, Any]) -> Any:
    async with stack.client("spa", "ambulance-cad", idempotency_keys=False) as cad:
        return await cad.post(
            PROCESS, content=json.dumps(bundle), headers={**bars.headers(), "Prefer": "wait=10"}
        )


async def test_the_published_validation_request_is_refused_as_a_use_case_not_taken(
    stack: Stack,
) -> None:
    answer = await _post(stack, _published())

    assert answer.status_code == 422, answer.text
    outcome = answer.json()
    assert bars.bars_codes(outcome) == [("REC_UNPROCESSABLE_ENTITY", "not-supported")]
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.category"]
    assert await stack.count_rows("spa", Referral) == 0


async def test_the_published_message_as_a_referral_is_taken_in_held_and_answered_back(
    stack: Stack, receiver: Receiver
) -> None:
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
    published = _published()
    answer = await _post(stack, _as_referral(published))
    assert answer.status_code == 200, answer.text
    referral_id = bars.resource(answer.json(), "ServiceRequest")["id"]

    async def replied() -> list[Any] | None:
        got = receiver.at("/cad/$process-message")
        return got or None

    got = await stack.wait_for(replied, within=15)
    reply = json.loads(got[0].body)
    async with state.sessionmaker() as session:
        referral = await session.get(Referral, referral_id)
        count = await session.scalar(select(func.count()).select_from(Referral))

    assert referral is not None
    assert count == 1
    assert referral.channel == "ambulance"
    assert referral.nhs_number == "9991234578"
    # Its Pathways symptom group and discriminator are codes the county has not mapped: kept,
    # and a call handler decides.
    assert referral.status == "awaiting_assessment"
    assert referral.queue_reason == "unmapped_codes"
    assert referral.channel_details["unmapped_codes"] == [
        {"system": "https://fhir.nhs.uk/CodeSystem/pathways-sd-codes", "code": "SD4033"},
        {"system": "https://fhir.nhs.uk/CodeSystem/pathways-sg-codes", "code": "SG1137"},
    ]
    assert referral.needs == []
    assert referral.red_flags == []
    header = bars.resource(reply, "MessageHeader")
    assert header["response"] == {"identifier": published["id"], "code": "ok"}
    assert header["destination"][0]["endpoint"] == SOURCE
    request = bars.resource(reply, "ServiceRequest")
    assert request["id"] == referral_id
    assert bars.tag(request, "urn:spa-platform:referral-event") == "awaiting_assessment"
    assert bars.tag(request, "urn:spa-platform:queue_reason") == "unmapped_codes"
    target = json.loads(base64.b64decode(got[0].headers["nhsd-target-identifier"]))
    assert target == {"value": "2222222222", "system": "http://fhir.nhs.uk/Id/dos-service-id"}
