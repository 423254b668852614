"""Wire models of the call-handler queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.shared.pagination import Page
from services.shared.vocabulary import Channel, Need, RedFlag, ReferralStatus, Urgency
from services.spa.referrals.schemas import (
    AdviceIn,
    FreeText,
    RiskMarkers,
    SafeguardingIn,
)

# A call handler as the front-end names them: a staff number or pseudonym, never a person's name.
Handler = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]


class ClaimRead(BaseModel):
    claim_id: uuid.UUID
    handler: str
    expires_at: datetime


class QueueItem(BaseModel):
    """A waiting case, with what a handler needs to choose the next one: no identifiers."""

    referral_id: uuid.UUID
    status: ReferralStatus
    queue_reason: str
    channel: Channel
    urgency: Urgency
    needs: list[Need]
    red_flags: list[RedFlag]
    safeguarding_concern: bool
    age_years: int
    locality_code: str | None
    possible_duplicate_of: uuid.UUID | None
    received_at: datetime
    claim: ClaimRead | None = Field(description="The live claim, if a handler holds the case")


class QueueRead(Page[QueueItem]):
    """Cases of a queue, in its order."""


class ClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handler: Handler


class ClaimedAction(BaseModel):
    """Every action on a claimed case names the claim it is taken under."""

    model_config = ConfigDict(extra="forbid")

    claim_id: uuid.UUID


class ContactAssessmentCreate(ClaimedAction):
    """The handler's structured contact assessment; triage runs on it."""

    urgency: Urgency
    needs: list[Need] = Field(default_factory=list, max_length=32)
    red_flags: list[RedFlag] = Field(default_factory=list, max_length=16)
    risk: RiskMarkers = Field(default_factory=RiskMarkers)
    safeguarding: SafeguardingIn | None = Field(
        default=None, description="Replaces the referral's safeguarding block when given"
    )
    note: FreeText | None = None

    @model_validator(mode="after")
    def _something_to_triage(self) -> Self:
        if not self.needs and not self.red_flags:
            raise ValueError("an assessment needs at least one need or red flag")
        self.needs = list(dict.fromkeys(self.needs))
        self.red_flags = list(dict.fromkeys(self.red_flags))
        return self


class AdviceResolution(ClaimedAction):
    advice: AdviceIn


class CruTransfer(ClaimedAction):
    safeguarding: SafeguardingIn

    @field_validator("safeguarding")
    @classmethod
    def _a_concern(cls, value: SafeguardingIn) -> SafeguardingIn:
        if not value.concern:
            raise ValueError("a transfer to the CRU needs concern to be true")
        return value
