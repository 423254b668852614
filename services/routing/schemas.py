"""Wire models of the routing service, including the little it needs of the teams service."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.shared.clock import Moment
from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.vocabulary import (
    MAX_AGE_YEARS,
    Channel,
    Escalation,
    Need,
    Pathway,
    RedFlag,
    TeamType,
    Urgency,
)


class SampleReferral(BaseModel):
    """The facts of a referral that triage needs: codes, an age and a place, no identifiers."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    urgency: Urgency
    needs: list[Need] = Field(default_factory=list, max_length=32)
    red_flags: list[RedFlag] = Field(default_factory=list, max_length=16)
    age_years: int = Field(ge=0, le=MAX_AGE_YEARS)
    practice: OdsCode | None = None
    postcode_district: PostcodeDistrict | None = None
    safeguarding_concern: bool = False


class DecisionCreate(SampleReferral):
    referral_id: uuid.UUID
    assessed_at: Moment | None = Field(
        default=None,
        description=(
            "When the call handler's contact assessment this triage follows was completed; "
            "absent for the triage at intake. A new assessment is a new triage, even on the "
            "same facts; a request repeating the referral id, this time and every fact is the "
            "same triage asked again."
        ),
    )


class TeamRef(BaseModel):
    """A team as the teams service describes it."""

    id: uuid.UUID
    code: str
    name: str
    team_type: TeamType


class ExplanationStep(BaseModel):
    code: str
    message: str


class TeamResolution(BaseModel):
    """The teams service's answer to "which team serves this patient for this pathway"."""

    outcome: Literal["team", "county_queue", "no_assignment"]
    team: TeamRef | None
    linked_worker: str | None = None
    locality_code: str | None = None
    explanation: list[ExplanationStep]


class EscalationRead(BaseModel):
    escalation: Escalation
    team: TeamRef | None
    explanation: list[ExplanationStep]


class TraceEntry(BaseModel):
    rule: str
    matched: bool
    why_not: str | None = None


class DecisionRead(BaseModel):
    id: uuid.UUID
    referral_id: uuid.UUID
    pathway: Pathway
    priority: int
    response_target: timedelta | None
    reason: str
    rule_id: str
    rule_set_version: str
    escalations: list[EscalationRead]
    team: TeamRef | None
    linked_worker: str | None
    team_outcome: Literal["team", "county_queue", "no_assignment"]
    team_explanation: list[ExplanationStep]
    hold: str | None = Field(
        default=None,
        description="Set when the rule holds the case for a call handler instead of a team "
        "(e.g. under_18); the pathway is then not acted on",
    )
    refuse: str | None = Field(
        default=None,
        description="Set when the rule refuses the case outright, with its reason code (e.g. "
        "under_18): no team and no call handler takes it and the referrer is told the rule's "
        "reason; the pathway is then not acted on",
    )
    locality_code: str | None = Field(
        default=None, description="The locality the practice or postcode places the patient in"
    )
    trace: list[TraceEntry]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> DecisionRead:
        team = row.team or {}
        return cls(
            id=row.id,
            referral_id=row.referral_id,
            pathway=row.pathway,
            priority=row.priority,
            response_target=(
                timedelta(seconds=row.response_target_seconds)
                if row.response_target_seconds is not None
                else None
            ),
            reason=row.reason,
            rule_id=row.rule_id,
            rule_set_version=row.rule_set_version,
            escalations=row.escalations,
            team=team.get("team"),
            linked_worker=team.get("linked_worker"),
            team_outcome=row.team_outcome,
            team_explanation=row.team_explanation,
            hold=row.hold,
            refuse=row.refuse,
            locality_code=row.locality_code,
            trace=row.trace,
            created_at=row.created_at,
        )


class RuleSetUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field(
        default="county",
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description='"county", or a locality code whose referrals this table is for',
    )
    document: str = Field(min_length=1, max_length=200_000, description="The rule set as YAML")


class RuleSetFinding(BaseModel):
    severity: Literal["error", "warning"]
    rule: str | None
    field: str | None
    message: str


class RuleSetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    scope: str
    version: str
    status: Literal["draft", "active", "shadow", "superseded", "rolled_back"]
    checksum: str
    findings: list[RuleSetFinding]
    uploaded_by: str
    created_at: datetime
    activated_at: datetime | None


class RuleSetDetail(RuleSetRead):
    document: str


class DryRunResult(BaseModel):
    rule_set_id: uuid.UUID
    rule_set_version: str
    pathway: Pathway
    priority: int
    response_target: timedelta | None
    rule_id: str
    reason: str
    hold: str | None = Field(default=None, description="As on a decision: held for a handler")
    refuse: str | None = Field(default=None, description="As on a decision: refused outright")
    escalations: list[Escalation]
    trace: list[TraceEntry]


class DisagreementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    decision_id: uuid.UUID
    candidate_id: uuid.UUID
    active_pathway: Pathway
    active_rule: str
    candidate_pathway: Pathway
    candidate_rule: str
    active_escalations: list[Escalation]
    candidate_escalations: list[Escalation]
    at: datetime


class RuleSetEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    actor: str
    request_id: str | None
    at: datetime
