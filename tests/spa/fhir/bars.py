"""Synthetic BaRS messages (fictional people, valid NHS numbers) and the headers they go with."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from tests import factories

SNOMED = "http://snomed.info/sct"
FALL, DELIRIUM, CHEST_PAIN = "1912002", "2776000", "29857009"
# A concept the county's mapping does not hold (Excessive thirst): it must reach a handler.
UNMAPPED = "17173007"
TARGET = base64.b64encode(json.dumps({"value": "spa-platform", "system": "tests"}).encode())


def headers(**overrides: str | None) -> dict[str, str]:
    found: dict[str, str | None] = {
        "X-Request-Id": str(uuid.uuid4()),
        "X-Correlation-Id": str(uuid.uuid4()),
        "NHSD-Target-Identifier": TARGET.decode(),
        "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json",
        **overrides,
    }
    return {name: value for name, value in found.items() if value is not None}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource}


def message(
    *,
    reason: str = "new",
    status: str = "active",
    codes: list[str] | None = None,
    priority: str | None = "urgent",
    safeguarding: bool = False,
    version: str | None = "1.2.0",
    use_case: str = "referral",
    event: str = "servicerequest-request",
    nhs_number: str | None = None,
    reference: str | None = None,
    service_request_id: str | None = None,
    given_name: str = "Ada",
) -> dict[str, Any]:
    """A referral of a fictional woman of 85 who fell at home, as NHS 111 or 999 would send it."""
    practice = _entry(
        {
            "resourceType": "Organization",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "M91001"}
            ],
            "name": "Millbrook Surgery",
        }
    )
    patient = _entry(
        {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": "https://fhir.nhs.uk/Id/nhs-number",
                    "value": nhs_number or factories.nhs_number(),
                    "extension": [
                        {
                            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                            "valueCodeableConcept": {
                                "coding": [
                                    {
                                        "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus",
                                        "code": "number-present-and-verified",
                                    }
                                ]
                            },
                        }
                    ],
                }
            ],
            "name": [{"use": "official", "family": "Testperson", "given": [given_name]}],
            "birthDate": "1941-03-14",
            "address": [{"use": "home", "line": ["1 Fictional Row"], "postalCode": "XW1 2ZZ"}],
            "telecom": [{"system": "phone", "value": "020 7946 0000"}],
            "generalPractitioner": [{"reference": practice["fullUrl"]}],
        }
    )
    referrer_org = _entry(
        {
            "resourceType": "Organization",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "X99AA"}
            ],
            "name": "Wealdmoor 111",
        }
    )
    practitioner = _entry({"resourceType": "Practitioner", "name": [{"family": "Clinician"}]})
    role = _entry(
        {
            "resourceType": "PractitionerRole",
            "practitioner": {"reference": practitioner["fullUrl"]},
            "organization": {"reference": referrer_org["fullUrl"]},
        }
    )
    encounter = _entry(
        {
            "resourceType": "Encounter",
            "identifier": [
                {"system": "https://sender.test/case", "value": f"case-{uuid.uuid4().hex[:12]}"}
            ],
            "status": "triaged",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
            "subject": {"reference": patient["fullUrl"]},
        }
    )
    location = _entry(
        {
            "resourceType": "Location",
            "name": "Incident address",
            "address": {"postalCode": "XW1 2ZZ"},
        }
    )
    reason_codes = [
        {"coding": [{"system": SNOMED, "code": code}]}
        for code in (codes if codes is not None else [FALL])
    ]
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [
            {
                "system": "https://sender.test/referral",
                "value": reference or f"ref-{uuid.uuid4().hex[:12]}",
            }
        ],
        "status": status,
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "https://fhir.nhs.uk/CodeSystem/message-category-servicerequest",
                        "code": use_case,
                    }
                ]
            }
        ],
        "reasonCode": reason_codes,
        "subject": {"reference": patient["fullUrl"]},
        "encounter": {"reference": encounter["fullUrl"]},
        "requester": {"reference": role["fullUrl"]},
        "locationReference": [{"reference": location["fullUrl"]}],
        "note": [{"text": "Fictional test referral."}],
    }
    if priority is not None:
        request["priority"] = priority
    if service_request_id is not None:
        request["id"] = service_request_id
    service_request = _entry(request)
    care_plan = _entry(
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": patient["fullUrl"]},
            "activity": [
                {
                    "outcomeCodeableConcept": [
                        {
                            "coding": [
                                {
                                    "system": "https://fhir.nhs.uk/CodeSystem/pathways-dx-codes",
                                    "code": "Dx0122",
                                }
                            ]
                        }
                    ]
                }
            ],
        }
    )
    consent = _entry(
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "https://fhir.nhs.uk/CodeSystem/consent-categories-bars",
                            "code": "DRC",
                        }
                    ]
                }
            ],
            "patient": {"reference": patient["fullUrl"]},
            "policyRule": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IMPLIED",
                    }
                ]
            },
        }
    )
    observation = _entry(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": SNOMED, "code": "86290005"}]},
            "subject": {"reference": patient["fullUrl"]},
            "valueQuantity": {"value": 18, "unit": "/min"},
        }
    )
    questionnaire = _entry(
        {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": {"reference": patient["fullUrl"]},
        }
    )
    header = _entry(
        {
            "resourceType": "MessageHeader",
            "id": str(uuid.uuid4()),
            "eventCoding": {
                "system": "https://fhir.nhs.uk/CodeSystem/message-events-bars",
                "code": event,
            },
            "destination": [{"endpoint": "https://fhir.nhs.uk/Id/dos-service-id|2000012345"}],
            "source": {"endpoint": "https://sender.test/FHIR/R4", "name": "Wealdmoor 111"},
            "reason": {
                "coding": [
                    {"system": "https://fhir.nhs.uk/CodeSystem/message-reason-bars", "code": reason}
                ]
            },
            "focus": [{"reference": service_request["fullUrl"]}],
        }
    )
    entries = [header, service_request, patient, practice, encounter, care_plan, consent]
    entries += [referrer_org, practitioner, role, location, observation, questionnaire]
    if safeguarding:
        flag = {
            "resourceType": "Flag",
            "status": "active",
            "category": [
                {
                    "coding": [
                        {
                            "system": "https://fhir.nhs.uk/CodeSystem/flag-categories-bars",
                            "code": "SG",
                        }
                    ]
                }
            ],
            "code": {"text": "Safeguarding concern"},
            "subject": {"reference": patient["fullUrl"]},
        }
        entries.append(_entry(flag))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": "2026-11-24T10:00:00+00:00"},
        "type": "message",
        "timestamp": "2026-11-24T10:00:00+00:00",
        "entry": entries,
    }
    if version is not None:
        bundle["meta"]["versionId"] = version
    return bundle


def change_of(
    first: dict[str, Any], *, reason: str, status: str, referral_id: str | None = None
) -> dict[str, Any]:
    """An update or cancellation of the referral ``first`` made: the same ServiceRequest
    identifier (or our id, when given), new MessageHeader reason and status."""
    bundle: dict[str, Any] = json.loads(json.dumps(first))
    bundle["id"] = str(uuid.uuid4())
    header = bundle["entry"][0]["resource"]
    header["id"] = str(uuid.uuid4())
    header["reason"]["coding"][0]["code"] = reason
    request = bundle["entry"][1]["resource"]
    request["status"] = status
    if referral_id is not None:
        request["id"] = referral_id
    return bundle


def resource(answer: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == kind
    )
    return found


def tag(service_request: dict[str, Any], system: str) -> str | None:
    return next((t["code"] for t in service_request["meta"]["tag"] if t["system"] == system), None)


def bars_codes(outcome: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["details"]["coding"][0]["code"], i["code"]) for i in outcome["issue"]]
