"""Wire models of decisions, including the little routing needs of the teams service."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.routing.rule_sets.schemas import SampleReferral, TraceEntry
from services.shared.clock import Moment
from services.shared.vocabulary import Escalation, Pathway, TeamType


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
