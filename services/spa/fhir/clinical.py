"""The clinical payload of a BaRS message (``ClinicalIn``): the requesting Practitioner (and
its PractitionerRole), the Patient's telecom, address and communication, the ServiceRequest's
Location where it is not the home (an ambulance's scene), the CarePlan's consultation summary,
SNOMED CT codes and NEWS2 Observations.

Every part is optional, so a value this service cannot take (a telephone number outside the
UK numbering plan, a NEWS2 taken in the future) is left out with a warning naming its element,
and the referral is taken in all the same: the care a person needs is never refused over a
call-back number. Nothing of the values is logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import structlog
from fhir.resources.R4B.address import Address
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel, ValidationError

from services.spa.fhir.messages import Message
from services.spa.referrals.clinical_schemas import (
    CLOCK_SKEW,
    SUMMARY_MAX,
    AddressIn,
    ClinicalIn,
    ClinicianIn,
    CommunicationIn,
    IncidentLocationIn,
    News2In,
    PatientContactIn,
    PhoneIn,
    RegistrationIn,
    SnomedConcept,
    same_place,
)

log = structlog.get_logger(__name__)

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NEWS2_CODES = {(SNOMED, "1104051000000101"), (LOINC, "88330-6")}
REGISTERS = {
    "https://fhir.hl7.org.uk/Id/gmc-number": "gmc",
    "https://fhir.hl7.org.uk/Id/nmc-number": "nmc",
    "https://fhir.hl7.org.uk/Id/hcpc-number": "hcpc",
    "https://fhir.hl7.org.uk/Id/gphc-number": "gphc",
}
_PHONE_USES = {"home": "home", "mobile": "mobile", "work": "work"}
BSL = ("bfi", "sgn-gb")

M = TypeVar("M", bound=BaseModel)


@dataclass
class _Reading:
    """The message being read, and the elements left out so far (their FHIRPaths)."""

    message: Message
    now: datetime
    left_out: list[str] = field(default_factory=list)

    def valid(self, model: type[M], data: dict[str, Any], where: str) -> M | None:
        """The part if it is valid; else None, and its element is noted as left out."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.left_out.append(where)
            kinds = sorted({str(error.get("type", "")) for error in exc.errors()})
            log.warning("bars_clinical_element_left_out", element=where, error_types=kinds)
            return None


def clinical_in(
    message: Message, patient: Patient, now: datetime, left_out: list[str]
) -> ClinicalIn | None:
    """The payload the message carries, or None when it carries none; what had to be left out
    is added to ``left_out``."""
    reading = _Reading(message, now)
    found: dict[str, Any] = {
        "clinician": _clinician(reading),
        "patient_contact": _patient_contact(reading, patient),
        "summary": _summary(message),
        "snomed_codes": _snomed_codes(reading),
        "observations": _observations(reading),
    }
    home = found["patient_contact"].address if found["patient_contact"] else None
    found["incident_location"] = _incident_location(reading, home)
    present = {key: value for key, value in found.items() if value}
    # Each part is valid alone, and the incident is not at home: together they are too, so the
    # whole is left out only if this reading and the model ever disagree.
    where = message.path(message.service_request)
    payload = reading.valid(ClinicalIn, present, where) if present else None
    left_out += reading.left_out
    return payload


def _name(names: list[HumanName]) -> str | None:
    for name in names:
        parts = [*(name.given or []), name.family]
        text = name.text or " ".join(part for part in parts if part)
        if text:
            return text[:100]
    return None


def _requester(message: Message) -> tuple[Practitioner | None, list[PractitionerRole]]:
    """The requesting practitioner (named directly, or through its role), and its roles."""
    requester = message.service_request.requester
    role = message.resolve(requester, PractitionerRole)
    practitioner = message.resolve(role.practitioner if role else requester, Practitioner)
    if practitioner is None:
        return None, [role] if role is not None else []
    names = {e.fullUrl for e in message.bundle.entry or [] if e.resource is practitioner}
    names.add(f"Practitioner/{practitioner.id}" if practitioner.id else None)
    roles = [
        other
        for other in message.all_of(PractitionerRole)
        if other is role or (other.practitioner and other.practitioner.reference in names)
    ]
    return practitioner, roles


def _clinician(reading: _Reading) -> ClinicianIn | None:
    practitioner, roles = _requester(reading.message)
    name = _name(practitioner.name or []) if practitioner is not None else None
    if practitioner is None or name is None:
        return None
    found: dict[str, Any] = {"name": name}
    role = next((t for r in roles for concept in r.code or [] if (t := _text(concept))), None)
    if role is not None:
        found["role"] = role
    registration = _registration(reading, practitioner)
    if registration is not None:
        found["registration"] = registration.model_dump()
    phones = [phone for owner in (practitioner, *roles) for phone in _phones(owner)]
    # A work number first: it is the one a clinician is called back on.
    for owner, index in sorted(phones, key=lambda p: _telecom(p[0])[p[1]].use != "work"):
        number = _number(reading, owner, index)
        if number is not None:
            found["call_back"] = number.number
            break
    return reading.valid(ClinicianIn, found, reading.message.path(practitioner, "name"))


def _text(concept: Any) -> str | None:
    text = concept.text or next((c.display for c in concept.coding or [] if c.display), None)
    return str(text)[:100] if text else None


def _registration(reading: _Reading, practitioner: Practitioner) -> RegistrationIn | None:
    for index, identifier in enumerate(practitioner.identifier or []):
        regulator = REGISTERS.get(identifier.system or "")
        if regulator is None or not identifier.value:
            continue
        data = {"regulator": regulator, "number": identifier.value}
        where = reading.message.path(practitioner, f"identifier[{index}]")
        return reading.valid(RegistrationIn, data, where)
    return None


def _telecom(owner: Resource) -> list[ContactPoint]:
    points: list[ContactPoint] = getattr(owner, "telecom", None) or []
    return points


def _phones(owner: Resource) -> list[tuple[Resource, int]]:
    """The resource's telephone contact points, by their index in its telecom."""
    return [
        (owner, index)
        for index, point in enumerate(_telecom(owner))
        if point.system == "phone" and point.value
    ]


def _number(reading: _Reading, owner: Resource, index: int) -> PhoneIn | None:
    point = _telecom(owner)[index]
    data: dict[str, Any] = {"number": point.value}
    if point.use in _PHONE_USES:
        data["use"] = _PHONE_USES[point.use]
    where = reading.message.path(owner, f"telecom[{index}]")
    return reading.valid(PhoneIn, data, where)


def _address(reading: _Reading, address: Address, where: str) -> AddressIn | None:
    data: dict[str, Any] = {"lines": [line for line in address.line or [] if line][:4]}
    if address.city:
        data["town"] = address.city
    if address.postalCode:
        data["postcode"] = address.postalCode
    if not data["lines"] and "postcode" not in data:
        return None
    return reading.valid(AddressIn, data, where)


def _patient_contact(reading: _Reading, patient: Patient) -> PatientContactIn | None:
    phones = [
        phone
        for owner, index in _phones(patient)
        if (phone := _number(reading, owner, index)) is not None
    ]
    addresses = patient.address or []
    home = next((a for a in addresses if a.use == "home"), addresses[0] if addresses else None)
    index = addresses.index(home) if home is not None else 0
    address = (
        _address(reading, home, reading.message.path(patient, f"address[{index}]"))
        if home is not None
        else None
    )
    communication = _communication(patient)
    if not phones and address is None and communication is None:
        return None
    return PatientContactIn(phones=phones[:4], address=address, communication=communication)


def _communication(patient: Patient) -> CommunicationIn | None:
    """An interpreter for the first language the patient communicates in that is not English."""
    for item in patient.communication or []:
        for coding in item.language.coding or []:
            code = (coding.code or "").lower()
            if not code or code.startswith("en"):
                continue
            if code in BSL:
                return CommunicationIn(bsl_interpreter=True, hearing_impairment=True)
            try:
                return CommunicationIn(interpreter_language=code)
            except ValidationError:
                continue
    return None


def _incident_location(reading: _Reading, home: AddressIn | None) -> IncidentLocationIn | None:
    message = reading.message
    for reference in message.service_request.locationReference or []:
        location = message.resolve(reference, Location)
        if location is None:
            continue
        address = None
        if location.address is not None:
            address = _address(reading, location.address, message.path(location, "address"))
        description = "; ".join(t for t in (location.name, location.description) if t)[:1000]
        if address is not None and home is not None and _at_home(address, home):
            return None
        data = {
            "address": address.model_dump() if address else None,
            "description": description or None,
        }
        if data["address"] is None and data["description"] is None:
            continue
        return reading.valid(IncidentLocationIn, data, message.path(location))
    return None


def _at_home(place: AddressIn, home: AddressIn) -> bool:
    """The home, or a place given by the home's postcode alone."""
    return same_place(place, home) or (place.postcode == home.postcode and not place.lines)


def _summary(message: Message) -> str | None:
    """The CarePlan's free-text outcomes (the Pathways consultation summary) and description."""
    texts = [
        text
        for plan in message.all_of(CarePlan)
        for text in [
            plan.description,
            *(
                concept.text
                for activity in plan.activity or []
                for concept in activity.outcomeCodeableConcept or []
                if not concept.coding
            ),
        ]
        if text
    ]
    return "\n".join(texts)[:SUMMARY_MAX] or None


def _snomed_codes(reading: _Reading) -> list[SnomedConcept]:
    """SNOMED CT concepts of the reasons for referral and of the findings observed."""
    message = reading.message
    concepts = [*(message.service_request.reasonCode or [])]
    concepts += [o.code for o in message.all_of(Observation) if not _is_news2(o)]
    found: dict[str, SnomedConcept] = {}
    for concept in concepts:
        for coding in concept.coding or []:
            if coding.system != SNOMED or not coding.code or coding.code in found:
                continue
            try:
                found[coding.code] = SnomedConcept(
                    code=coding.code, display=(coding.display or None) and coding.display[:255]
                )
            except ValidationError:
                log.warning("bars_clinical_element_left_out", element="snomed_code")
    return list(found.values())[:32]


def _is_news2(observation: Observation) -> bool:
    codings = observation.code.coding or []
    return any((c.system or "", c.code or "") in NEWS2_CODES for c in codings)


def _observations(reading: _Reading) -> list[News2In]:
    found = []
    for observation in reading.message.all_of(Observation):
        if not _is_news2(observation):
            continue
        value: Any = observation.valueInteger
        if value is None and observation.valueQuantity is not None:
            value = observation.valueQuantity.value
        taken_at = observation.effectiveDateTime or observation.issued
        aware = isinstance(taken_at, datetime) and taken_at.tzinfo is not None
        if aware and taken_at > reading.now + CLOCK_SKEW:  # type: ignore[operator]
            value = None  # an observation from the future is left out as invalid
        where = reading.message.path(observation)
        news2 = reading.valid(News2In, {"score": value, "taken_at": taken_at}, where)
        if news2 is not None:
            found.append(news2)
    return found[:16]
