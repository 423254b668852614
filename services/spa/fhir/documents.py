"""What the FHIR door answers with: the response message, a referral as a ServiceRequest, the
CapabilityStatement and the MessageDefinition. Codes and ids only: a referral's patient
details are never repeated back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.shared.vocabulary import ReferralStatus as S
from services.spa.fhir.mapping import CodeMapping
from services.spa.fhir.messages import EVENT, Message
from services.spa.referrals.models import Referral

EVENTS_SYSTEM = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
STATUS_TAGS = "urn:spa-platform:referral-status"
PATHWAY_TAGS = "urn:spa-platform:pathway"
MESSAGE_DEFINITION_URL = "urn:spa-platform:fhir:MessageDefinition:servicerequest-request-referral"
# When what this receiver takes last changed (the documents' date).
DOCUMENTS_DATE = "2026-12-02"
FHIR_VERSION = "4.0.1"

_FINISHED = {S.CLOSED, S.RESOLVED_WITH_ADVICE, S.REDIRECTED_EMERGENCY}

# The resources a referral message may carry, as MessageDefinition.focus says them.
FOCUS: list[tuple[str, int, str]] = [
    ("MessageHeader", 1, "1"),
    ("ServiceRequest", 1, "1"),
    ("Patient", 1, "1"),
    ("Encounter", 0, "1"),
    ("CarePlan", 0, "*"),
    ("Flag", 0, "*"),
    ("Consent", 0, "*"),
    ("Organization", 0, "*"),
    ("Practitioner", 0, "*"),
    ("PractitionerRole", 0, "*"),
    ("Location", 0, "*"),
    ("Observation", 0, "*"),
    ("QuestionnaireResponse", 0, "*"),
]


def service_request(referral: Referral) -> dict[str, Any]:
    """The referral's current status as a ServiceRequest, tagged with our status and pathway."""
    tags = [{"system": STATUS_TAGS, "code": referral.status}]
    if referral.pathway:
        tags.append({"system": PATHWAY_TAGS, "code": referral.pathway})
    found: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(referral.id),
        "meta": {"lastUpdated": referral.updated_at.isoformat(), "tag": tags},
        "identifier": [{"system": "urn:spa-platform:referral", "value": str(referral.id)}],
        "status": _status(referral.status),
        "intent": "order",
        "subject": {"display": "The patient of the referral"},
        "authoredOn": referral.received_at.isoformat(),
    }
    if referral.referrer_reference:
        found["identifier"].append(
            {"system": "urn:spa-platform:referrer-reference", "value": referral.referrer_reference}
        )
    return found


def _status(status: str) -> str:
    if status == S.CANCELLED:
        return "revoked"
    return "completed" if status in _FINISHED else "active"


def response_message(
    message: Message, referral: Referral, *, request_id: str, endpoint: str, now: datetime
) -> dict[str, Any]:
    """The synchronous answer to a message: a message Bundle whose MessageHeader responds
    ``ok`` to the one received, with the referral as it now stands."""
    received = message.header
    version = message.bundle.meta.versionId if message.bundle.meta is not None else None
    request_full_url = f"urn:uuid:{referral.id}"
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": str(uuid.uuid4()),
        "eventCoding": {"system": EVENTS_SYSTEM, "code": EVENT},
        "destination": [{"endpoint": received.source.endpoint}],
        "source": {"endpoint": endpoint, "software": "SPA platform"},
        "response": {"identifier": received.id or message.bundle.id or request_id, "code": "ok"},
        "focus": [{"reference": request_full_url}],
    }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now.isoformat(), "versionId": version},
        "type": "message",
        "timestamp": now.isoformat(),
        "entry": [
            {"fullUrl": f"urn:uuid:{header['id']}", "resource": header},
            {"fullUrl": request_full_url, "resource": service_request(referral)},
        ],
    }


def capability_statement(versions: tuple[str, ...]) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "id": "spa-bars-receiver",
        "status": "active",
        "date": DOCUMENTS_DATE,
        "publisher": "SPA platform",
        "kind": "instance",
        "description": "A BaRS receiver of referrals (servicerequest-request, new, update and "
        f"cancel) of BaRS major version {', '.join(versions)}.",
        "software": {"name": "SPA platform"},
        "implementation": {"description": "Single Point of Access: BaRS referral receiver"},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer tokens of the OAuth2 client-credentials grant; "
                    "process-message needs referrals:create, ServiceRequest read referrals:read.",
                },
                "resource": [
                    {"type": "ServiceRequest", "interaction": [{"code": "read"}]},
                    {"type": "MessageDefinition", "interaction": [{"code": "search-type"}]},
                ],
                "operation": [
                    {
                        "name": "process-message",
                        "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                    }
                ],
            }
        ],
        "messaging": [
            {"supportedMessage": [{"mode": "receiver", "definition": MESSAGE_DEFINITION_URL}]}
        ],
    }


def message_definitions(mapping: CodeMapping) -> dict[str, Any]:
    """The searchset of this receiver's one MessageDefinition."""
    use_cases = [{"system": system, "code": code} for system, code in sorted(mapping.use_cases)]
    definition = {
        "resourceType": "MessageDefinition",
        "id": "servicerequest-request-referral",
        "url": MESSAGE_DEFINITION_URL,
        "name": "SpaReferralRequest",
        "title": "Referral to the Single Point of Access",
        "status": "active",
        "date": DOCUMENTS_DATE,
        "eventCoding": {"system": EVENTS_SYSTEM, "code": EVENT},
        "category": "consequence",
        "useContext": [
            {
                "code": {
                    "system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                    "code": "focus",
                },
                "valueCodeableConcept": {"coding": use_cases},
            }
        ],
        "focus": [{"code": code, "min": low, "max": high} for code, low, high in FOCUS],
        "responseRequired": "always",
    }
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": definition}],
    }
