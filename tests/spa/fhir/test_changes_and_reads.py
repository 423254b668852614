"""Updates and cancellations change the referral they name, under the lifecycle's rules; the
sender reads its referral's status as a ServiceRequest; the receiver describes itself."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.servicerequest import ServiceRequest
from sqlalchemy import select

from services.spa.audit import AuditEvent
from tests.spa.fhir import bars
from tests.stack import Stack

PROCESS = "/FHIR/R4/$process-message"
STATUS = "urn:spa-platform:referral-status"


async def _send(http: httpx.AsyncClient, bundle: dict[str, Any]) -> httpx.Response:
    return await http.post(PROCESS, content=json.dumps(bundle), headers=bars.headers())


async def test_a_cancel_message_cancels_the_referral_it_names(stack: Stack) -> None:
    first = bars.message()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        made = await _send(nhs111, first)
        cancel = bars.change_of(first, reason="update", status="revoked")
        cancelled = await _send(nhs111, cancel)
        again = await _send(nhs111, bars.change_of(first, reason="cancel", status="revoked"))
    assert made.status_code == 200
    assert cancelled.status_code == 200, cancelled.text
    assert bars.resource(cancelled.json(), "ServiceRequest")["status"] == "revoked"
    assert again.status_code == 409
    assert bars.bars_codes(again.json()) == [("REC_CONFLICT", "business-rule")]


async def test_an_accepted_referral_cannot_be_cancelled_and_the_sender_is_told(
    stack: Stack,
) -> None:
    first = bars.message()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        made = await nhs111.post(
            PROCESS, content=json.dumps(first), headers={**bars.headers(), "Prefer": "wait=10"}
        )
        referral_id = bars.resource(made.json(), "ServiceRequest")["id"]
        referral = (await nhs111.get(f"/v1/referrals/{referral_id}")).json()
        care = next(a for a in referral["assignments"] if a["kind"] == "care")
        async with stack.client("teams", "team-app") as team:
            accepted = await team.post(
                f"/v1/assignments/{care['assignment_id']}/accept",
                json={"planned_first_contact_at": "2026-11-24T12:00:00Z"},
            )
        assert accepted.status_code == 200, accepted.text

        async def is_accepted() -> bool:
            found = await nhs111.get(f"/v1/referrals/{referral_id}")
            return bool(found.json()["status"] == "accepted")

        await stack.wait_for(is_accepted)
        refused = await _send(
            nhs111,
            bars.change_of(first, reason="update", status="revoked", referral_id=referral_id),
        )
    assert refused.status_code == 409
    outcome = refused.json()
    assert bars.bars_codes(outcome) == [("REC_CONFLICT", "business-rule")]
    assert "accepted" in outcome["issue"][0]["diagnostics"]


async def test_an_update_amends_identity_and_raises_a_new_safeguarding_concern(
    stack: Stack,
) -> None:
    first = bars.message()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        made = await _send(nhs111, first)
        referral_id = bars.resource(made.json(), "ServiceRequest")["id"]
        update = bars.message(given_name="Adeline", safeguarding=True)
        # the same referral: its ServiceRequest identifier and patient, a new message
        update["entry"][1]["resource"]["identifier"] = first["entry"][1]["resource"]["identifier"]
        update["entry"][2]["resource"]["identifier"] = first["entry"][2]["resource"]["identifier"]
        update["entry"][0]["resource"]["reason"]["coding"][0]["code"] = "update"
        updated = await _send(nhs111, update)
        recoded = bars.change_of(first, reason="update", status="active")
        recoded["entry"][1]["resource"]["reasonCode"] = [
            {"coding": [{"system": bars.SNOMED, "code": bars.DELIRIUM}]}
        ]
        refused = await _send(nhs111, recoded)
        read = (await nhs111.get(f"/v1/referrals/{referral_id}")).json()
        timeline = (await nhs111.get(f"/v1/referrals/{referral_id}/timeline")).json()
    assert updated.status_code == 200, updated.text
    assert read["patient"]["given_name"] == "Adeline"
    assert read["safeguarding"]["concern"] is True
    amended = [e for e in timeline["events"] if e["event_type"] == "amended"]
    assert amended[0]["detail"] == {"fields": ["given_name", "safeguarding"]}
    assert refused.status_code == 422
    assert bars.bars_codes(refused.json()) == [("REC_UNPROCESSABLE_ENTITY", "business-rule")]


async def test_a_change_to_a_referral_of_another_sender_is_not_found(stack: Stack) -> None:
    first = bars.message()
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        made = await _send(nhs111, first)
    referral_id = bars.resource(made.json(), "ServiceRequest")["id"]
    async with stack.client("spa", "ambulance-cad", idempotency_keys=False) as cad:
        theirs = await _send(
            cad, bars.change_of(first, reason="update", status="revoked", referral_id=referral_id)
        )
        read = await cad.get(f"/FHIR/R4/ServiceRequest/{referral_id}", headers=bars.headers())
    assert theirs.status_code == read.status_code == 404
    assert bars.bars_codes(theirs.json()) == [("REC_NOT_FOUND", "not-found")]


async def test_the_sender_reads_its_referral_and_the_read_is_audited(stack: Stack) -> None:
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        made = await _send(nhs111, bars.message())
        referral_id = bars.resource(made.json(), "ServiceRequest")["id"]
        read = await nhs111.get(f"/FHIR/R4/ServiceRequest/{referral_id}", headers=bars.headers())
    assert read.status_code == 200, read.text
    ServiceRequest.model_validate(read.json())
    assert bars.tag(read.json(), STATUS) in {"received", "triaged", "routed"}
    assert "Testperson" not in read.text
    async with stack.apps["spa"].state.sessionmaker() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.resource_id == referral_id, AuditEvent.client_id == "nhs111-system"
                )
            )
        )
    assert "referral.read" in actions


async def test_metadata_and_message_definition_describe_the_receiver(stack: Stack) -> None:
    async with stack.client("spa", "nhs111-system", idempotency_keys=False) as nhs111:
        metadata = await nhs111.get(
            "/FHIR/R4/metadata", headers=bars.headers(**{"NHSD-Target-Identifier": None})
        )
        definitions = await nhs111.get("/FHIR/R4/MessageDefinition", headers=bars.headers())
    assert metadata.status_code == 200, metadata.text
    statement = CapabilityStatement.model_validate(metadata.json())
    assert statement.fhirVersion == "4.0.1"
    operations = [op.name for rest in statement.rest or [] for op in rest.operation or []]
    assert operations == ["process-message"]
    assert definitions.status_code == 200
    definition = definitions.json()["entry"][0]["resource"]
    assert definition["eventCoding"]["code"] == "servicerequest-request"
