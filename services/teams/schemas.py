"""Wire models of the teams service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.shared.vocabulary import AssignmentKind, Pathway, TeamType, Urgency


class TeamSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    team_type: TeamType


class CoveredPractice(BaseModel):
    ods_code: str
    linked_worker: str | None = None


class TeamRead(TeamSummary):
    locality_code: str | None
    backup_team_id: uuid.UUID | None
    practices: list[CoveredPractice]


class ResolutionStep(BaseModel):
    code: str = Field(description="Machine-readable step, e.g. practice_located, team_found")
    message: str


class ResolutionRead(BaseModel):
    outcome: Literal["team", "county_queue", "no_assignment"]
    team: TeamSummary | None
    linked_worker: str | None = None
    locality_code: str | None = None
    explanation: list[ResolutionStep]


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind = AssignmentKind.CARE
    pathway: Pathway | None = None
    urgency: Urgency
    decision_id: uuid.UUID | None = None


class AssignmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind
    pathway: Pathway | None
    urgency: Urgency
    status: str
    decision_id: uuid.UUID | None
    created_at: datetime


class CaseloadRead(BaseModel):
    team: TeamSummary
    items: list[AssignmentRead]
