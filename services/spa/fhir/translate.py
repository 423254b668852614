"""A BaRS referral message in this service's intake model (``ReferralCreate``), so that it is
taken in exactly as a ``POST /v1/referrals`` is: the same validation, channel binding,
idempotency, outbox, audit and safeguarding. What the model refuses is told back by FHIRPath.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from services.shared.auth import Principal
from services.shared.vocabulary import Channel, Urgency
from services.spa.fhir.clinical import clinical_in
from services.spa.fhir.mapping import CodeMapping
from services.spa.fhir.messages import Message
from services.spa.fhir.problems import MessageUnprocessable
from services.spa.referrals.schemas import ReferralCreate

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
VERIFICATION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
DX_CODES = "https://fhir.nhs.uk/CodeSystem/pathways-dx-codes"
SYMPTOM_CODES = (
    "https://fhir.nhs.uk/CodeSystem/pathways-sg-codes",
    "https://fhir.nhs.uk/CodeSystem/pathways-sd-codes",
)
AMBULANCE_CATEGORIES = "https://fhir.nhs.uk/CodeSystem/arp-priority-code"
FLAG_CATEGORIES = "https://fhir.nhs.uk/CodeSystem/flag-categories-bars"
SAFEGUARDING = "SG"
DOS_SERVICE = "dos-service-id|"

# UK Core NHS number verification status: the code and its number in the data dictionary.
VERIFICATION_CODES = {
    "number-present-and-verified": "01",
    "number-present-but-not-traced": "02",
    "trace-required": "03",
    "trace-attempted-no-match-or-multiple-match-found": "04",
    "trace-needs-to-be-resolved": "05",
    "trace-in-progress": "06",
    "number-not-present-and-trace-not-required": "07",
    "trace-postponed": "08",
}

# Channels a BaRS sender posts on: NHS 111 and the ambulance service.
BARS_CHANNELS = (Channel.NHS111, Channel.AMBULANCE)


def referral_create(
    message: Message,
    principal: Principal,
    mapping: CodeMapping,
    *,
    now: datetime,
    left_out: list[str] | None = None,
) -> ReferralCreate:
    """The message as a referral; the FHIRPaths of clinical elements left out as invalid are
    added to ``left_out``."""
    patient = _patient(message)
    channel = _channel(principal)
    needs, red_flags, unmapped = _codes(message, mapping)
    body: dict[str, Any] = {
        "channel": channel,
        "urgency": _urgency(message, mapping),
        "patient": _patient_in(message, patient),
        "needs": needs,
        "red_flags": red_flags,
        "unmapped_codes": unmapped,
        "safeguarding": {"concern": _safeguarding_concern(message)},
        "consent": {"basis": _consent_basis(message, mapping)},
        "reason": _notes(message),
        "referrer": _referrer(message),
    }
    if channel == Channel.NHS111:
        body["nhs111"] = _nhs111(message)
    payload = clinical_in(message, patient, now, left_out if left_out is not None else [])
    if payload is not None:
        body["clinical"] = payload.model_dump()
    try:
        return ReferralCreate.model_validate(body)
    except ValidationError as exc:
        found = [(tuple(error.get("loc", ())), str(error.get("msg", ""))) for error in exc.errors()]
        raise unprocessable(message, found) from exc


def referrer_reference(message: Message) -> str | None:
    """How the sender names its referral: the ServiceRequest's identifier, else its id."""
    identifiers = message.service_request.identifier or []
    for identifier in identifiers:
        if identifier.value:
            return identifier.value
    return message.service_request.id


def _patient(message: Message) -> Patient:
    found = message.resolve(message.service_request.subject, Patient)
    if found is None:
        raise MessageUnprocessable(
            "ServiceRequest.subject must name the message's Patient.",
            expression=[message.path(message.service_request, "subject")],
            issue_code="required",
        )
    return found


def _channel(principal: Principal) -> str:
    """The one BaRS channel the client is registered for: which service it is, is its binding."""
    mine = [channel for channel in BARS_CHANNELS if channel in principal.channels]
    if len(mine) != 1:
        raise MessageUnprocessable(
            "A BaRS sender is registered for exactly one of the channels nhs111 and ambulance; "
            f"this client is registered for {len(mine)}.",
            issue_code="business-rule",
        )
    return mine[0].value


def _codes(
    message: Message, mapping: CodeMapping
) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Needs and red flags from ServiceRequest.reasonCode and the NHS Pathways symptom codes of
    a CarePlan (where a 999 or 111 assessment puts them); a concept none of whose codings is
    mapped is kept whole as unmapped codes."""
    needs: list[str] = []
    red_flags: list[str] = []
    unmapped: list[dict[str, str]] = []
    reviewed: list[dict[str, str]] = []
    for concept in [*(message.service_request.reasonCode or []), *_symptoms(message)]:
        keys = [(c.system or "", c.code or "") for c in concept.coding or [] if c.code]
        mapped = False
        for key in keys:
            if key in mapping.needs:
                needs.append(mapping.needs[key].value)
                mapped = True
            elif key in mapping.red_flags:
                red_flags.append(mapping.red_flags[key].value)
                mapped = True
        found = [{"system": system, "code": code} for system, code in keys]
        if mapped:
            continue
        if keys and all(key in mapping.adds_nothing for key in keys):
            reviewed.extend(found)
        else:
            unmapped.extend(found)
    if reviewed and not needs and not red_flags:
        # Codes that add nothing of their own, and nothing else to triage on: a handler reads
        # them, rather than the rules routing a case on no need at all.
        unmapped = [*unmapped, *reviewed]
    return needs, red_flags, unmapped


def _symptoms(message: Message) -> list[CodeableConcept]:
    """A CarePlan's outcome concepts that hold a Pathways symptom group or discriminator; its
    disposition (the Dx code) is the 111 details', not a need."""
    return [
        concept
        for plan in message.all_of(CarePlan)
        for activity in plan.activity or []
        for concept in activity.outcomeCodeableConcept or []
        if any(coding.system in SYMPTOM_CODES for coding in concept.coding or [])
    ]


URGENCY_ORDER = (Urgency.CRISIS, Urgency.URGENT, Urgency.ROUTINE)


def _urgency(message: Message, mapping: CodeMapping) -> str:
    """The most urgent of ServiceRequest.priority and the ambulance response categories its
    CarePlans carry; a message without either (a validation request has no priority) must have
    a category. A category this service does not take (1 and 2: never the community's) is
    refused, whatever the priority says."""
    found: list[Urgency] = []
    for plan, category in _ambulance_categories(message):
        urgency = mapping.ambulance_categories.get(category)
        if urgency is None:
            raise MessageUnprocessable(
                f"The ambulance response category {category} is not one this service takes ("
                + ", ".join(sorted(mapping.ambulance_categories))
                + ").",
                expression=[message.path(plan, "activity")],
                issue_code="business-rule",
            )
        found.append(urgency)
    priority = message.service_request.priority
    if priority is not None or not found:
        urgency = mapping.priorities.get(priority or "")
        if urgency is None:
            expected = "ServiceRequest.priority must be one of " + ", ".join(
                sorted(mapping.priorities)
            )
            if mapping.ambulance_categories:
                expected += ", or be absent with a CarePlan ambulance response category of " + (
                    ", ".join(sorted(mapping.ambulance_categories))
                )
            raise MessageUnprocessable(
                expected + ".",
                expression=[message.path(message.service_request, "priority")],
                issue_code="required" if priority is None else "code-invalid",
            )
        found.append(urgency)
    return min(found, key=URGENCY_ORDER.index).value


def _ambulance_categories(message: Message) -> list[tuple[CarePlan, str]]:
    return [
        (plan, coding.code)
        for plan in message.all_of(CarePlan)
        for activity in plan.activity or []
        for concept in activity.outcomeCodeableConcept or []
        for coding in concept.coding or []
        if coding.system == AMBULANCE_CATEGORIES and coding.code
    ]


def _patient_in(message: Message, patient: Patient) -> dict[str, Any]:
    found: dict[str, Any] = {"date_of_birth": patient.birthDate}
    for identifier in patient.identifier or []:
        if identifier.system == NHS_NUMBER and identifier.value:
            found["nhs_number"] = identifier.value
            found["nhs_number_verification"] = _verification(identifier.extension or [])
    names = patient.name or []
    name = next((n for n in names if n.use == "official"), names[0] if names else None)
    if name is not None:
        found["family_name"] = name.family
        found["given_name"] = (name.given or [None])[0]
    addresses = patient.address or []
    home = next((a for a in addresses if a.use == "home"), addresses[0] if addresses else None)
    if home is not None and home.postalCode:
        found["postcode"] = home.postalCode
    for reference in patient.generalPractitioner or []:
        found["registered_practice"] = _ods_code(message, reference)
    return {key: value for key, value in found.items() if value is not None}


def _verification(extensions: list[Any]) -> str | None:
    for extension in extensions:
        if extension.url != VERIFICATION or extension.valueCodeableConcept is None:
            continue
        for coding in extension.valueCodeableConcept.coding or []:
            code = coding.code or ""
            return VERIFICATION_CODES.get(code, code)
    return None


def _ods_code(message: Message, reference: Reference) -> str | None:
    """The ODS code of an organisation named by reference, or by identifier alone."""
    identifiers = [reference.identifier] if reference.identifier is not None else []
    organisation = message.resolve(reference, Organization)
    if organisation is not None:
        identifiers += organisation.identifier or []
    for identifier in identifiers:
        if identifier.system == ODS_CODE and identifier.value:
            return identifier.value
    return None


def _safeguarding_concern(message: Message) -> bool:
    return any(
        flag.status == "active" and _has_code(flag.category or [], FLAG_CATEGORIES, SAFEGUARDING)
        for flag in message.all_of(Flag)
    )


def _has_code(concepts: list[CodeableConcept], system: str, code: str) -> bool:
    return any(c.system == system and c.code == code for k in concepts for c in k.coding or [])


def _consent_basis(message: Message, mapping: CodeMapping) -> str:
    consents = message.all_of(Consent)
    if not consents:
        return "direct_care_implied"
    for consent in consents:
        for rule in [consent.policyRule] if consent.policyRule is not None else []:
            for coding in rule.coding or []:
                basis = mapping.consent.get((coding.system or "", coding.code or ""))
                if basis is not None:
                    return basis
    raise MessageUnprocessable(
        "Consent.policyRule names no consent basis this receiver knows.",
        expression=[message.path(consents[0], "policyRule")],
        issue_code="code-invalid",
    )


def _notes(message: Message) -> str | None:
    texts = [note.text for note in message.service_request.note or [] if note.text]
    return "\n".join(texts)[:4000] or None


def _referrer(message: Message) -> dict[str, Any]:
    found: dict[str, Any] = {"reference": referrer_reference(message)}
    requester = message.service_request.requester
    role = message.resolve(requester, PractitionerRole)
    organisation_ref = role.organization if role is not None else requester
    if organisation_ref is not None:
        found["organisation"] = _ods_code(message, organisation_ref)
    return {key: value for key, value in found.items() if value is not None}


def _nhs111(message: Message) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for plan in message.all_of(CarePlan):
        for activity in plan.activity or []:
            for concept in activity.outcomeCodeableConcept or []:
                for coding in concept.coding or []:
                    if coding.system == DX_CODES and coding.code:
                        found["dx_code"] = coding.code
    for destination in message.header.destination or []:
        endpoint = str(destination.endpoint or "")
        if DOS_SERVICE in endpoint:
            found["dos_service_id"] = endpoint.rsplit("|", 1)[-1]
    encounter = message.resolve(message.service_request.encounter, Encounter)
    for identifier in (encounter.identifier or []) if encounter is not None else []:
        if identifier.value:
            found["case_reference"] = identifier.value
            break
    return found


# Where each field of the intake model came from in the message, for the refusals.
def _source_path(message: Message, patient: Patient, location: tuple[Any, ...]) -> str | None:
    service_request = message.service_request
    top = str(location[0]) if location else ""
    patient_fields = {
        "nhs_number": "identifier",
        "nhs_number_verification": "identifier.extension",
        "given_name": "name",
        "family_name": "name",
        "date_of_birth": "birthDate",
        "postcode": "address",
        "registered_practice": "generalPractitioner",
    }
    if top == "patient" and len(location) > 1:
        return message.path(patient, patient_fields.get(str(location[1]), ""))
    request_fields = {
        "urgency": "priority",
        "needs": "reasonCode",
        "red_flags": "reasonCode",
        "unmapped_codes": "reasonCode",
        "reason": "note",
        "referrer": "identifier",
        "nhs111": "encounter",
    }
    if top in request_fields:
        return message.path(service_request, request_fields[top])
    return None


def unprocessable(
    message: Message, errors: list[tuple[tuple[Any, ...], str]]
) -> MessageUnprocessable:
    """The intake model's refusal (each error's location in the model and its reason, which
    never holds the value) told by where each field came from in the message."""
    patient = _patient(message)
    reasons = "; ".join(reason.removeprefix("Value error, ") for _, reason in errors)
    paths = [_source_path(message, patient, location) for location, _ in errors]
    return MessageUnprocessable(
        f"The message cannot be taken as a referral: {reasons}.",
        expression=sorted({path.rstrip(".") for path in paths if path}),
    )
