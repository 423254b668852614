"""Response clocks as data (``clock_policy.yaml``) and the timers that carry them.

Timers live in spa's database, never in memory: each is a row that a worker fires once its
due time has passed, so they survive restarts, and a row lock decides which replica fires it.
A timer re-checks the referral when it fires and does nothing if the clock has stopped, so a
stopped clock needs no race-free cancellation; stopping marks its timers cancelled only to keep
the table tidy.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.calendar import add_working_days
from services.shared.logging import current_request_id
from services.shared.outbox import JobStatus
from services.shared.tracing import current_traceparent
from services.shared.vocabulary import AssignmentKind, Pathway
from services.spa.referrals.clients import Assignment
from services.spa.referrals.models import Referral, ReferralTimer

DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "clock_policy.yaml"


class TimerKind(StrEnum):
    ACCEPTANCE_WINDOW = "acceptance_window"
    REROUTE = "reroute"
    AT_RISK = "at_risk"
    BREACH = "breach"
    SAFEGUARDING_ACKNOWLEDGEMENT = "safeguarding_ack"


RESPONSE_TIMERS = (TimerKind.AT_RISK, TimerKind.BREACH)


class ClockPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_risk_fraction: float = Field(default=0.75, gt=0, lt=1)
    safeguarding_acknowledgement_working_days: int = Field(default=1, ge=1, le=10)
    acceptance_windows: dict[Pathway, timedelta] = Field(default_factory=dict)

    def acceptance_window(self, pathway: str | None) -> timedelta | None:
        return self.acceptance_windows.get(Pathway(pathway)) if pathway else None

    def care_window(self, referral: Referral, kind: AssignmentKind) -> timedelta | None:
        """The acceptance window a team is given for the case: care assignments only."""
        return self.acceptance_window(referral.pathway) if kind is AssignmentKind.CARE else None


def load_policy(path: Path | None) -> ClockPolicy:
    with (path or DEFAULT_POLICY).open(encoding="utf-8") as handle:
        return ClockPolicy.model_validate(yaml.safe_load(handle))


def schedule(
    session: AsyncSession,
    referral: Referral,
    kind: TimerKind,
    due_at: datetime,
    assignment_id: uuid.UUID | None = None,
) -> None:
    session.add(
        ReferralTimer(
            referral_id=referral.id,
            assignment_id=assignment_id,
            kind=kind,
            due_at=due_at,
            next_attempt_at=due_at,
            request_id=current_request_id(),
            traceparent=current_traceparent(),
        )
    )


def start_acceptance_window(
    session: AsyncSession,
    policy: ClockPolicy,
    referral: Referral,
    assignment: Assignment,
    now: datetime,
) -> None:
    """The window ends when teams says: it counts the team's service hours for work that may
    wait for the team to open. A teams that does not say (an older version) runs it from now."""
    window = policy.acceptance_window(referral.pathway)
    if window is None:
        return
    due = assignment.acceptance_due_at or now + window
    schedule(session, referral, TimerKind.ACCEPTANCE_WINDOW, due, assignment.id)


def start_response_clock(session: AsyncSession, policy: ClockPolicy, referral: Referral) -> None:
    """The deadline runs from receipt; nothing is set for a pathway without a target."""
    if referral.response_target_seconds is None:
        return
    target = timedelta(seconds=referral.response_target_seconds)
    start = referral.received_at
    schedule(session, referral, TimerKind.AT_RISK, start + target * policy.at_risk_fraction)
    schedule(session, referral, TimerKind.BREACH, start + target)


def start_safeguarding_clock(
    session: AsyncSession,
    policy: ClockPolicy,
    referral: Referral,
    assignment_id: uuid.UUID,
    assigned_at: datetime,
) -> None:
    """The CRU's acknowledgement runs from when the concern reached it."""
    days = policy.safeguarding_acknowledgement_working_days
    due = add_working_days(assigned_at, days)
    schedule(session, referral, TimerKind.SAFEGUARDING_ACKNOWLEDGEMENT, due, assignment_id)


async def running(
    session: AsyncSession, referral_id: uuid.UUID, kinds: tuple[TimerKind, ...]
) -> bool:
    found = await session.scalar(
        select(ReferralTimer.id)
        .where(
            ReferralTimer.referral_id == referral_id,
            ReferralTimer.kind.in_([kind.value for kind in kinds]),
            ReferralTimer.status == JobStatus.PENDING,
        )
        .limit(1)
    )
    return found is not None


async def stop(
    session: AsyncSession,
    referral_id: uuid.UUID,
    kinds: tuple[TimerKind, ...],
    assignment_id: uuid.UUID | None = None,
) -> None:
    statement = update(ReferralTimer).where(
        ReferralTimer.referral_id == referral_id,
        ReferralTimer.kind.in_([kind.value for kind in kinds]),
        ReferralTimer.status == JobStatus.PENDING,
    )
    if assignment_id is not None:
        statement = statement.where(ReferralTimer.assignment_id == assignment_id)
    await session.execute(
        statement.values(status="cancelled").execution_options(synchronize_session=False)
    )
