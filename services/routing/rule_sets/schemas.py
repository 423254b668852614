"""Wire models of rule sets: uploads, versions, dry runs and disagreements."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.routing.rule_sets.models import RuleSetStatus
from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.pagination import Page
from services.shared.vocabulary import (
    MAX_AGE_YEARS,
    Channel,
    Escalation,
    Need,
    Pathway,
    RedFlag,
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


class TraceEntry(BaseModel):
    rule: str
    matched: bool
    why_not: str | None = None


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
    status: RuleSetStatus
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


class RuleSetPage(Page[RuleSetRead]):
    """Rule set versions, newest first."""


class DisagreementPage(Page[DisagreementRead]):
    """Shadow disagreements, newest first."""


class RuleSetEventPage(Page[RuleSetEventRead]):
    """A rule set's events, oldest first."""
