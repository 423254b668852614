"""The commissioner's dashboard: counts over a period, each grouped and summed by the database.

Every figure counts referrals received in the period ``[start, end)``; none names a patient.
The response clock starts at receipt, and stops at the first contact the holding team reported
(the latest care assignment not withdrawn or declined, as in ``service``). A referral is:

- *reached* when that first contact came within the window (two hours for rapid response,
  two days for reablement);
- *missed* when it came later, or the window closed without one;
- *open* while the window has not closed and no contact is recorded;
- *ended unseen* when it ended without a visit (cancelled, redirected, advice, closed): not a
  miss. The share within is reached / (reached + missed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, Subquery, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.shared.vocabulary import AssignmentKind, AssignmentStatus, Pathway
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.reports.service import ENDED_UNSEEN
from services.spa.reports.sql import SecondsBetween, WeekStart

TWO_HOURS = 2 * 3600
TWO_DAYS = 2 * 86400
DEFAULT_WEEKS = 12


@dataclass(frozen=True)
class Period:
    """Referrals received from ``start`` (inclusive) to ``end`` (exclusive), in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def of_days(cls, first: date, last: date) -> Period:
        """The whole days ``first`` to ``last``, both included."""
        return cls(_midnight(first), _midnight(last + timedelta(days=1)))

    @classmethod
    def default(cls, now: datetime) -> Period:
        """The twelve weeks (Monday to Sunday) up to today, this one included."""
        today = now.astimezone(UTC).date()
        return cls.of_days(monday_of(today) - timedelta(weeks=DEFAULT_WEEKS - 1), today)

    def weeks(self) -> tuple[date, ...]:
        """The Monday of every week the period touches."""
        week = monday_of(self.start.astimezone(UTC).date())
        weeks = []
        while _midnight(week) < self.end:
            weeks.append(week)
            week += timedelta(weeks=1)
        return tuple(weeks)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Timeliness:
    reached: int = 0
    missed: int = 0
    open: int = 0
    ended_unseen: int = 0

    @property
    def known(self) -> int:
        return self.reached + self.missed

    @property
    def share_within(self) -> float | None:
        return self.reached / self.known if self.known else None

    def __add__(self, other: Timeliness) -> Timeliness:
        return Timeliness(
            self.reached + other.reached,
            self.missed + other.missed,
            self.open + other.open,
            self.ended_unseen + other.ended_unseen,
        )


@dataclass(frozen=True)
class WeekTimeliness:
    week_start: date
    counts: Timeliness


@dataclass(frozen=True)
class LocalityWeekTimeliness:
    week_start: date
    locality_code: str | None
    counts: Timeliness


@dataclass(frozen=True)
class TimelinessReport:
    """Referrals of one pathway reached within a window, week by week and by locality."""

    period: Period
    pathway: str
    window_seconds: int
    weeks: tuple[WeekTimeliness, ...]
    by_locality: tuple[LocalityWeekTimeliness, ...]

    @property
    def total(self) -> Timeliness:
        return sum((week.counts for week in self.weeks), Timeliness())


@dataclass(frozen=True)
class ChannelPathwayCount:
    channel: str
    pathway: str | None  # None: not routed yet
    referrals: int


@dataclass(frozen=True)
class ChannelPathwayReport:
    period: Period
    cells: tuple[ChannelPathwayCount, ...]

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted({cell.channel for cell in self.cells}))

    @property
    def pathways(self) -> tuple[str | None, ...]:
        named = sorted({cell.pathway for cell in self.cells if cell.pathway is not None})
        unrouted = any(cell.pathway is None for cell in self.cells)
        return (*named, None) if unrouted else tuple(named)

    def count(self, channel: str, pathway: str | None) -> int:
        return sum(
            cell.referrals
            for cell in self.cells
            if cell.channel == channel and cell.pathway == pathway
        )


@dataclass(frozen=True)
class Bucket:
    """Times to first contact over ``lower`` seconds and up to ``upper`` (both ends open where
    None): a contact at exactly two hours counts with "1 to 2 hours", as it counts as reached."""

    label: str
    lower: int | None
    upper: int | None


BUCKETS = (
    Bucket("Up to 30 minutes", None, 1800),
    Bucket("30 minutes to 1 hour", 1800, 3600),
    Bucket("1 to 2 hours", 3600, TWO_HOURS),
    Bucket("2 to 4 hours", TWO_HOURS, 4 * 3600),
    Bucket("4 to 24 hours", 4 * 3600, 86400),
    Bucket("1 to 2 days", 86400, TWO_DAYS),
    Bucket("Over 2 days", TWO_DAYS, None),
)


@dataclass(frozen=True)
class PathwayDistribution:
    pathway: str
    counts: tuple[int, ...]  # one per bucket, in the order of BUCKETS


@dataclass(frozen=True)
class ResponseTimeDistribution:
    period: Period
    buckets: tuple[Bucket, ...]
    pathways: tuple[PathwayDistribution, ...]

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(
            sum(row.counts[index] for row in self.pathways) for index in range(len(self.buckets))
        )


def _first_contact() -> Any:
    """The first contact reported by the team that holds (or held) each referral for care."""
    holder = ReferralAssignment
    return (
        select(holder.first_contact_at)
        .where(
            holder.referral_id == Referral.id,
            holder.kind == AssignmentKind.CARE,
            holder.status.not_in((AssignmentStatus.WITHDRAWN, AssignmentStatus.DECLINED)),
        )
        .order_by(holder.created_at.desc(), holder.id.desc())
        .limit(1)
        .correlate(Referral)
        .scalar_subquery()
    )


def _facts(period: Period, *where: ColumnElement[bool]) -> Subquery:
    """One row per referral received in the period: what the reports group, never loaded."""
    return (
        select(
            WeekStart(Referral.received_at).label("week_start"),
            Referral.locality_code,
            Referral.channel,
            Referral.pathway,
            Referral.status,
            Referral.received_at,
            SecondsBetween(Referral.received_at, _first_contact()).label("to_contact"),
        )
        .where(Referral.received_at >= period.start, Referral.received_at < period.end, *where)
        .subquery("facts")
    )


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _timeliness_columns(
    facts: Subquery, window_seconds: int, now: datetime
) -> list[ColumnElement[int]]:
    to_contact, uncontacted = facts.c.to_contact, facts.c.to_contact.is_(None)
    ended = facts.c.status.in_(ENDED_UNSEEN)
    window_closed = facts.c.received_at < now - timedelta(seconds=window_seconds)
    return [
        _count(to_contact <= window_seconds).label("reached"),
        _count(or_(to_contact > window_seconds, and_(uncontacted, ~ended, window_closed))).label(
            "missed"
        ),
        _count(and_(uncontacted, ~ended, ~window_closed)).label("open"),
        _count(and_(uncontacted, ended)).label("ended_unseen"),
    ]


async def timeliness(
    session: AsyncSession, period: Period, now: datetime, *, pathway: str, window_seconds: int
) -> TimelinessReport:
    facts = _facts(period, Referral.pathway == pathway)
    columns = _timeliness_columns(facts, window_seconds, now)
    query: Select[Any] = (
        select(facts.c.week_start, facts.c.locality_code, *columns)
        .group_by(facts.c.week_start, facts.c.locality_code)
        .order_by(facts.c.week_start, facts.c.locality_code.nulls_last())
    )
    rows = [
        LocalityWeekTimeliness(
            week_start=row.week_start,
            locality_code=row.locality_code,
            counts=Timeliness(
                int(row.reached), int(row.missed), int(row.open), int(row.ended_unseen)
            ),
        )
        for row in await session.execute(query)
    ]
    return TimelinessReport(
        period=period,
        pathway=pathway,
        window_seconds=window_seconds,
        weeks=_by_week(period, rows),
        by_locality=tuple(rows),
    )


def _by_week(period: Period, rows: Sequence[LocalityWeekTimeliness]) -> tuple[WeekTimeliness, ...]:
    """Every week of the period, the localities added up (a week with no referrals is zero)."""
    totals = {week: Timeliness() for week in period.weeks()}
    for row in rows:
        totals[row.week_start] = totals.get(row.week_start, Timeliness()) + row.counts
    return tuple(WeekTimeliness(week, counts) for week, counts in sorted(totals.items()))


async def urgent_response(session: AsyncSession, period: Period, now: datetime) -> TimelinessReport:
    """Urgent Community Response: rapid-response referrals reached within two hours."""
    return await timeliness(
        session, period, now, pathway=Pathway.RAPID_RESPONSE, window_seconds=TWO_HOURS
    )


async def reablement(session: AsyncSession, period: Period, now: datetime) -> TimelinessReport:
    """Reablement referrals with a first contact within two days."""
    return await timeliness(
        session, period, now, pathway=Pathway.REABLEMENT, window_seconds=TWO_DAYS
    )


async def channels_and_pathways(session: AsyncSession, period: Period) -> ChannelPathwayReport:
    facts = _facts(period)
    query = (
        select(facts.c.channel, facts.c.pathway, func.count().label("referrals"))
        .group_by(facts.c.channel, facts.c.pathway)
        .order_by(facts.c.channel, facts.c.pathway.nulls_last())
    )
    cells = tuple(
        ChannelPathwayCount(row.channel, row.pathway, int(row.referrals))
        for row in await session.execute(query)
    )
    return ChannelPathwayReport(period=period, cells=cells)


def _in_bucket(seconds: ColumnElement[float], bucket: Bucket) -> ColumnElement[bool]:
    bounds = []
    if bucket.lower is not None:
        bounds.append(seconds > bucket.lower)
    if bucket.upper is not None:
        bounds.append(seconds <= bucket.upper)
    return and_(*bounds)


async def response_time_distribution(
    session: AsyncSession, period: Period
) -> ResponseTimeDistribution:
    """Times from receipt to first contact, counted in buckets, for each routed pathway."""
    facts = _facts(period, Referral.pathway.is_not(None))
    columns = [
        _count(_in_bucket(facts.c.to_contact, bucket)).label(f"bucket_{index}")
        for index, bucket in enumerate(BUCKETS)
    ]
    query = (
        select(facts.c.pathway, *columns)
        .where(facts.c.to_contact.is_not(None))
        .group_by(facts.c.pathway)
        .order_by(facts.c.pathway)
    )
    pathways = tuple(
        PathwayDistribution(row.pathway, tuple(int(value) for value in row[1:]))
        for row in await session.execute(query)
    )
    return ResponseTimeDistribution(period=period, buckets=BUCKETS, pathways=pathways)
