"""Wire models of referrals. Validation errors name the field and the rule, never the value."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.shared.clock import CalendarDate, Moment
from services.shared.identifiers import NhsNumber, OdsCode, Postcode, format_nhs_number
from services.shared.vocabulary import (
    MAX_AGE_YEARS,
    AssignmentKind,
    AssignmentStatus,
    Channel,
    Escalation,
    Need,
    Pathway,
    RedFlag,
    ReferralStatus,
    TeamType,
    Tier,
    Urgency,
)
from services.spa.referrals.clinical_schemas import ClinicalIn

Name = Annotated[str, Field(min_length=1, max_length=100)]
FreeText = Annotated[str, Field(min_length=1, max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=1000)]


class NhsNumberVerification(StrEnum):
    """UK Core NHS number verification status."""

    PRESENT_AND_VERIFIED = "01"
    PRESENT_NOT_TRACED = "02"
    TRACE_REQUIRED = "03"
    TRACE_NO_MATCH = "04"
    TRACE_TO_BE_RESOLVED = "05"
    TRACE_IN_PROGRESS = "06"
    NOT_PRESENT_NO_TRACE = "07"
    TRACE_POSTPONED = "08"


_WITH_NUMBER = {"01", "02", "05"}
_WITHOUT_NUMBER = {"03", "04", "05", "06", "07", "08"}


def birth_date_problem(value: date, today: date) -> str | None:
    """Why a date of birth cannot be right on ``today``, or None. Checked at intake rather than
    in the schema, because it needs the service's clock."""
    if value > today:
        return "a date of birth cannot be in the future"
    if today.year - value.year > MAX_AGE_YEARS:
        return f"a date of birth more than {MAX_AGE_YEARS} years ago is not plausible"
    return None


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nhs_number: NhsNumber | None = None
    nhs_number_verification: NhsNumberVerification | None = Field(
        default=None, description="Defaults to 02 with a number and 03 without"
    )
    given_name: Name | None = None
    family_name: Name | None = None
    date_of_birth: CalendarDate
    postcode: Postcode | None = None
    registered_practice: OdsCode | None = Field(default=None, description="V81999 when unknown")

    @model_validator(mode="after")
    def _verification_matches_number(self) -> Self:
        if self.nhs_number_verification is None:
            default = "02" if self.nhs_number else "03"
            self.nhs_number_verification = NhsNumberVerification(default)
        allowed = _WITH_NUMBER if self.nhs_number else _WITHOUT_NUMBER
        if self.nhs_number_verification.value not in allowed:
            state = "present" if self.nhs_number else "absent"
            raise ValueError(
                f"verification status {self.nhs_number_verification.value} is not valid when the number is {state}"
            )
        return self


class AbuseCategory(StrEnum):
    """Types of abuse and neglect named in the Care Act statutory guidance."""

    PHYSICAL = "physical"
    DOMESTIC = "domestic"
    SEXUAL = "sexual"
    PSYCHOLOGICAL = "psychological"
    FINANCIAL = "financial"
    MODERN_SLAVERY = "modern_slavery"
    DISCRIMINATORY = "discriminatory"
    ORGANISATIONAL = "organisational"
    NEGLECT = "neglect"
    SELF_NEGLECT = "self_neglect"


class SafeguardingIn(BaseModel):
    """A safeguarding concern (Care Act 2014, s42), escalated to the Central Referral Unit."""

    model_config = ConfigDict(extra="forbid")

    concern: bool = False
    care_and_support_needs: bool | None = None
    experiencing_or_at_risk_of_abuse: bool | None = None
    unable_to_protect_self: bool | None = None
    categories: list[AbuseCategory] = Field(default_factory=list, max_length=10)
    adult_aware: bool | None = None
    adult_consents: bool | None = None
    proceed_without_consent_reason: ShortText | None = None
    capacity_concern: bool | None = None
    children_at_risk: bool | None = None
    others_at_risk: bool | None = None
    alleged_person_known: bool | None = None
    police_involved: bool | None = None
    immediate_actions: ShortText | None = None

    @model_validator(mode="after")
    def _consent_or_reason(self) -> Self:
        if (
            self.concern
            and self.adult_consents is False
            and not self.proceed_without_consent_reason
        ):
            raise ValueError(
                "a concern raised without the adult's consent needs proceed_without_consent_reason"
            )
        if not self.concern and (self.categories or self.proceed_without_consent_reason):
            raise ValueError("safeguarding details are given but concern is false")
        return self


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    basis: Literal["direct_care_implied", "explicit", "safeguarding_override"]
    override_reason: ShortText | None = None

    @model_validator(mode="after")
    def _override_needs_reason(self) -> Self:
        if self.basis == "safeguarding_override" and not self.override_reason:
            raise ValueError("a safeguarding override needs override_reason")
        return self


class RiskMarkers(BaseModel):
    """What the referrer knows of the person's risk; it puts a case on MDT worklists."""

    model_config = ConfigDict(extra="forbid")

    clinical_frailty_scale: int | None = Field(default=None, ge=1, le=9)
    long_term_conditions: int | None = Field(default=None, ge=0, le=30)
    end_of_life: bool = False


class Nhs111Details(BaseModel):
    """What NHS 111 passes on: the NHS Pathways disposition and the Directory of Services entry."""

    model_config = ConfigDict(extra="forbid")

    dx_code: Annotated[str, Field(pattern=r"^Dx[0-9A-Z]{2,6}$", examples=["Dx05"])] | None = None
    dos_service_id: Annotated[str, Field(pattern=r"^[0-9]{1,12}$")] | None = None
    case_reference: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")] | None
    ) = None


class AdviceTopic(StrEnum):
    """What information, advice or guidance was given."""

    SELF_CARE = "self_care"
    COMMUNITY_SERVICES = "community_services"
    VOLUNTARY_SECTOR = "voluntary_sector"
    CARER_SUPPORT = "carer_support"
    EQUIPMENT_PURCHASE = "equipment_purchase"
    BENEFITS_AND_FINANCE = "benefits_and_finance"
    HOUSING = "housing"
    GP_APPOINTMENT = "gp_appointment"
    PHARMACY = "pharmacy"
    OTHER = "other"


class AdviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: list[AdviceTopic] = Field(min_length=1, max_length=10)
    note: ShortText | None = None


class CountyContactIn(BaseModel):
    """How the county contact centre left the contact: advice given, or a contact assessment
    needed (the case then waits in the locality's call-handler queue)."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["advice_given", "contact_assessment_needed"]
    advice: AdviceIn | None = None

    @model_validator(mode="after")
    def _advice_with_advice_given(self) -> Self:
        if (self.outcome == "advice_given") != (self.advice is not None):
            raise ValueError("advice is given exactly when the outcome is advice_given")
        return self


class CodedConcept(BaseModel):
    """A code from the referrer's own terminology (SNOMED CT, an NHS Pathways code) that this
    service could not map to its vocabulary: kept with the referral for a call handler to read."""

    model_config = ConfigDict(extra="forbid")

    system: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9+.:/_#-]+$")]
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class ReferrerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation: OdsCode | None = None
    reference: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")] | None
    ) = None


class ReferralCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    urgency: Urgency
    patient: PatientIn
    needs: list[Need] = Field(default_factory=list, max_length=32)
    red_flags: list[RedFlag] = Field(default_factory=list, max_length=16)
    safeguarding: SafeguardingIn = Field(default_factory=SafeguardingIn)
    consent: ConsentIn
    reason: FreeText | None = None
    referrer: ReferrerIn = Field(default_factory=ReferrerIn)
    risk: RiskMarkers = Field(default_factory=RiskMarkers)
    nhs111: Nhs111Details | None = Field(default=None, description="Only on the nhs111 channel")
    contact: CountyContactIn | None = Field(
        default=None,
        validate_default=True,
        description="Required on the county channels, and only there",
    )
    unmapped_codes: list[CodedConcept] = Field(
        default_factory=list,
        max_length=32,
        description="Codes of the referrer's terminology that no mapping here turns into needs "
        "or red flags: kept with the referral, and the case waits for a call handler "
        "(queue_reason unmapped_codes) unless it carries a red flag",
    )
    clinical: ClinicalIn | None = Field(
        default=None,
        description="The clinical payload: kept in spa only, never sent to routing, told to "
        "webhook subscribers or logged; shown on read to the referrer, the call handlers of the "
        "case's locality and the teams holding it",
    )

    @model_validator(mode="after")
    def _something_to_triage(self) -> Self:
        if not self.needs and not self.red_flags and not self.unmapped_codes:
            raise ValueError("a referral needs at least one need, red flag or unmapped code")
        self.needs = list(dict.fromkeys(self.needs))
        self.red_flags = list(dict.fromkeys(self.red_flags))
        return self

    @field_validator("nhs111")
    @classmethod
    def _only_from_nhs111(
        cls, value: Nhs111Details | None, info: ValidationInfo
    ) -> Nhs111Details | None:
        if value is not None and info.data.get("channel") is not Channel.NHS111:
            raise ValueError("nhs111 details are only given on the nhs111 channel")
        return value

    @field_validator("contact")
    @classmethod
    def _on_county_channels(
        cls, value: CountyContactIn | None, info: ValidationInfo
    ) -> CountyContactIn | None:
        channel = info.data.get("channel")
        if channel is None:  # the channel itself was refused and is reported
            return value
        county = channel.tier is Tier.COUNTY
        if county and value is None:
            raise ValueError("a contact outcome is required on the county channels")
        if not county and value is not None:
            raise ValueError("a contact outcome is only given on the county channels")
        if value is not None and value.outcome == "advice_given":
            safeguarding = info.data.get("safeguarding")
            if info.data.get("red_flags") or (safeguarding is not None and safeguarding.concern):
                raise ValueError(
                    "a contact with red flags or a safeguarding concern cannot end with advice"
                )
        return value


class CancelReason(StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    PATIENT_DECLINED = "patient_declined"
    PATIENT_ADMITTED = "patient_admitted"
    PATIENT_DIED = "patient_died"
    REFERRED_IN_ERROR = "referred_in_error"
    DUPLICATE = "duplicate"
    OTHER = "other"


class CancellationCreate(BaseModel):
    """The referrer withdraws its referral."""

    model_config = ConfigDict(extra="forbid")

    reason: CancelReason
    note: ShortText | None = None


class PatientRead(BaseModel):
    nhs_number: str | None
    nhs_number_verification: str
    given_name: str | None
    family_name: str | None
    date_of_birth: CalendarDate
    postcode: str | None
    registered_practice: str | None

    @classmethod
    def from_row(cls, row: object) -> PatientRead:
        patient = cls.model_validate(row, from_attributes=True)
        if patient.nhs_number:
            patient.nhs_number = format_nhs_number(patient.nhs_number)
        return patient


class TeamRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    team_type: TeamType


class AssignmentRead(BaseModel):
    kind: AssignmentKind
    team: TeamRead
    assignment_id: uuid.UUID
    status: AssignmentStatus
    planned_first_contact_at: datetime | None
    first_contact_at: datetime | None
    created_at: datetime


class RoutingRead(BaseModel):
    decision_id: uuid.UUID
    pathway: Pathway
    priority: int
    response_target: timedelta | None
    reason: str
    escalations: list[Escalation]
    linked_worker: str | None = Field(
        default=None,
        description="Model B: the integrated team's worker linked to the patient's practice",
    )
    why_this_team: list[str] = Field(
        default_factory=list,
        description="Why the case went to its team, step by step in plain words: the "
        "practice's team, or its backup because the first was closed, full or out of hours",
    )


class RefusalRead(BaseModel):
    """Why the triage rules refused the referral, as an RFC 9457 problem: no team will see it,
    and the referrer is to find the service that takes such cases."""

    type: Literal["urn:spa-platform:problem:referral-refused"] = (
        "urn:spa-platform:problem:referral-refused"
    )
    title: Literal["The triage rules refuse this referral"] = (
        "The triage rules refuse this referral"
    )
    detail: str = Field(description="The rule's reason, in its authors' words")
    code: str = Field(description="The rule's refusal code, e.g. under_18")


class ReferralRead(BaseModel):
    id: uuid.UUID
    status: ReferralStatus
    channel: Channel
    urgency: Urgency
    needs: list[Need]
    red_flags: list[RedFlag]
    patient: PatientRead
    safeguarding: SafeguardingIn
    consent: ConsentIn
    reason: str | None
    referrer: ReferrerIn
    risk: RiskMarkers
    routing: RoutingRead | None
    refusal: RefusalRead | None = Field(
        description="Set when the triage rules refused the referral (it is then closed); the "
        "pathway in routing was not acted on",
    )
    team: TeamRead | None = Field(description="The team holding the care pathway, once routed")
    assignments: list[AssignmentRead]
    nhs111: Nhs111Details | None
    contact: CountyContactIn | None
    advice: AdviceIn | None = Field(description="Advice the case was resolved with")
    locality_code: str | None = Field(
        description="The locality the patient was placed in (practice, else postcode), once routed"
    )
    queue_reason: str | None = Field(description="Why it waits for a call handler, if it does")
    possible_duplicate_of: uuid.UUID | None
    unmapped_codes: list[CodedConcept] = Field(
        default_factory=list, description="Codes the referrer sent that could not be mapped"
    )
    clinical: ClinicalIn | None = Field(
        default=None,
        description="The clinical payload, for the referrer, the call handlers of the case's "
        "locality and the teams holding it (each read audited); absent for anyone else, and "
        "when none was sent",
    )
    created_at: datetime
    updated_at: datetime


class ChangeLinks(BaseModel):
    referral: str
    timeline: str


class ReferralChangeRead(BaseModel):
    """A referral that changed: codes only; its details come from its own (audited) read."""

    referral_id: uuid.UUID
    status: ReferralStatus
    channel: Channel
    urgency: Urgency
    pathway: Pathway | None
    locality_code: str | None
    last_event: str = Field(description="The latest event on its timeline")
    changed_at: datetime
    links: ChangeLinks


class ReferralChangePage(BaseModel):
    items: list[ReferralChangeRead]
    next_cursor: str | None = Field(
        description="Where to go on from: pass as cursor, now if more is true, later to resume "
        "(absent only when nothing has changed at all yet)"
    )
    more: bool = Field(description="Whether more changes wait beyond this page now")


class TimelineEntry(BaseModel):
    at: datetime
    event_type: str
    from_status: ReferralStatus | None
    to_status: ReferralStatus | None
    actor: str
    request_id: str | None
    detail: dict[str, object]


class Timeline(BaseModel):
    referral_id: uuid.UUID
    events: list[TimelineEntry]


class AssignmentChange(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    FIRST_CONTACT = "first_contact"
    CLOSED = "closed"


class AssignmentUpdate(BaseModel):
    """A change a team made to its assignment of this referral, reported by the teams service."""

    model_config = ConfigDict(extra="forbid")

    assignment_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind
    change: AssignmentChange
    at: Moment
    seq: int = Field(ge=1, description="1 for the assignment's first change, then 2, 3, ...")
    planned_first_contact_at: Moment | None = None
    decline_reason: Literal["capacity_full", "not_appropriate", "wrong_team"] | None = None
    outcome: Literal["completed", "no_longer_needed", "transferred"] | None = None


class AssignmentUpdateResult(BaseModel):
    referral_id: uuid.UUID
    status: ReferralStatus
    applied: bool = Field(description="False when this change had already been applied")
