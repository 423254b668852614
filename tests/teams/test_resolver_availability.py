"""The resolver respects service hours, bank holidays, operating status, capacity and the
backup chain, and always answers with a team that can take the case or the county queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.db import create_engine, create_sessionmaker
from services.shared.vocabulary import UNASSIGNED_PATHWAYS, Escalation, Pathway
from services.teams.directory.models import Locality, Practice, Team
from services.teams.directory.resolver import Availability, Resolution, resolve
from tests.databases import empty_tables
from tests.stack import MORNING, SettableClock, load_demo_directory

FOUR_HOURS = timedelta(hours=4)
TUESDAY_10AM = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SATURDAY_10AM = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
TUESDAY_10PM = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
CHRISTMAS_10AM = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
SUMMER_7_30AM_UTC = datetime(2026, 7, 7, 7, 30, tzinfo=UTC)  # 08:30 in the UK (BST)


@pytest.fixture
async def session(postgres_urls: dict[str, str]) -> AsyncIterator[AsyncSession]:
    url = postgres_urls["teams"]
    await empty_tables(url, "teams")
    await load_demo_directory(url)
    engine = create_engine(url, clock=SettableClock(MORNING))
    try:
        async with create_sessionmaker(engine)() as session:
            yield session
            await session.rollback()
    finally:
        await engine.dispose()


async def place(session: AsyncSession, practice: str, pathway: Pathway, at: datetime) -> Resolution:
    availability = Availability(at=at, capacity_max_age=FOUR_HOURS)
    return await resolve(
        session, practice_ods=practice, district=None, pathway=pathway, availability=availability
    )


def team_code(resolution: Resolution) -> str | None:
    return resolution.team.code if resolution.team else None


def steps(resolution: Resolution) -> list[str]:
    return [step.code for step in resolution.explanation]


async def set_team(session: AsyncSession, code: str, **values: object) -> None:
    await session.execute(update(Team).where(Team.code == code).values(**values))
    session.expire_all()


async def set_locality(session: AsyncSession, code: str, **values: object) -> None:
    await session.execute(update(Locality).where(Locality.code == code).values(**values))
    session.expire_all()


async def test_routine_work_waits_for_a_plmdt_outside_its_hours_at_the_weekend(
    session: AsyncSession,
) -> None:
    resolution = await place(session, "M91001", Pathway.ROUTINE_ASSESSMENT, SATURDAY_10AM)

    assert team_code(resolution) == "plmdt-north-1"
    assert "backup_used" not in steps(resolution)
    waits = next(step for step in resolution.explanation if step.code == "waits_for_opening")
    assert waits.message == (
        "PLMDT North 1 is outside its service hours; the case waits for it to open"
        " Monday 30 November at 08:30"
    )


async def test_routine_work_passes_from_a_closed_plmdt_to_its_backup(
    session: AsyncSession,
) -> None:
    await set_team(session, "plmdt-north-1", operating_status="closed")

    resolution = await place(session, "M91001", Pathway.ROUTINE_ASSESSMENT, TUESDAY_10AM)

    assert team_code(resolution) == "lit-north"
    backup = next(step for step in resolution.explanation if step.code == "backup_used")
    assert backup.message == "PLMDT North 1 is closed, so its backup Locality Integrated Team North"
    assert "waits_for_opening" not in steps(resolution)


async def test_reablement_in_the_evening_waits_for_the_locality_team(
    session: AsyncSession,
) -> None:
    resolution = await place(session, "M91001", Pathway.REABLEMENT, TUESDAY_10PM)

    assert team_code(resolution) == "lit-north"
    assert "waits_for_opening" in steps(resolution)
    assert "out_of_hours_used" not in steps(resolution)


async def test_a_locality_that_lists_reablement_as_time_critical_sends_it_out_of_hours(
    session: AsyncSession,
) -> None:
    await set_locality(session, "north", time_critical_pathways=["rapid_response", "reablement"])

    north = await place(session, "M91001", Pathway.REABLEMENT, TUESDAY_10PM)
    south = await place(session, "M93001", Pathway.REABLEMENT, TUESDAY_10PM)

    assert team_code(north) == "ooh-county"
    assert team_code(south) == "lit-south"


async def test_a_safeguarding_escalation_always_checks_hours(session: AsyncSession) -> None:
    await set_team(session, "cru-county", hours={"mon": ["09:00-17:00"]})
    await set_locality(session, "north", time_critical_pathways=[])

    resolution = await resolve(
        session,
        practice_ods="M91001",
        district=None,
        escalation=Escalation.SAFEGUARDING,
        availability=Availability(at=TUESDAY_10PM, capacity_max_age=FOUR_HOURS),
    )

    assert team_code(resolution) == "ooh-county"
    assert "Wealdmoor Central Referral Unit is outside its service hours" in " ".join(
        step.message for step in resolution.explanation
    )


async def test_urgent_work_passes_from_a_team_outside_its_hours_to_its_backup(
    session: AsyncSession,
) -> None:
    await set_team(session, "lit-north", hours={"mon": ["08:00-09:00"]})

    resolution = await place(session, "M91001", Pathway.RAPID_RESPONSE, TUESDAY_10AM)

    # The night service is closed in the morning too: the call handlers take it.
    assert (resolution.outcome, resolution.team) == ("county_queue", None)
    backup = next(step for step in resolution.explanation if step.code == "backup_used")
    assert backup.message == (
        "Locality Integrated Team North is outside its service hours, so its backup Wealdmoor Out-of-Hours Service"
    )


async def test_at_night_rapid_response_goes_to_the_out_of_hours_service(
    session: AsyncSession,
) -> None:
    resolution = await place(session, "M91001", Pathway.RAPID_RESPONSE, TUESDAY_10PM)

    assert resolution.team is not None
    assert resolution.team.code == "ooh-county"


async def test_bank_holiday_hours_apply_on_christmas_day(session: AsyncSession) -> None:
    # The out-of-hours service keeps night hours on bank holidays: at 10:00 it is closed.
    weekday_night = team_code(await place(session, "M91001", Pathway.RAPID_RESPONSE, TUESDAY_10PM))
    await set_team(session, "lit-north", operating_status="closed")
    christmas = await place(session, "M91001", Pathway.RAPID_RESPONSE, CHRISTMAS_10AM)
    christmas_outcome = christmas.outcome
    await set_team(session, "lit-north", operating_status="open")
    routine = await place(session, "M91001", Pathway.ROUTINE_ASSESSMENT, CHRISTMAS_10AM)

    assert weekday_night == "ooh-county"
    assert christmas_outcome == "county_queue"
    assert team_code(routine) == "plmdt-north-1"
    assert "waits_for_opening" in steps(routine)


async def test_hours_are_read_in_uk_local_time(session: AsyncSession) -> None:
    # 07:30 UTC in July is 08:30 in the UK: the locality team (08:00-20:00) is open.
    july = await place(session, "M91001", Pathway.RAPID_RESPONSE, SUMMER_7_30AM_UTC)
    # 07:30 UTC in November is 07:30 in the UK: it is not, and the night service still is.
    november = await place(
        session, "M91001", Pathway.RAPID_RESPONSE, datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    )

    assert team_code(july) == "lit-north"
    assert team_code(november) == "ooh-county"


async def test_a_closed_team_with_no_open_backup_goes_to_the_county_queue(
    session: AsyncSession,
) -> None:
    await set_team(session, "lit-north", operating_status="closed")

    resolution = await place(session, "M91002", Pathway.RAPID_RESPONSE, TUESDAY_10AM)

    assert resolution.outcome == "county_queue"
    assert resolution.team is None  # never the county contact centre, which is no care team
    assert steps(resolution)[-4:] == [
        "backup_used",
        "team_unavailable",
        "out_of_hours_unavailable",
        "county_queue",
    ]


async def test_a_full_team_is_skipped_but_stale_capacity_is_not_trusted(
    session: AsyncSession,
) -> None:
    reported = {"capacity_available": 0, "capacity_maximum": 12, "capacity_unit": "cases"}
    await set_team(
        session,
        "plmdt-north-2",
        **reported,
        capacity_updated_at=TUESDAY_10AM - timedelta(minutes=30),
    )
    full = await place(session, "M91003", Pathway.CASE_MANAGEMENT, TUESDAY_10AM)
    full_team, full_messages = team_code(full), [step.message for step in full.explanation]
    await set_team(session, "plmdt-north-2", capacity_updated_at=TUESDAY_10AM - timedelta(hours=5))
    stale = await place(session, "M91003", Pathway.CASE_MANAGEMENT, TUESDAY_10AM)

    assert full_team == "lit-north"
    assert (
        "PLMDT North 2 has no capacity, so its backup Locality Integrated Team North"
        in full_messages
    )
    assert team_code(stale) == "plmdt-north-2"
    assert "capacity_unknown" in steps(stale)


async def test_a_pressured_team_still_takes_cases_and_says_so(session: AsyncSession) -> None:
    await set_team(session, "int-east-1", operating_status="pressured")

    resolution = await place(session, "M92001", Pathway.CASE_MANAGEMENT, TUESDAY_10AM)

    assert resolution.team is not None
    assert resolution.team.code == "int-east-1"
    assert "team_pressured" in steps(resolution)


async def test_a_backup_cycle_written_past_validation_still_terminates(
    session: AsyncSession,
) -> None:
    teams = {team.code: team for team in await session.scalars(select(Team))}
    await set_team(
        session, "lit-north", backup_team_id=teams["plmdt-north-1"].id, operating_status="closed"
    )
    await set_team(session, "plmdt-north-1", operating_status="closed")

    resolution = await place(session, "M91001", Pathway.CASE_MANAGEMENT, TUESDAY_10AM)

    assert resolution.outcome in ("team", "county_queue")
    assert steps(resolution).count("backup_used") <= 2


def _chain(teams: dict[uuid.UUID, Team], start: Team) -> list[Team]:
    chain: list[Team] = []
    seen: set[uuid.UUID] = set()
    team: Team | None = start
    while team is not None and team.id not in seen:
        seen.add(team.id)
        chain.append(team)
        team = teams.get(team.backup_team_id) if team.backup_team_id else None
    return chain


ASSIGNED = [pathway for pathway in Pathway if pathway not in UNASSIGNED_PATHWAYS]
DEMO_TEAMS = [
    "lit-north", "plmdt-north-1", "plmdt-north-2", "int-east-1", "int-east-2", "lit-south",
    "plmdt-south-1", "plmdt-south-2", "plmdt-south-3", "equipment-county", "ooh-county",
]  # fmt: skip


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes=st.integers(min_value=0, max_value=8 * 24 * 60 - 1),
    practice_index=st.integers(min_value=0, max_value=13),
    pathway=st.sampled_from(ASSIGNED),
    closed=st.sets(st.sampled_from(DEMO_TEAMS), max_size=5),
    full=st.sets(st.sampled_from(DEMO_TEAMS), max_size=5),
)
async def test_every_case_gets_an_available_team_or_the_county_queue(
    session: AsyncSession,
    minutes: int,
    practice_index: int,
    pathway: Pathway,
    closed: set[str],
    full: set[str],
) -> None:
    practices = {p.ods_code: p for p in await session.scalars(select(Practice))}
    practice = sorted(practices)[practice_index]
    # With every team open (a weekday morning, nothing closed), the answer is the primary team.
    primary = await place(session, practice, pathway, TUESDAY_10AM)
    assert primary.outcome == "team"
    assert primary.team is not None
    primary_id = primary.team.id
    at = datetime(2026, 12, 21, tzinfo=UTC) + timedelta(minutes=minutes)  # a week with Christmas
    general = Availability(at=at, capacity_max_age=FOUR_HOURS)
    availability = general.for_case(pathway, None, practices[practice].locality)
    for code in closed:
        await set_team(session, code, operating_status="closed")
    for code in full:
        await set_team(
            session, code, capacity_available=0, capacity_maximum=10, capacity_updated_at=at
        )

    resolution = await resolve(
        session, practice_ods=practice, district=None, pathway=pathway, availability=general
    )
    teams = {team.id: team for team in await session.scalars(select(Team))}
    out_of_hours = next(team for team in teams.values() if team.code == "ooh-county")

    assert resolution.outcome in ("team", "county_queue")
    assert (resolution.team is not None) == (resolution.outcome == "team")
    assert resolution.explanation
    if resolution.team is not None:
        assert availability.problem(resolution.team) is None, (
            "never a closed, full or out-of-hours team"
        )
    else:
        # Only when no team along the backup chain, nor the out-of-hours service, could take it.
        for member in [*_chain(teams, teams[primary_id]), out_of_hours]:
            assert availability.problem(member) is not None, member.code
    await session.rollback()
