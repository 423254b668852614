"""The BaRS headers are required and checked, and every error on /FHIR/R4 is an
OperationOutcome, authentication's and the framework's included; /v1 keeps its problems."""

from __future__ import annotations

import base64
import json

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from tests.spa.fhir import bars
from tests.stack import Stack

PROCESS = "/FHIR/R4/$process-message"


@pytest.mark.parametrize("missing", ["X-Request-Id", "X-Correlation-Id", "NHSD-Target-Identifier"])
async def test_each_missing_header_is_a_bad_request(stack: Stack, missing: str) -> None:
    sent = bars.headers(**{missing: None})
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        answer = await nhs111.post(PROCESS, content=json.dumps(bars.message()), headers=sent)
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    OperationOutcome.model_validate(outcome)
    assert bars.bars_codes(outcome) == [("REC_BAD_REQUEST", "required")]
    assert missing in outcome["issue"][0]["diagnostics"]
    if missing != "X-Correlation-Id":
        assert answer.headers["x-correlation-id"] == sent["X-Correlation-Id"]


async def test_malformed_ids_and_another_target_are_refused(stack: Stack) -> None:
    other = base64.b64encode(json.dumps({"value": "someone-else", "system": "t"}).encode()).decode()
    cases = {
        "X-Request-Id": "not-a-uuid",
        "X-Correlation-Id": "42",
        "NHSD-Target-Identifier": other,
    }
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        for name, value in cases.items():
            answer = await nhs111.post(
                PROCESS, content=json.dumps(bars.message()), headers=bars.headers(**{name: value})
            )
            assert answer.status_code == 400, (name, answer.text)
            assert bars.bars_codes(answer.json()) == [("REC_BAD_REQUEST", "value")]
            assert "x-correlation-id" not in answer.headers or name != "X-Correlation-Id"
        garbled = await nhs111.post(
            PROCESS,
            content=json.dumps(bars.message()),
            headers=bars.headers(**{"NHSD-Target-Identifier": "%%%"}),
        )
    assert bars.bars_codes(garbled.json()) == [("REC_BAD_REQUEST", "structure")]


async def test_media_type_and_version_are_negotiated(stack: Stack) -> None:
    body = json.dumps(bars.message())
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        xml = await nhs111.post(
            PROCESS, content=body, headers=bars.headers(Accept="application/fhir+xml")
        )
        stu3 = await nhs111.post(
            PROCESS,
            content=body,
            headers=bars.headers(Accept="application/fhir+json; fhirVersion=3.0"),
        )
        future = await nhs111.post(
            PROCESS,
            content=body,
            headers=bars.headers(Accept="application/fhir+json; version=2.0.0"),
        )
        text = await nhs111.post(
            PROCESS, content=body, headers=bars.headers(**{"Content-Type": "text/plain"})
        )
        versioned = await nhs111.post(
            PROCESS,
            content=body,
            headers=bars.headers(Accept="application/fhir+json; version=1.2.0"),
        )
    for refused in (xml, stu3, future):
        assert refused.status_code == 406, refused.text
        assert bars.bars_codes(refused.json()) == [("REC_NOT_ACCEPTABLE", "processing")]
    assert text.status_code == 415
    assert text.json()["resourceType"] == "OperationOutcome"
    assert versioned.status_code == 200


async def test_authentication_failures_are_operation_outcomes(stack: Stack) -> None:
    async with stack.raw("spa") as anonymous:
        no_token = await anonymous.post(
            PROCESS, content=json.dumps(bars.message()), headers=bars.headers()
        )
    async with stack.client("spa", "county-reports", idempotency_keys=False) as reports:
        no_scope = await reports.post(
            PROCESS, content=json.dumps(bars.message()), headers=bars.headers()
        )
    assert no_token.status_code == 401
    assert bars.bars_codes(no_token.json()) == [("REC_UNAUTHORIZED", "login")]
    assert no_scope.status_code == 403
    assert bars.bars_codes(no_scope.json()) == [("REC_FORBIDDEN", "forbidden")]
    assert no_token.headers["content-type"].startswith("application/fhir+json")


async def test_unknown_paths_and_methods_answer_in_fhir_while_v1_keeps_problems(
    stack: Stack,
) -> None:
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        unknown = await nhs111.get("/FHIR/R4/Appointment", headers=bars.headers())
        method = await nhs111.get(PROCESS, headers=bars.headers())
        json_api = await nhs111.get("/v1/referrals/not-a-uuid")
    assert unknown.status_code == 404
    assert bars.bars_codes(unknown.json()) == [("REC_NOT_FOUND", "not-found")]
    assert method.status_code == 405
    assert bars.bars_codes(method.json()) == [("REC_METHOD_NOT_ALLOWED", "not-supported")]
    assert json_api.headers["content-type"] == "application/problem+json"
