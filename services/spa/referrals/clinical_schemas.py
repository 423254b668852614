"""Wire models of a referral's clinical payload: who referred and how to call them back, how to
reach the patient and what they need to communicate, where the incident happened, a summary,
SNOMED CT codes and observations (NEWS2). All optional; all validated; none of it is sent to
routing, told to webhook subscribers or written to a log. Errors never repeat the value."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.shared.clock import Moment
from services.shared.identifiers import Postcode

Label = Annotated[str, Field(min_length=1, max_length=100)]
Line = Annotated[str, Field(min_length=1, max_length=100)]
Note = Annotated[str, Field(min_length=1, max_length=1000)]
SUMMARY_MAX = 8000
# How far ahead of the service's clock a sender's own clock may run.
CLOCK_SKEW = timedelta(minutes=2)


def _uk_phone(value: str) -> str:
    """The number in E.164 form, if it is a valid UK (+44) number."""
    try:
        parsed = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or parsed.country_code != 44 or not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid UK telephone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


UkPhone = Annotated[str, Field(min_length=3, max_length=32), AfterValidator(_uk_phone)]


def _verhoeff_tables() -> tuple[list[list[int]], list[list[int]], list[int]]:
    # The dihedral group D5: multiplication, the permutation applied by position, and inverses.
    d = [[0] * 10 for _ in range(10)]
    for i in range(10):
        for j in range(10):
            if i < 5 and j < 5:
                d[i][j] = (i + j) % 5
            elif i < 5:
                d[i][j] = 5 + (i + j - 5) % 5
            elif j < 5:
                d[i][j] = 5 + (i - 5 - j) % 5
            else:
                d[i][j] = (i - j) % 5
    step = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]
    p = [list(range(10))]
    for _ in range(7):
        p.append([step[x] for x in p[-1]])
    inverse = [next(j for j in range(10) if d[i][j] == 0) for i in range(10)]
    return d, p, inverse


_D, _P, _INV = _verhoeff_tables()


def verhoeff_valid(digits: str) -> bool:
    """Whether the last digit is the Verhoeff check digit of the ones before it."""
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][int(digit)]]
    return check == 0


_SCTID = re.compile(r"^[1-9][0-9]{5,17}$")


def _concept_id(value: str) -> str:
    if not _SCTID.match(value):
        raise ValueError("a SNOMED CT concept id is 6 to 18 digits, not starting with 0")
    # The partition identifier (the two digits before the check digit): 00 or 10 for a concept.
    if value[-3:-1] not in ("00", "10"):
        raise ValueError("a SNOMED CT id of this partition is not a concept id")
    if not verhoeff_valid(value):
        raise ValueError("a SNOMED CT concept id ends in a Verhoeff check digit, which fails")
    return value


ConceptId = Annotated[str, Field(min_length=6, max_length=18), AfterValidator(_concept_id)]


class Regulator(StrEnum):
    """The UK regulators of the professions that refer into community care."""

    GMC = "gmc"  # doctors
    NMC = "nmc"  # nurses, midwives, nursing associates
    HCPC = "hcpc"  # paramedics, therapists and other health and care professions
    GPHC = "gphc"  # pharmacists and pharmacy technicians
    SWE = "swe"  # Social Work England: social workers


# Each regulator's register number, after upper-casing and removing spaces.
_REGISTER_FORMATS: dict[Regulator, tuple[re.Pattern[str], str]] = {
    Regulator.GMC: (re.compile(r"^[0-9]{7}$"), "a GMC reference number is 7 digits"),
    Regulator.NMC: (
        re.compile(r"^[0-9]{2}[A-Z][0-9]{4}[A-Z]$"),
        "an NMC PIN is 2 digits, a letter, 4 digits and a letter",
    ),
    Regulator.HCPC: (
        re.compile(r"^(AS|BS|CH|CS|DT|HAD|ODP|OR|OT|PA|PH|PO|PYL|RA|SL)[0-9]{4,6}$"),
        "an HCPC registration number is a profession's letters (PA, OT, PH...) and 4 to 6 digits",
    ),
    Regulator.GPHC: (re.compile(r"^[0-9]{7}$"), "a GPhC registration number is 7 digits"),
    Regulator.SWE: (
        re.compile(r"^SW[0-9]{1,6}$"),
        "a Social Work England registration number is SW and up to 6 digits",
    ),
}


class RegistrationIn(BaseModel):
    """A professional registration: the regulator and the number on its register."""

    model_config = ConfigDict(extra="forbid")

    regulator: Regulator
    number: Annotated[str, Field(min_length=1, max_length=16)]

    @model_validator(mode="after")
    def _number_in_the_regulators_format(self) -> Self:
        number = re.sub(r"\s+", "", self.number).upper()
        pattern, rule = _REGISTER_FORMATS[self.regulator]
        if not pattern.match(number):
            raise ValueError(rule)
        self.number = number
        return self


class ClinicianIn(BaseModel):
    """The clinician who made the referral, and how the team calls them back."""

    model_config = ConfigDict(extra="forbid")

    name: Label
    role: Label | None = Field(default=None, examples=["Paramedic"])
    registration: RegistrationIn | None = None
    call_back: UkPhone | None = Field(default=None, description="A UK number, kept as E.164")


class PhoneUse(StrEnum):
    HOME = "home"
    MOBILE = "mobile"
    WORK = "work"
    CARER = "carer"


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: UkPhone
    use: PhoneUse | None = None


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[Line] = Field(default_factory=list, max_length=4)
    town: Label | None = None
    postcode: Postcode | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.lines and self.postcode is None:
            raise ValueError("an address has at least a line or a postcode")
        return self


class Adjustment(StrEnum):
    """Reasonable adjustments to how the team communicates (Accessible Information Standard)."""

    HEARING_LOOP = "hearing_loop"
    LIP_READING = "lip_reading"
    TEXT_RELAY = "text_relay"
    LARGE_PRINT = "large_print"
    BRAILLE = "braille"
    AUDIO = "audio"
    EASY_READ = "easy_read"
    EXTRA_TIME = "extra_time"
    ADVOCATE_PRESENT = "advocate_present"
    CARER_PRESENT = "carer_present"


# A BCP 47 language tag: pl, ur, pa-Arab, bfi (British Sign Language).
LanguageTag = Annotated[
    str, Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
]


class CommunicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interpreter_language: LanguageTag | None = Field(
        default=None, description="The language an interpreter is needed for (BCP 47)"
    )
    bsl_interpreter: bool = Field(default=False, description="A British Sign Language interpreter")
    hearing_impairment: bool = False
    visual_impairment: bool = False
    learning_disability: bool = False
    adjustments: list[Adjustment] = Field(default_factory=list, max_length=10)
    note: Note | None = None


class PatientContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phones: list[PhoneIn] = Field(default_factory=list, max_length=4)
    address: AddressIn | None = Field(default=None, description="The patient's home")
    communication: CommunicationIn | None = None


class IncidentLocationIn(BaseModel):
    """Where the incident happened, when it is not the patient's home (an ambulance's scene)."""

    model_config = ConfigDict(extra="forbid")

    address: AddressIn | None = None
    description: Note | None = Field(default=None, examples=["Outside the library, Bridge Street"])

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.address is None and self.description is None:
            raise ValueError("an incident location has an address or a description")
        return self


class SnomedConcept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: ConceptId
    display: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class Consciousness(StrEnum):
    """ACVPU: alert, new confusion, responds to voice, to pain, unresponsive."""

    ALERT = "alert"
    NEW_CONFUSION = "new_confusion"
    VOICE = "voice"
    PAIN = "pain"
    UNRESPONSIVE = "unresponsive"


def _band(value: float, bands: list[tuple[float, int]], above: int) -> int:
    """The score of the first band whose upper bound the value does not pass."""
    for upper, score in bands:
        if value <= upper:
            return score
    return above


class News2Components(BaseModel):
    """The seven parameters of the Royal College of Physicians' NEWS2."""

    model_config = ConfigDict(extra="forbid")

    respiration_rate: int | None = Field(default=None, ge=0, le=80)
    spo2_scale: Literal[1, 2] = Field(
        default=1, description="2 for hypercapnic respiratory failure"
    )
    oxygen_saturation: int | None = Field(default=None, ge=40, le=100)
    supplemental_oxygen: bool | None = None
    systolic_bp: int | None = Field(default=None, ge=20, le=320)
    pulse: int | None = Field(default=None, ge=10, le=300)
    consciousness: Consciousness | None = None
    temperature: float | None = Field(default=None, ge=25.0, le=45.0)

    def total(self) -> int | None:
        """The NEWS2 score the parameters add up to, when all of them are given."""
        rr, sats, o2 = self.respiration_rate, self.oxygen_saturation, self.supplemental_oxygen
        bp, pulse, temp, acvpu = self.systolic_bp, self.pulse, self.temperature, self.consciousness
        if rr is None or sats is None or o2 is None or bp is None or pulse is None:
            return None
        if temp is None or acvpu is None:
            return None
        return (
            _band(rr, [(8, 3), (11, 1), (20, 0), (24, 2)], 3)
            + self._saturation_score(sats, o2)
            + (2 if o2 else 0)
            + _band(bp, [(90, 3), (100, 2), (110, 1), (219, 0)], 3)
            + _band(pulse, [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2)], 3)
            + (0 if acvpu is Consciousness.ALERT else 3)
            + _band(temp, [(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)], 2)
        )

    def _saturation_score(self, sats: int, oxygen: bool) -> int:
        if self.spo2_scale == 1:
            return _band(sats, [(91, 3), (93, 2), (95, 1)], 0)
        low = _band(sats, [(83, 3), (85, 2), (87, 1), (92, 0)], 0)
        if sats <= 92 or not oxygen:
            return low
        # Scale 2 scores high saturations only on oxygen (the target is 88-92%).
        return _band(sats, [(94, 1), (96, 2)], 3)


class News2In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["news2"] = "news2"
    score: int = Field(ge=0, le=20)
    taken_at: Moment = Field(description="Not in the future by this service's clock")
    components: News2Components | None = None

    @model_validator(mode="after")
    def _score_adds_up(self) -> Self:
        total = self.components.total() if self.components is not None else None
        if total is not None and total != self.score:
            raise ValueError("the score is not what its seven components add up to")
        return self


class ClinicalIn(BaseModel):
    """What the teams need to act on a referral clinically; visible only to the referrer, the
    call handlers of the case's locality and the teams holding it."""

    model_config = ConfigDict(extra="forbid")

    clinician: ClinicianIn | None = None
    patient_contact: PatientContactIn | None = None
    incident_location: IncidentLocationIn | None = None
    summary: Annotated[str, Field(min_length=1, max_length=SUMMARY_MAX)] | None = None
    snomed_codes: list[SnomedConcept] = Field(
        default_factory=list,
        max_length=32,
        description="SNOMED CT concepts alongside the needs and red flags: kept for the "
        "clinicians, never used to triage",
    )
    observations: list[News2In] = Field(default_factory=list, max_length=16)

    @field_validator("incident_location")
    @classmethod
    def _incident_not_at_home(
        cls, value: IncidentLocationIn | None, info: ValidationInfo
    ) -> IncidentLocationIn | None:
        contact = info.data.get("patient_contact")
        home = contact.address if contact is not None else None
        incident = value.address if value is not None else None
        if home is not None and incident is not None and same_place(home, incident):
            raise ValueError("an incident location is given only where it is not the home")
        return value


def same_place(one: AddressIn, other: AddressIn) -> bool:
    """Whether two addresses are one: the same postcode and lines (case and spacing aside)."""

    def lines(address: AddressIn) -> list[str]:
        return [line.strip().lower() for line in address.lines]

    return one.postcode == other.postcode and lines(one) == lines(other)


def clinical_problems(clinical: ClinicalIn, now: datetime) -> list[dict[str, str]]:
    """Field errors only the service's clock can find: observations taken in the future."""
    latest = now + CLOCK_SKEW
    return [
        {
            "in": "body",
            "field": f"clinical.observations.{index}.taken_at",
            "reason": "an observation cannot be taken in the future",
        }
        for index, observation in enumerate(clinical.observations)
        if observation.taken_at > latest
    ]
