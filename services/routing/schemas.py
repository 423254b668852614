"""Wire models of the routing service, including the little it needs of the teams service."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.vocabulary import (
    Channel,
    Escalation,
    Need,
    Pathway,
    RedFlag,
    TeamType,
    Urgency,
)


class DecisionCreate(BaseModel):
    """The facts of a referral that triage needs: codes, an age and a place, no identifiers."""

    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    channel: Channel
    urgency: Urgency
    needs: list[Need] = Field(default_factory=list, max_length=32)
    red_flags: list[RedFlag] = Field(default_factory=list, max_length=16)
    age_years: int = Field(ge=0, le=130)
    practice: OdsCode | None = None
    postcode_district: PostcodeDistrict | None = None
    safeguarding_concern: bool = False


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
            trace=row.trace,
            created_at=row.created_at,
        )
