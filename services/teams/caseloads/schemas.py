"""Wire models of caseloads."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.shared.clock import Moment
from services.shared.pagination import Page
from services.shared.vocabulary import AssignmentKind, AssignmentStatus, Pathway, Urgency
from services.teams.directory.schemas import TeamSummary


class RiskMarkers(BaseModel):
    """What puts a case on an MDT's high-risk worklist."""

    model_config = ConfigDict(extra="forbid")

    clinical_frailty_scale: int | None = Field(default=None, ge=1, le=9)
    long_term_conditions: int | None = Field(default=None, ge=0, le=30)
    end_of_life: bool = False


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind = AssignmentKind.CARE
    pathway: Pathway | None = None
    urgency: Urgency
    decision_id: uuid.UUID | None = None
    risk: RiskMarkers = Field(default_factory=RiskMarkers)
    linked_worker: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Model B: the team member linked to the patient's practice"
    )
    acceptance_window: timedelta | None = Field(
        default=None,
        gt=timedelta(0),
        le=timedelta(days=14),
        description=(
            "How long the team has to accept the case (ISO 8601 duration). For a pathway that "
            "can wait for the team to open, it counts only the team's service hours; for one "
            "its locality lists as time-critical, it runs from now. The answer's "
            "acceptance_due_at says when it ends."
        ),
    )


class WithdrawalCreate(BaseModel):
    """The referrer withdrew the referral: take it off the caseloads holding it."""

    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    kind: AssignmentKind = AssignmentKind.CARE
    reason: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class AssignmentWithdrawal(BaseModel):
    """spa takes back a case the team has not accepted in time, to offer it to the next team."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class AssignmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind
    pathway: Pathway | None
    urgency: Urgency
    status: AssignmentStatus
    decision_id: uuid.UUID | None
    linked_worker: str | None
    risk: RiskMarkers
    acceptance_due_at: datetime | None = Field(
        description="When the case goes to the next team unless accepted; null without a window"
    )
    accepted_at: datetime | None
    planned_first_contact_at: datetime | None
    first_contact_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None
    closed_at: datetime | None
    created_at: datetime


class CaseloadRead(Page[AssignmentRead]):
    """A team's assignments, oldest first."""

    team: TeamSummary


class DeclineReason(StrEnum):
    CAPACITY_FULL = "capacity_full"
    NOT_APPROPRIATE = "not_appropriate"
    WRONG_TEAM = "wrong_team"


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    planned_first_contact_at: Moment


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: DeclineReason
    note: str | None = Field(default=None, min_length=1, max_length=1000)


class FirstContactBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Moment


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["completed", "no_longer_needed", "transferred"] = "completed"


class WorklistItem(AssignmentRead):
    reasons: list[str] = Field(description="Why the case is on the worklist")


class WorklistRead(Page[WorklistItem]):
    """A team's open high-risk cases, oldest first."""

    team: TeamSummary
