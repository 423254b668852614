"""The commissioner's dashboard: the figures a commissioner reads, from referrals received at
fixed times around a fixed "now" (Thursday 12 March 2026, 10:00 UTC), on both databases."""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.db import create_engine, create_sessionmaker
from services.shared.vocabulary import AssignmentKind, AssignmentStatus, Pathway, ReferralStatus
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.reports import charts, dashboard, exports
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


SVG = "{http://www.w3.org/2000/svg}"


def parsed_svg(markup: str) -> ET.Element:
    svg = ET.fromstring(markup)  # noqa: S314 - our own drawing, not input from outside
    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert (title.text or "").strip()
    assert (desc.text or "").strip()
    return svg


def texts(svg: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in svg.iter(f"{SVG}text")]


async def test_the_urgent_response_chart_draws_the_standard_at_seventy_per_cent(
    session: AsyncSession,
) -> None:
    report = await dashboard.urgent_response(session, PERIOD, NOW)
    svg = parsed_svg(charts.urgent_response_chart(report))

    [reference] = [
        line for line in svg.iter(f"{SVG}line") if line.get("class") == "console-chart__reference"
    ]
    grid = {line.get("y1") for line in svg.iter(f"{SVG}line") if not line.get("stroke-dasharray")}
    # The axis runs 0% to 100% in steps of 20%: the standard lies halfway between 60% and 80%.
    y_of = {text: element.get("y") for element in svg.iter(f"{SVG}text") for text in [element.text]}
    sixty, eighty = float(y_of["60%"] or 0) - 4, float(y_of["80%"] or 0) - 4
    assert float(reference.get("y1") or 0) == pytest.approx((sixty + eighty) / 2)
    assert len(grid) == 6
    assert "National standard 70%" in texts(svg)
    assert {"57%", "50%"} <= set(texts(svg))
    assert "w/c 2 Mar" in texts(svg)


async def test_the_other_charts_are_valid_svg(session: AsyncSession) -> None:
    channels = parsed_svg(
        charts.channels_and_pathways_chart(await dashboard.channels_and_pathways(session, PERIOD))
    )
    times = parsed_svg(
        charts.response_times_chart(await dashboard.response_time_distribution(session, PERIOD))
    )
    reablement = parsed_svg(
        charts.reablement_chart(await dashboard.reablement(session, PERIOD, NOW))
    )

    assert {"Ambulance service", "Urgent community response", "Not routed yet"} <= set(
        texts(channels)
    )
    assert "Over 2 days" in " ".join(texts(times))
    assert not [line for line in reablement.iter(f"{SVG}line") if line.get("stroke-dasharray")]


@pytest.mark.parametrize(
    ("largest", "axis"), [(0, (1, 1)), (3, (3, 3)), (7, (8, 4)), (25, (25, 5)), (106, (125, 5))]
)
def test_count_axes_end_on_a_round_number(largest: int, axis: tuple[int, int]) -> None:
    assert charts.scale(largest) == axis


def test_text_in_a_chart_is_escaped() -> None:
    markup = charts.histogram(
        "escaped", title="<script>", description="a & b", labels=["<b>"], counts=[1]
    )

    svg = parsed_svg(markup)
    assert svg.find(f"{SVG}title") is not None
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup


def test_an_empty_period_draws_empty_charts() -> None:
    empty = dashboard.ResponseTimeDistribution(PERIOD, dashboard.BUCKETS, ())
    parsed_svg(charts.response_times_chart(empty))
    parsed_svg(charts.channels_and_pathways_chart(dashboard.ChannelPathwayReport(PERIOD, ())))


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_urgent_response_csv_reads_back_as_the_table(session: AsyncSession) -> None:
    report = await dashboard.urgent_response(session, PERIOD, NOW)

    rows = read_csv(exports.timeliness_csv(report))
    assert rows[0] == {
        "week_start": "2026-03-02",
        "locality_code": "north",
        "reached": "3",
        "missed": "2",
        "open": "0",
        "ended_unseen": "1",
        "share_within": "0.6000",
    }
    assert [(row["week_start"], row["locality_code"]) for row in rows] == [
        ("2026-03-02", "north"),
        ("2026-03-02", "south"),
        ("2026-03-09", "north"),
    ]
    assert rows[2]["open"] == "1"


async def test_the_other_csvs_read_back_as_their_tables(session: AsyncSession) -> None:
    cells = read_csv(
        exports.channels_and_pathways_csv(await dashboard.channels_and_pathways(session, PERIOD))
    )
    bands = read_csv(
        exports.response_times_csv(await dashboard.response_time_distribution(session, PERIOD))
    )

    by_cell = {(row["channel"], row["pathway"]): int(row["referrals"]) for row in cells}
    assert by_cell == {
        ("ambulance", "rapid_response"): 10,
        ("hospital_discharge", "reablement"): 4,
        ("nhs111", ""): 1,
        ("nhs111", "rapid_response"): 1,
    }
    ucr = {row["band"]: int(row["referrals"]) for row in bands if row["pathway"] == UCR}
    assert ucr["30 minutes to 1 hour"] == 3
    assert ucr["1 to 2 hours"] == 2
    assert [row["up_to_seconds"] for row in bands[:7]] == [
        "1800", "3600", "7200", "14400", "86400", "172800", "",
    ]  # fmt: skip


async def test_a_referral_in_no_known_locality_is_counted_apart_and_last(
    session: AsyncSession,
) -> None:
    seed = Seed(at(10, 9), UCR, locality=None, assignments=contact(HOUR))
    referral = referral_row(seed)
    session.add(referral)
    await session.flush()
    session.add_all(assignment_rows(seed, referral))
    await session.commit()

    report = await dashboard.urgent_response(session, PERIOD, NOW)

    assert report.by_locality[-1] == dashboard.LocalityWeekTimeliness(
        THIS_WEEK, None, Timeliness(reached=1)
    )
    assert read_csv(exports.timeliness_csv(report))[-1]["locality_code"] == ""
