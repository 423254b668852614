"""BaRS referrals from NHS 111 and 999 become referrals exactly as POST /v1/referrals makes them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from services.spa.referrals.models import Referral
from tests.spa.fhir import bars
from tests.stack import Stack

PROCESS = "/FHIR/R4/$process-message"
WAIT = {"Prefer": "wait=10"}
STATUS = "urn:spa-platform:referral-status"


async def _post(http: httpx.AsyncClient, bundle: dict[str, Any], **headers: str) -> httpx.Response:
    return await http.post(
        PROCESS, content=json.dumps(bundle), headers={**bars.headers(), **headers}
    )


async def _referral(
    stack: Stack, referral_id: str, reader: str = "nhs111-system"
) -> dict[str, Any]:
    """The referral as its sender reads it on the JSON API; a call handler sees why it waits."""
    async with stack.client("spa", reader) as http:
        found: dict[str, Any] = (await http.get(f"/v1/referrals/{referral_id}")).json()
    return found


async def test_a_111_referral_is_routed_and_answered_with_a_response_message(stack: Stack) -> None:
    sent = bars.headers()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answer = await nhs111.post(
            PROCESS, content=json.dumps(bars.message()), headers={**sent, **WAIT}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.headers["x-request-id"] == sent["X-Request-Id"]
    assert answer.headers["x-correlation-id"] == sent["X-Correlation-Id"]
    body = answer.json()
    Bundle.model_validate(body)
    header = bars.resource(body, "MessageHeader")
    assert header["response"]["code"] == "ok"
    assert header["destination"][0]["endpoint"] == "https://sender.test/FHIR/R4"
    service_request = bars.resource(body, "ServiceRequest")
    assert bars.tag(service_request, STATUS) == "routed"
    stored = await _referral(stack, service_request["id"])
    assert stored["channel"] == "nhs111"
    assert stored["urgency"] == "urgent"
    assert stored["needs"] == ["fall"]
    assert stored["nhs111"]["dx_code"] == "Dx0122"
    assert stored["nhs111"]["dos_service_id"] == "2000012345"
    assert stored["patient"]["registered_practice"] == "M91001"
    assert stored["patient"]["nhs_number_verification"] == "01"
    assert stored["referrer"]["organisation"] == "X99AA"
    assert stored["team"] is not None


async def test_a_999_referral_with_a_safeguarding_flag_goes_to_the_cru_too(stack: Stack) -> None:
    async with stack.client("spa", "ambulance-cad", idempotency_keys=False) as cad:
        answer = await _post(cad, bars.message(safeguarding=True, priority="asap"), **WAIT)
    assert answer.status_code == 200, answer.text
    referral_id = bars.resource(answer.json(), "ServiceRequest")["id"]
    stored = await _referral(stack, referral_id, "ambulance-cad")
    assert stored["channel"] == "ambulance"
    assert stored["urgency"] == "crisis"
    assert stored["safeguarding"]["concern"] is True
    assert stored["nhs111"] is None
    assert {a["kind"] for a in stored["assignments"]} == {"care", "safeguarding"}


async def test_a_replayed_message_is_a_duplicate_and_creates_nothing(stack: Stack) -> None:
    bundle, sent = bars.message(), bars.headers()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        first = await nhs111.post(PROCESS, content=json.dumps(bundle), headers=sent)
        again = await nhs111.post(PROCESS, content=json.dumps(bundle), headers=sent)
    assert first.status_code == 200
    assert again.status_code == 409
    assert bars.bars_codes(again.json()) == [("REC_CONFLICT", "duplicate")]
    assert again.headers["x-correlation-id"] == sent["X-Correlation-Id"]
    async with stack.apps["spa"].state.sessionmaker() as session:
        made = list(
            await session.scalars(
                select(Referral.id).where(Referral.referrer_client_id == "nhs111-system")
            )
        )
    assert len(made) == 1


async def test_a_repeat_sent_while_the_first_is_processed_is_too_early(stack: Stack) -> None:
    bundle, sent = bars.message(), bars.headers()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answers = await asyncio.gather(
            *(nhs111.post(PROCESS, content=json.dumps(bundle), headers=sent) for _ in range(4))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(200) == 1
    assert set(statuses) - {200} <= {409, 425}
    for answer in answers:
        if answer.status_code == 425:
            assert bars.bars_codes(answer.json()) == [("REC_TOO_EARLY", "transient")]
            assert answer.headers["retry-after"] == "1"


async def test_an_unknown_code_is_kept_and_the_case_waits_for_a_call_handler(stack: Stack) -> None:
    bundle = bars.message(codes=[bars.FALL, bars.UNMAPPED])
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answer = await _post(nhs111, bundle, **WAIT)
    assert answer.status_code == 200, answer.text
    referral_id = bars.resource(answer.json(), "ServiceRequest")["id"]
    stored = await _referral(stack, referral_id, "county-call-handlers")
    assert stored["status"] == "awaiting_assessment"
    assert stored["queue_reason"] == "unmapped_codes"
    assert stored["needs"] == ["fall"]
    assert stored["unmapped_codes"] == [{"system": bars.SNOMED, "code": bars.UNMAPPED}]


async def test_a_message_of_unmapped_codes_only_is_still_taken(stack: Stack) -> None:
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answer = await _post(nhs111, bars.message(codes=[bars.UNMAPPED]), **WAIT)
    assert answer.status_code == 200, answer.text
    referral_id = bars.resource(answer.json(), "ServiceRequest")["id"]
    stored = await _referral(stack, referral_id, "county-call-handlers")
    assert stored["queue_reason"] == "unmapped_codes"
    assert stored["needs"] == []


async def test_a_wrong_event_or_unknown_workflow_is_refused_as_invariant(stack: Stack) -> None:
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        event = await _post(nhs111, bars.message(event="booking-request"))
        workflow = await _post(nhs111, bars.message(reason="new", status="revoked"))
    for answer in (event, workflow):
        assert answer.status_code == 400, answer.text
        outcome = answer.json()
        OperationOutcome.model_validate(outcome)
        assert bars.bars_codes(outcome) == [("REC_BAD_REQUEST", "invariant")]
        assert "Bundle.entry[0].resource.eventCoding" in outcome["issue"][0]["expression"]


async def test_version_and_use_case_are_checked(stack: Stack) -> None:
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        missing = await _post(nhs111, bars.message(version=None))
        unsupported = await _post(nhs111, bars.message(version="2.0.0"))
        booking = await _post(nhs111, bars.message(use_case="booking"))
    assert missing.status_code == 400
    assert bars.bars_codes(missing.json()) == [("REC_BAD_REQUEST", "required")]
    assert missing.json()["issue"][0]["expression"] == ["Bundle.meta.versionId"]
    assert unsupported.status_code == 422
    assert bars.bars_codes(unsupported.json()) == [("REC_UNPROCESSABLE_ENTITY", "not-supported")]
    assert booking.status_code == 422
    assert bars.bars_codes(booking.json()) == [("REC_UNPROCESSABLE_ENTITY", "not-supported")]
    assert booking.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.category"]


async def test_a_malformed_bundle_is_a_bad_request_naming_the_element(stack: Stack) -> None:
    bundle = bars.message()
    bundle["entry"][2]["resource"]["birthDate"] = "14/03/1941"
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        invalid = await _post(nhs111, bundle)
        not_json = await nhs111.post(PROCESS, content=b"{not json", headers=bars.headers())
        not_a_bundle = await _post(nhs111, {"resourceType": "Patient"})
    assert invalid.status_code == 400, invalid.text
    assert bars.bars_codes(invalid.json()) == [("REC_BAD_REQUEST", "structure")]
    assert invalid.json()["issue"][0]["expression"] == ["Bundle.entry[2].resource.birthDate"]
    assert "14/03/1941" not in invalid.text
    assert not_json.status_code == 400
    assert not_json.json()["resourceType"] == "OperationOutcome"
    assert not_a_bundle.status_code == 400


async def test_an_invalid_nhs_number_is_unprocessable_without_echoing_it(stack: Stack) -> None:
    number = "9434765918"  # fails the Modulus 11 check
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answer = await _post(nhs111, bars.message(nhs_number=number))
    assert answer.status_code == 422, answer.text
    assert bars.bars_codes(answer.json()) == [("REC_UNPROCESSABLE_ENTITY", "invalid")]
    assert answer.json()["issue"][0]["expression"] == ["Bundle.entry[2].resource.identifier"]
    assert number not in answer.text


async def test_a_bundle_over_the_size_limit_is_refused_as_fhir(stack: Stack) -> None:
    bundle = bars.message()
    bundle["entry"][1]["resource"]["note"] = [{"text": "x" * 4000}] * 300
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answer = await _post(nhs111, bundle)
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert bars.bars_codes(answer.json()) == [("REC_BAD_REQUEST", "too-costly")]


async def test_a_client_not_on_a_bars_channel_is_refused(stack: Stack) -> None:
    async with stack.client("spa", "gp-system", idempotency_keys=False) as gp:
        answer = await _post(gp, bars.message())
    assert answer.status_code == 422
    assert bars.bars_codes(answer.json()) == [("REC_UNPROCESSABLE_ENTITY", "business-rule")]
