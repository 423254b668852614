"""The clinical payload of a BaRS message: the requesting clinician, the patient's telecom,
address and communication, the incident Location, NEWS2, the consultation summary and SNOMED CT
codes land on the referral; a value that cannot be taken is left out with a warning naming its
element, and the referral is taken in all the same. None of it is logged."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.log_scan import findings
from tests.spa.fhir import bars
from tests.spa.fhir.test_official_example import _published
from tests.stack import Stack

PROCESS = "/FHIR/R4/$process-message"
SNOMED = "http://snomed.info/sct"
NEWS2 = {"system": SNOMED, "code": "1104051000000101"}


@pytest.fixture(autouse=True)
def _logs_identify_no_one(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    bad = [(kinds, line[:300]) for line in lines if (kinds := findings(line))]
    assert not bad, f"log lines that identify a person: {bad[:3]}"


def _entry(bundle: dict[str, Any], resource: dict[str, Any]) -> str:
    full_url = f"urn:uuid:{uuid.uuid4()}"
    bundle["entry"].append({"fullUrl": full_url, "resource": resource})
    return full_url


def _index(bundle: dict[str, Any], kind: str) -> int:
    return next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == kind)


def _news2(bundle: dict[str, Any], score: int, at: str) -> None:
    patient = bundle["entry"][_index(bundle, "Patient")]["fullUrl"]
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{**NEWS2, "display": "NEWS2 total score"}]},
        "subject": {"reference": patient},
        "effectiveDateTime": at,
        "valueQuantity": {"value": score, "unit": "score"},
    }
    _entry(bundle, observation)


def _ambulance_message(stack: Stack) -> dict[str, Any]:
    """A crew's referral: a registered paramedic with a call-back number, a patient who speaks
    Polish, found away from home, with a NEWS2 and a consultation summary."""
    bundle = bars.message(codes=[bars.FALL])
    practitioner = bars.resource(bundle, "Practitioner")
    practitioner["name"] = [{"given": ["Robin"], "family": "Quillfeather"}]
    practitioner["identifier"] = [
        {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555123456789"},
        {"system": "https://fhir.hl7.org.uk/Id/hcpc-number", "value": "PA123456"},
    ]
    practitioner["telecom"] = [{"system": "phone", "value": "020 7946 0321", "use": "work"}]
    role = bars.resource(bundle, "PractitionerRole")
    role["code"] = [{"coding": [{"system": SNOMED, "code": "397897005", "display": "Paramedic"}]}]
    patient = bars.resource(bundle, "Patient")
    patient["telecom"] = [{"system": "phone", "value": "0113 496 0555", "use": "mobile"}]
    patient["communication"] = [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "pl"}]}, "preferred": True}
    ]
    location = bars.resource(bundle, "Location")
    location["name"] = "Bus stop by the market"
    location["address"] = {"line": ["Outside the Corn Exchange"], "postalCode": "XW1 3ZZ"}
    plan = bars.resource(bundle, "CarePlan")
    plan["activity"][0]["outcomeCodeableConcept"].append(
        {"text": "Found on the floor by a neighbour; no head injury."}
    )
    _news2(bundle, 5, (stack.clock() - timedelta(minutes=10)).isoformat())
    return bundle


async def _send(stack: Stack, bundle: dict[str, Any]) -> httpx.Response:
    async with stack.client("spa", "ambulance-cad", idempotency_keys=False) as cad:
        return await cad.post(PROCESS, content=json.dumps(bundle), headers=bars.headers())


async def _clinical(stack: Stack, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    referral_id = bars.resource(answer.json(), "ServiceRequest")["id"]
    async with stack.client("spa", "ambulance-cad") as cad:
        read = await cad.get(f"/v1/referrals/{referral_id}")
    clinical: dict[str, Any] = _present(read.json()["clinical"])
    return clinical


def _present(value: Any) -> Any:
    """The value without its nulls (a read shows an absent field as null)."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value


def _warnings(answer: httpx.Response) -> list[str]:
    outcomes = [
        e["resource"]
        for e in answer.json()["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    return [
        path
        for outcome in outcomes
        for issue in outcome["issue"]
        if issue["code"] == "value"
        for path in issue["expression"]
    ]


async def test_a_crews_message_fills_the_clinical_payload(stack: Stack) -> None:
    answer = await _send(stack, _ambulance_message(stack))
    clinical = await _clinical(stack, answer)

    assert _warnings(answer) == []
    assert clinical["clinician"] == {
        "name": "Robin Quillfeather",
        "role": "Paramedic",
        "registration": {"regulator": "hcpc", "number": "PA123456"},
        "call_back": "+442079460321",
    }
    contact = clinical["patient_contact"]
    assert contact["phones"] == [{"number": "+441134960555", "use": "mobile"}]
    assert contact["address"]["lines"] == ["1 Fictional Row"]
    assert contact["communication"]["interpreter_language"] == "pl"
    assert clinical["incident_location"] == {
        "address": {"lines": ["Outside the Corn Exchange"], "postcode": "XW1 3ZZ"},
        "description": "Bus stop by the market",
    }
    assert clinical["summary"] == "Found on the floor by a neighbour; no head injury."
    assert clinical["observations"][0]["score"] == 5
    assert clinical["observations"][0]["kind"] == "news2"
    codes = [concept["code"] for concept in clinical["snomed_codes"]]
    assert codes == [bars.FALL, "86290005"]  # the reason, and the respiratory rate observed


async def test_a_value_that_cannot_be_taken_is_left_out_with_a_warning(stack: Stack) -> None:
    bundle = _ambulance_message(stack)
    bars.resource(bundle, "Practitioner")["telecom"][0]["value"] = "0205568263"  # one short
    bars.resource(bundle, "Patient")["telecom"][0]["value"] = "+33 1 23 45 67 89"
    _news2(bundle, 7, (stack.clock() + timedelta(hours=1)).isoformat())
    answer = await _send(stack, bundle)
    clinical = await _clinical(stack, answer)

    practitioner, patient = _index(bundle, "Practitioner"), _index(bundle, "Patient")
    future = len(bundle["entry"]) - 1
    assert sorted(_warnings(answer)) == sorted(
        [
            f"Bundle.entry[{practitioner}].resource.telecom[0]",
            f"Bundle.entry[{patient}].resource.telecom[0]",
            f"Bundle.entry[{future}].resource",
        ]
    )
    assert bars.resource(answer.json(), "MessageHeader")["response"]["code"] == "ok"
    assert "call_back" not in clinical["clinician"]
    assert clinical["clinician"]["name"] == "Robin Quillfeather"
    assert clinical["patient_contact"]["phones"] == []
    assert [o["score"] for o in clinical["observations"]] == [5]
    assert "0205568263" not in answer.text


async def test_the_incident_location_at_home_is_not_repeated(stack: Stack) -> None:
    bundle = bars.message()  # its Location is the home's postcode
    clinical = await _clinical(stack, await _send(stack, bundle))

    assert "incident_location" not in clinical
    assert clinical["patient_contact"]["phones"] == [{"number": "+442079460000"}]


async def test_what_the_published_example_carries_lands_and_its_bad_numbers_are_left_out(
    stack: Stack,
) -> None:
    published = _published()
    async with stack.client("spa", "ambulance-cad", idempotency_keys=False) as cad:
        answer = await cad.post(PROCESS, content=json.dumps(published), headers=bars.headers())
    clinical = await _clinical(stack, answer)

    # The requester is a Practitioner named directly; its role is a PractitionerRole naming it.
    assert clinical["clinician"] == {
        "name": "Marcy BLAKE",
        "role": "Administrative healthcare staff",
    }
    assert clinical["incident_location"] == {
        "address": {"lines": ["20 The Headrow"], "town": "Leeds", "postcode": "LS1 6PT"},
        "description": "Briggate corner",
    }
    assert clinical["patient_contact"]["address"]["postcode"] == "XW1 2ZZ"
    assert clinical["summary"].startswith("CONSULTATION SUMMARY")
    assert clinical["snomed_codes"] == [{"code": "271594007", "display": "Syncope (disorder)"}]
    assert clinical["observations"] == []  # its Observation is a finding, not a NEWS2
    # Its numbers are outside the UK numbering plan (one digit short; Ofcom's 01632 96xxxx is
    # for drama, never in service): left out, each named, and the referral taken in.
    entries = published["entry"]
    requester = next(
        i
        for i, e in enumerate(entries)
        if e["fullUrl"].endswith("7d948662-bade-450e-b6c5-9bb6ee39cb56")
    )
    assert sorted(_warnings(answer)) == sorted(
        [
            f"Bundle.entry[{requester}].resource.telecom[0]",
            f"Bundle.entry[{_index(published, 'Patient')}].resource.telecom[0]",
        ]
    )


async def test_an_update_replaces_the_clinical_payload(stack: Stack) -> None:
    first = _ambulance_message(stack)
    made = await _send(stack, first)
    update = bars.change_of(first, reason="update", status="active")
    bars.resource(update, "Practitioner")["telecom"][0]["value"] = "0113 496 0999"
    _news2(update, 7, stack.clock().isoformat())
    updated = await _send(stack, update)
    clinical = await _clinical(stack, made)

    assert updated.status_code == 200, updated.text
    assert _warnings(updated) == []
    assert clinical["clinician"]["call_back"] == "+441134960999"
    assert [o["score"] for o in clinical["observations"]] == [5, 7]
    referral_id = bars.resource(made.json(), "ServiceRequest")["id"]
    async with stack.client("spa", "ambulance-cad") as cad:
        events = (await cad.get(f"/v1/referrals/{referral_id}/timeline")).json()["events"]
    amended = [e["detail"]["fields"] for e in events if e["event_type"] == "amended"]
    assert amended == [["clinical"]]
