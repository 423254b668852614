"""The commissioner's dashboard: the figures a commissioner reads, from referrals received at
fixed times around a fixed "now" (Thursday 12 March 2026, 10:00 UTC), on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.db import create_engine, create_sessionmaker
from services.shared.vocabulary import AssignmentKind, AssignmentStatus, Pathway, ReferralStatus
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.reports import dashboard
from services.spa.reports.dashboard import Period, Timeliness
from tests.databases import empty_tables

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
LAST_WEEK, THIS_WEEK = date(2026, 3, 2), date(2026, 3, 9)
PERIOD = Period.of_days(LAST_WEEK, NOW.date())
UCR, REABLEMENT = Pathway.RAPID_RESPONSE, Pathway.REABLEMENT


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    received_at: datetime
    pathway: str | None
    locality: str | None = "north"
    channel: str = "ambulance"
    status: str = ReferralStatus.ACCEPTED
    # The care assignments, oldest first: (status, first contact after receipt).
    assignments: tuple[tuple[str, timedelta | None], ...] = ()


def contact(after: timedelta) -> tuple[tuple[str, timedelta | None], ...]:
    return ((AssignmentStatus.ACCEPTED, after),)


HOUR, DAY = timedelta(hours=1), timedelta(days=1)
SEEDS = [
    # Rapid response, north, last week: three reached (one at exactly two hours, one received
    # late on Sunday), one contact a second late, one never contacted, one cancelled.
    Seed(at(2, 9), UCR, assignments=contact(1.5 * HOUR)),
    Seed(at(3, 9), UCR, channel="nhs111", assignments=contact(2 * HOUR)),
    Seed(at(4, 9), UCR, assignments=contact(2 * HOUR + timedelta(seconds=1))),
    Seed(
        at(5, 9),
        UCR,
        status=ReferralStatus.ROUTED,
        assignments=((AssignmentStatus.ASSIGNED, None),),
    ),
    Seed(at(6, 9), UCR, status=ReferralStatus.CANCELLED),
    Seed(at(8, 23, 30), UCR, assignments=contact(HOUR)),
    # Rapid response, south, last week: the team that declined or withdrew does not count.
    Seed(
        at(3, 12),
        UCR,
        locality="south",
        assignments=((AssignmentStatus.DECLINED, None), (AssignmentStatus.ACCEPTED, HOUR)),
    ),
    Seed(
        at(4, 12),
        UCR,
        locality="south",
        assignments=(
            (AssignmentStatus.WITHDRAWN, 0.5 * HOUR),
            (AssignmentStatus.ACCEPTED, 3 * HOUR),
        ),
    ),
    # Rapid response, north, this week: one reached, one still inside its two hours, one past.
    Seed(at(9, 8), UCR, assignments=contact(HOUR)),
    Seed(at(12, 9), UCR, status=ReferralStatus.ROUTED),
    Seed(at(12, 7), UCR, status=ReferralStatus.ROUTED),
    # Before the period: counted nowhere.
    Seed(at(20, 9, month=2), UCR, assignments=contact(HOUR)),
    # Reablement: one at exactly two days, one after three, one never, one still inside.
    Seed(at(2, 10), REABLEMENT, channel="hospital_discharge", assignments=contact(2 * DAY)),
    Seed(at(3, 10), REABLEMENT, channel="hospital_discharge", assignments=contact(3 * DAY)),
    Seed(at(2, 11), REABLEMENT, channel="hospital_discharge", status=ReferralStatus.ROUTED),
    Seed(at(11, 10), REABLEMENT, channel="hospital_discharge", status=ReferralStatus.ROUTED),
    # Not routed yet.
    Seed(at(11, 12), None, channel="nhs111", status=ReferralStatus.AWAITING_ASSESSMENT),
]


def referral_row(seed: Seed) -> Referral:
    return Referral(
        id=uuid.uuid4(),
        status=seed.status,
        channel=seed.channel,
        urgency="crisis" if seed.pathway == UCR else "routine",
        needs=["fall"],
        red_flags=[],
        nhs_number=None,
        nhs_number_verification="01",
        date_of_birth=date(1941, 3, 14),
        safeguarding={},
        consent={"basis": "direct_care_implied"},
        referrer_client_id="gp-engine",
        pathway=seed.pathway,
        locality_code=seed.locality,
        received_at=seed.received_at,
    )


def assignment_rows(seed: Seed, referral: Referral) -> list[ReferralAssignment]:
    return [
        ReferralAssignment(
            referral_id=referral.id,
            kind=AssignmentKind.CARE,
            team_id=uuid.uuid4(),
            team_code=f"team-{order}",
            team_name="A fictional team",
            team_type="plmdt",
            assignment_id=uuid.uuid4(),
            status=status,
            created_at=seed.received_at + timedelta(minutes=order),
            first_contact_at=None if after is None else seed.received_at + after,
        )
        for order, (status, after) in enumerate(seed.assignments)
    ]


@pytest.fixture
async def session(any_database_urls: dict[str, str]) -> AsyncIterator[AsyncSession]:
    url = any_database_urls["spa"]
    await empty_tables(url, "spa")
    engine = create_engine(url, clock=lambda: NOW)
    try:
        async with create_sessionmaker(engine)() as db_session:
            for seed in SEEDS:
                referral = referral_row(seed)
                db_session.add(referral)
                await db_session.flush()
                db_session.add_all(assignment_rows(seed, referral))
            await db_session.commit()
            yield db_session
    finally:
        await engine.dispose()


def test_the_default_period_is_the_twelve_weeks_up_to_today() -> None:
    period = Period.default(NOW)

    assert period.weeks()[-1] == THIS_WEEK
    assert len(period.weeks()) == 12
    assert period.start == datetime(2025, 12, 22, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 13, tzinfo=UTC)


async def test_urgent_response_share_per_week(session: AsyncSession) -> None:
    report = await dashboard.urgent_response(session, PERIOD, NOW)

    weeks = {week.week_start: week.counts for week in report.weeks}
    assert weeks == {
        LAST_WEEK: Timeliness(reached=4, missed=3, open=0, ended_unseen=1),
        THIS_WEEK: Timeliness(reached=1, missed=1, open=1, ended_unseen=0),
    }
    assert weeks[LAST_WEEK].share_within == pytest.approx(4 / 7)
    assert weeks[THIS_WEEK].share_within == 0.5


async def test_urgent_response_share_per_locality(session: AsyncSession) -> None:
    report = await dashboard.urgent_response(session, PERIOD, NOW)

    rows = {(row.week_start, row.locality_code): row.counts for row in report.by_locality}
    assert rows == {
        (LAST_WEEK, "north"): Timeliness(reached=3, missed=2, open=0, ended_unseen=1),
        (LAST_WEEK, "south"): Timeliness(reached=1, missed=1, open=0, ended_unseen=0),
        (THIS_WEEK, "north"): Timeliness(reached=1, missed=1, open=1, ended_unseen=0),
    }
    assert rows[LAST_WEEK, "north"].share_within == 0.6


async def test_a_referral_inside_its_two_hours_is_open_until_they_pass(
    session: AsyncSession,
) -> None:
    later = await dashboard.urgent_response(session, PERIOD, NOW + HOUR + timedelta(minutes=1))

    this_week = {week.week_start: week.counts for week in later.weeks}[THIS_WEEK]
    assert (this_week.open, this_week.missed) == (0, 2)


async def test_reablement_within_two_days(session: AsyncSession) -> None:
    report = await dashboard.reablement(session, PERIOD, NOW)

    weeks = {week.week_start: week.counts for week in report.weeks}
    assert weeks[LAST_WEEK] == Timeliness(reached=1, missed=2)
    assert weeks[LAST_WEEK].share_within == pytest.approx(1 / 3)
    assert weeks[THIS_WEEK] == Timeliness(open=1)
    assert weeks[THIS_WEEK].share_within is None


async def test_referrals_by_channel_and_pathway(session: AsyncSession) -> None:
    report = await dashboard.channels_and_pathways(session, PERIOD)

    assert report.channels == ("ambulance", "hospital_discharge", "nhs111")
    assert report.pathways == (UCR, REABLEMENT, None)
    assert report.count("ambulance", UCR) == 10
    assert report.count("nhs111", UCR) == 1
    assert report.count("nhs111", None) == 1
    assert report.count("hospital_discharge", REABLEMENT) == 4
    assert report.count("ambulance", REABLEMENT) == 0
    assert sum(cell.referrals for cell in report.cells) == len(SEEDS) - 1


async def test_time_to_first_contact_in_buckets(session: AsyncSession) -> None:
    report = await dashboard.response_time_distribution(session, PERIOD)

    counts = {row.pathway: row.counts for row in report.pathways}
    labels = [bucket.label for bucket in report.buckets]
    assert labels[2] == "1 to 2 hours"
    # 1 h three times, 1.5 h and exactly 2 h, then 2 h and a second, and 3 h.
    assert counts[UCR] == (0, 3, 2, 2, 0, 0, 0)
    assert counts[REABLEMENT] == (0, 0, 0, 0, 0, 1, 1)
    assert report.totals == (0, 3, 2, 2, 0, 1, 1)


async def test_a_week_without_referrals_is_shown_as_none(session: AsyncSession) -> None:
    period = Period.of_days(date(2026, 2, 23), NOW.date())
    report = await dashboard.urgent_response(session, period, NOW)

    assert [week.week_start for week in report.weeks] == [date(2026, 2, 23), LAST_WEEK, THIS_WEEK]
    assert report.weeks[0].counts == Timeliness()
    assert report.weeks[0].counts.share_within is None
