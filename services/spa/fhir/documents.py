"""What the FHIR door answers with: the response message, a referral as a ServiceRequest, the
CapabilityStatement and the MessageDefinition. Codes and ids only: a referral's patient
details are never repeated back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.shared.vocabulary import ReferralStatus as S
from services.spa.fhir.mapping import CodeMapping
from services.spa.fhir.messages import EVENT, Message
from services.spa.referrals.models import Referral

EVENTS_SYSTEM = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
REASONS_SYSTEM = "https://fhir.nhs.uk/CodeSystem/message-reason-bars"
RESPONSE_EVENT = "servicerequest-response"
CHANGE_TAGS = "urn:spa-platform:referral-event"
TEAM_SYSTEM = "urn:spa-platform:team-id"
# Codes of an event's detail a reply repeats as tags (codes only: never a note or a name).
_DETAIL_TAGS = ("queue_reason", "decline_reason", "reason", "outcome", "refusal")
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


NO_REPLIES = (
    "This client has registered no reply endpoint for MessageHeader.source.endpoint: the "
    "referral was taken in, but no reply will be sent of what happens to it."
)


LEFT_OUT = (
    "This element's value is not valid (e.g. a telephone number outside the UK numbering "
    "plan): it was left out of the referral's clinical details, and the referral taken in."
)


def response_message(
    message: Message,
    referral: Referral,
    *,
    answers: str,
    endpoint: str,
    now: datetime,
    replies: bool = True,
    left_out: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The synchronous answer to a message: a message Bundle whose MessageHeader responds
    ``ok`` to the one received (``answers`` its id), with the referral as it now stands; and
    an OperationOutcome of warnings when no replies will follow, or when elements of the
    clinical payload were left out as invalid (``left_out``, their FHIRPaths)."""
    received = message.header
    version = message.bundle.meta.versionId if message.bundle.meta is not None else None
    request_full_url = f"urn:uuid:{referral.id}"
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": str(uuid.uuid4()),
        "eventCoding": {"system": EVENTS_SYSTEM, "code": EVENT},
        "destination": [{"endpoint": received.source.endpoint}],
        "source": {"endpoint": endpoint, "software": "SPA platform"},
        "response": {"identifier": answers, "code": "ok"},
        "focus": [{"reference": request_full_url}],
    }
    entries = [
        {"fullUrl": f"urn:uuid:{header['id']}", "resource": header},
        {"fullUrl": request_full_url, "resource": service_request(referral)},
    ]
    issues = [*([] if replies else [_no_replies()]), *(_left_out(path) for path in left_out)]
    if issues:
        outcome_url = f"urn:uuid:{uuid.uuid4()}"
        header["response"]["details"] = {"reference": outcome_url}
        outcome = {"resourceType": "OperationOutcome", "issue": issues}
        entries.append({"fullUrl": outcome_url, "resource": outcome})
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now.isoformat(), "versionId": version},
        "type": "message",
        "timestamp": now.isoformat(),
        "entry": entries,
    }


def _no_replies() -> dict[str, Any]:
    return {
        "severity": "warning",
        "code": "informational",
        "diagnostics": NO_REPLIES,
        "expression": ["Bundle.entry[0].resource.source.endpoint"],
    }


def _left_out(path: str) -> dict[str, Any]:
    return {
        "severity": "warning",
        "code": "value",
        "diagnostics": LEFT_OUT,
        "expression": [path],
    }


@dataclass(frozen=True)
class Reply:
    """What a reply says of itself: its id (stable: the sender deduplicates by it), the id of
    the message it answers, the BaRS version, where it goes and who sends it, and when."""

    id: uuid.UUID
    answers: str
    version: str
    destination: str
    source: str
    at: datetime


def reply_message(
    referral: Referral, *, change: str, status: str, detail: dict[str, Any], reply: Reply
) -> dict[str, Any]:
    """A BaRS response message telling the sender of one change to its referral: the
    MessageHeader responds to its message, and the focus is the ServiceRequest with the status
    it moved to, tagged with the change and its codes (a team's planned first contact as the
    ServiceRequest's occurrence). Codes and ids only, as everywhere on this door."""
    request_full_url = f"urn:uuid:{referral.id}"
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": str(reply.id),
        "eventCoding": {"system": EVENTS_SYSTEM, "code": RESPONSE_EVENT},
        "destination": [{"endpoint": reply.destination}],
        "source": {"endpoint": reply.source, "software": "SPA platform"},
        "reason": {"coding": [{"system": REASONS_SYSTEM, "code": "update"}]},
        "response": {"identifier": reply.answers, "code": "ok"},
        "focus": [{"reference": request_full_url}],
    }
    return {
        "resourceType": "Bundle",
        "id": str(reply.id),
        "meta": {"lastUpdated": reply.at.isoformat(), "versionId": reply.version or None},
        "type": "message",
        "timestamp": reply.at.isoformat(),
        "entry": [
            {"fullUrl": f"urn:uuid:{reply.id}", "resource": header},
            {"fullUrl": request_full_url, "resource": _changed(referral, change, status, detail)},
        ],
    }


def _changed(
    referral: Referral, change: str, status: str, detail: dict[str, Any]
) -> dict[str, Any]:
    found = service_request(referral)
    found["status"] = _status(status)
    tags = [{"system": STATUS_TAGS, "code": status}, {"system": CHANGE_TAGS, "code": change}]
    if referral.pathway:
        tags.append({"system": PATHWAY_TAGS, "code": referral.pathway})
    tags += [
        {"system": f"urn:spa-platform:{name}", "code": str(detail[name])}
        for name in _DETAIL_TAGS
        if isinstance(detail.get(name), str)
    ]
    topics = detail.get("topics")
    if isinstance(topics, list):
        tags += [{"system": "urn:spa-platform:advice-topic", "code": str(t)} for t in topics]
    found["meta"] = {"lastUpdated": found["meta"]["lastUpdated"], "tag": tags}
    if isinstance(detail.get("planned_first_contact_at"), str):
        found["occurrenceDateTime"] = detail["planned_first_contact_at"]
    if isinstance(detail.get("team_id"), str):
        found["performer"] = [{"identifier": {"system": TEAM_SYSTEM, "value": detail["team_id"]}}]
    return found


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
