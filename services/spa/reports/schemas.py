"""Wire models of the reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.shared.vocabulary import Pathway

# The national Urgent Community Response standard: 70% of two-hour referrals seen within two hours.
UCR_TARGET_SHARE = 0.70


class Durations(BaseModel):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class ResponseTimesRead(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    pathway: Pathway | None
    team: str | None
    referrals: int
    accepted: int
    first_contacts: int
    outcome_known: int = Field(
        description="Referrals with a target whose first contact was made or whose deadline passed"
    )
    within_target: int
    share_within_target: float | None
    ucr_target_share: float | None = Field(
        description="The national standard (0.70) when the report is of rapid response alone"
    )
    time_to_acceptance: Durations
    time_to_first_contact: Durations
