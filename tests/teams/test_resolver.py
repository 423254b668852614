"""Which team serves a patient for a pathway, against the demo directory on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.db import create_engine, create_sessionmaker
from services.shared.vocabulary import UNASSIGNED_PATHWAYS, Escalation, Pathway, TeamType
from services.teams.directory.loading import DEMO_DIRECTORY, read_directory_file
from services.teams.directory.resolver import Resolution, resolve
from tests.databases import empty_tables
from tests.stack import (
    MORNING,
    WEEKDAY_MORNING,
    SettableClock,
    Stack,
    load_demo_directory,
)

DEMO = read_directory_file(DEMO_DIRECTORY)
PRACTICE_LOCALITY = {practice.ods_code: practice.locality for practice in DEMO.practices}
LINKED_WORKER = {
    cover.ods_code: cover.linked_worker
    for team in DEMO.teams
    for cover in team.practices
    if cover.linked_worker
}
ASSIGNED_PATHWAYS = [pathway for pathway in Pathway if pathway not in UNASSIGNED_PATHWAYS]
PROBLEM = "application/problem+json"


@pytest.fixture
async def session(postgres_urls: dict[str, str]) -> AsyncIterator[AsyncSession]:
    url = postgres_urls["teams"]
    await empty_tables(url, "teams")
    await load_demo_directory(url)
    engine = create_engine(url, clock=SettableClock(MORNING))
    try:
        async with create_sessionmaker(engine)() as db_session:
            yield db_session
    finally:
        await engine.dispose()


def codes(resolution: Resolution) -> list[str]:
    return [step.code for step in resolution.explanation]


def team_code(resolution: Resolution) -> str | None:
    return resolution.team.code if resolution.team else None


def assert_explained(resolution: Resolution) -> None:
    assert resolution.explanation, "every answer says why"
    for step in resolution.explanation:
        assert step.code.strip(), resolution.explanation
        assert step.message.strip(), resolution.explanation


# --- Model A ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("practice", "pathway", "team", "team_type"),
    [
        ("M91001", Pathway.RAPID_RESPONSE, "lit-north", TeamType.LOCALITY_INTEGRATED),
        ("M91001", Pathway.REABLEMENT, "lit-north", TeamType.LOCALITY_INTEGRATED),
        ("M91001", Pathway.ROUTINE_ASSESSMENT, "plmdt-north-1", TeamType.PLMDT),
        ("M91001", Pathway.CASE_MANAGEMENT, "plmdt-north-1", TeamType.PLMDT),
        ("M91004", Pathway.CASE_MANAGEMENT, "plmdt-north-2", TeamType.PLMDT),
        ("M91004", Pathway.RAPID_RESPONSE, "lit-north", TeamType.LOCALITY_INTEGRATED),
        ("M93003", Pathway.ROUTINE_ASSESSMENT, "plmdt-south-2", TeamType.PLMDT),
        ("M93003", Pathway.REABLEMENT, "lit-south", TeamType.LOCALITY_INTEGRATED),
    ],
)
async def test_model_a_splits_short_term_and_long_term_work(
    session: AsyncSession, practice: str, pathway: Pathway, team: str, team_type: TeamType
) -> None:
    resolution = await resolve(
        session, availability=WEEKDAY_MORNING, practice_ods=practice, district=None, pathway=pathway
    )

    assert resolution.outcome == "team"
    assert team_code(resolution) == team
    assert resolution.team is not None
    assert resolution.team.team_type == team_type
    assert resolution.linked_worker is None
    assert resolution.locality is not None
    assert resolution.locality.code == PRACTICE_LOCALITY[practice]
    assert codes(resolution)[0] == "practice_located"
    assert codes(resolution)[-1] == "team_found"
    assert_explained(resolution)


# --- Model B ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("practice", "team"),
    [("M92002", "int-east-1"), ("M92001", "int-east-1"), ("M92004", "int-east-2")],
)
@pytest.mark.parametrize("pathway", [Pathway.CASE_MANAGEMENT, Pathway.ROUTINE_ASSESSMENT])
async def test_model_b_gives_long_term_work_to_the_practice_linked_worker(
    session: AsyncSession, practice: str, team: str, pathway: Pathway
) -> None:
    resolution = await resolve(
        session, availability=WEEKDAY_MORNING, practice_ods=practice, district=None, pathway=pathway
    )

    assert resolution.outcome == "team"
    assert team_code(resolution) == team
    assert resolution.team is not None
    assert resolution.team.team_type == TeamType.INTEGRATED
    assert resolution.linked_worker == LINKED_WORKER[practice]
    assert resolution.locality is not None
    assert resolution.locality.code == "east"
    assert_explained(resolution)


def test_model_b_linked_workers_differ_by_practice() -> None:
    # Guards the test above: naming the wrong practice's worker must be noticed.
    assert LINKED_WORKER["M92002"] != LINKED_WORKER["M92001"]
    assert "Saltmarsh" in (LINKED_WORKER["M92002"] or "")


@pytest.mark.parametrize("pathway", [Pathway.RAPID_RESPONSE, Pathway.REABLEMENT])
async def test_model_b_short_term_work_goes_to_an_integrated_team(
    session: AsyncSession, pathway: Pathway
) -> None:
    resolution = await resolve(
        session, availability=WEEKDAY_MORNING, practice_ods="M92002", district=None, pathway=pathway
    )

    assert resolution.outcome == "team"
    assert resolution.team is not None
    assert resolution.team.team_type == TeamType.INTEGRATED
    assert resolution.team.code.startswith("int-east-")
    assert_explained(resolution)


# --- County-wide services and escalation -----------------------------------------------------


@pytest.mark.parametrize(
    ("practice", "district"),
    [("M91002", None), ("M92005", None), ("M93001", None), ("V81999", "XW7")],
)
async def test_equipment_goes_to_the_county_equipment_service(
    session: AsyncSession, practice: str, district: str | None
) -> None:
    resolution = await resolve(
        session,
        availability=WEEKDAY_MORNING,
        practice_ods=practice,
        district=district,
        pathway=Pathway.EQUIPMENT,
    )

    assert resolution.outcome == "team"
    assert team_code(resolution) == "equipment-county"
    assert_explained(resolution)


@pytest.mark.parametrize(
    ("practice", "district", "pathway"),
    [
        *[(ods, None, Pathway.RAPID_RESPONSE) for ods in sorted(PRACTICE_LOCALITY)],
        ("M92003", None, None),
        ("M91005", None, Pathway.CASE_MANAGEMENT),
        ("V81999", "XW4", None),
        ("Z99999", None, None),
        (None, None, None),
    ],
)
async def test_safeguarding_goes_to_the_cru_from_anywhere(
    session: AsyncSession, practice: str | None, district: str | None, pathway: Pathway | None
) -> None:
    resolution = await resolve(
        session,
        availability=WEEKDAY_MORNING,
        practice_ods=practice,
        district=district,
        pathway=pathway,
        escalation=Escalation.SAFEGUARDING,
    )

    assert resolution.outcome == "team"
    assert team_code(resolution) == "cru-county"
    assert resolution.team is not None
    assert resolution.team.team_type == TeamType.CRU
    assert_explained(resolution)


@pytest.mark.parametrize("pathway", sorted(UNASSIGNED_PATHWAYS))
@pytest.mark.parametrize("practice", ["M91001", "M92002", "V81999", None])
async def test_advice_and_emergency_redirects_assign_no_team(
    session: AsyncSession, pathway: Pathway, practice: str | None
) -> None:
    resolution = await resolve(
        session, availability=WEEKDAY_MORNING, practice_ods=practice, district=None, pathway=pathway
    )

    assert resolution.outcome == "no_assignment"
    assert resolution.team is None
    assert resolution.linked_worker is None
    assert codes(resolution) == ["no_assignment_needed"]
    assert_explained(resolution)


# --- Unknown practices -----------------------------------------------------------------------


@pytest.mark.parametrize("practice", ["V81999", "Z99999", None])
async def test_an_unknown_practice_falls_back_to_the_locality_of_the_postcode(
    session: AsyncSession, practice: str | None
) -> None:
    resolution = await resolve(
        session,
        availability=WEEKDAY_MORNING,
        practice_ods=practice,
        district="XW7",
        pathway=Pathway.RAPID_RESPONSE,
    )

    assert resolution.outcome == "team"
    assert resolution.locality is not None
    assert resolution.locality.code == "south"
    assert team_code(resolution) == "lit-south"
    assert "practice_unknown" in codes(resolution)
    assert "locality_from_postcode" in codes(resolution)
    assert_explained(resolution)


async def test_long_term_work_for_an_unknown_practice_is_for_the_localitys_handlers(
    session: AsyncSession,
) -> None:
    resolution = await resolve(
        session,
        availability=WEEKDAY_MORNING,
        practice_ods="Z99999",
        district="XW5",
        pathway=Pathway.CASE_MANAGEMENT,
    )

    assert (resolution.outcome, resolution.team) == ("county_queue", None)
    assert resolution.locality is not None
    assert resolution.locality.code == "east"
    assert "practice_needed" in codes(resolution)
    assert_explained(resolution)


async def test_crisis_work_for_an_unknown_practice_in_model_b_gets_a_team_of_that_locality(
    session: AsyncSession,
) -> None:
    resolution = await resolve(
        session,
        availability=WEEKDAY_MORNING,
        practice_ods="Z99999",
        district="XW5",
        pathway=Pathway.RAPID_RESPONSE,
    )

    assert resolution.outcome == "team"
    assert resolution.team is not None
    assert resolution.team.team_type == TeamType.INTEGRATED
    assert resolution.locality is not None
    assert resolution.locality.code == "east"


@pytest.mark.parametrize("practice", ["V81999", "Z99999", None])
@pytest.mark.parametrize("district", [None, "XW9", "ZZ99"])
async def test_an_unplaceable_case_goes_to_the_county_queue(
    session: AsyncSession, practice: str | None, district: str | None
) -> None:
    resolution = await resolve(
        session,
        availability=WEEKDAY_MORNING,
        practice_ods=practice,
        district=district,
        pathway=Pathway.CASE_MANAGEMENT,
    )

    assert resolution.outcome == "county_queue"
    assert resolution.team is None
    assert resolution.locality is None
    assert "practice_unknown" in codes(resolution)
    assert "locality_unknown" in codes(resolution)
    assert codes(resolution)[-1] == "county_queue"
    assert_explained(resolution)


# --- The property over the whole demo directory ----------------------------------------------


async def test_every_practice_and_pathway_gets_an_explained_answer(session: AsyncSession) -> None:
    """Exhaustive over the demo: assigned pathways always land on a team, in the practice's
    own locality or county-wide; the two unassigned pathways never do."""
    localities = {locality.code: locality for locality in DEMO.localities}
    failures: list[str] = []
    checked = 0
    for practice, locality_code in sorted(PRACTICE_LOCALITY.items()):
        for pathway in Pathway:
            resolution = await resolve(
                session,
                availability=WEEKDAY_MORNING,
                practice_ods=practice,
                district=None,
                pathway=pathway,
            )
            checked += 1
            where = f"{practice}/{pathway}"
            steps = [(step.code, step.message) for step in resolution.explanation]
            if not steps or any(not code or not message for code, message in steps):
                failures.append(f"{where}: explanation {steps}")
            if pathway in UNASSIGNED_PATHWAYS:
                if resolution.outcome != "no_assignment" or resolution.team is not None:
                    failures.append(f"{where}: {resolution.outcome} {team_code(resolution)}")
                continue
            if resolution.outcome != "team" or resolution.team is None:
                failures.append(f"{where}: {resolution.outcome} {team_code(resolution)}")
                continue
            if resolution.locality is None or resolution.locality.code != locality_code:
                failures.append(f"{where}: located in the wrong locality")
                continue
            team_locality = resolution.team.locality_id
            if team_locality is not None and team_locality != resolution.locality.id:
                failures.append(f"{where}: {resolution.team.code} is another locality's team")
            model = localities[locality_code].operating_model
            if model == "B" and pathway != Pathway.EQUIPMENT and not resolution.linked_worker:
                failures.append(f"{where}: Model B answer names no linked worker")

    assert checked == len(PRACTICE_LOCALITY) * len(Pathway)
    assert failures == []


# --- Over HTTP -------------------------------------------------------------------------------


async def test_http_resolve_answers_with_the_team_and_explanation(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(
            "/v1/resolve", params={"practice": "M92002", "pathway": "case_management"}
        )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "team"
    assert body["team"]["code"] == "int-east-1"
    assert body["team"]["team_type"] == "integrated"
    assert body["linked_worker"] == LINKED_WORKER["M92002"]
    assert body["locality_code"] == "east"
    assert body["explanation"]
    assert all(step["code"] and step["message"] for step in body["explanation"])


async def test_http_resolve_falls_back_on_the_postcode_district(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(
            "/v1/resolve",
            params={"practice": "V81999", "district": "XW1", "pathway": "reablement"},
        )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["team"]["code"] == "lit-north"
    assert body["locality_code"] == "north"
    assert {"practice_unknown", "locality_from_postcode"} <= {
        step["code"] for step in body["explanation"]
    }


async def test_http_resolve_advice_has_no_team(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(
            "/v1/resolve", params={"practice": "M91001", "pathway": "advice"}
        )

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "no_assignment"
    assert response.json()["team"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"practice": "not an ods code!!", "pathway": "rapid_response"}, "practice"),
        ({"practice": "M91001", "district": "12345"}, "district"),
        ({"practice": "M91001", "pathway": "teleport"}, "pathway"),
        ({"practice": "M91001", "escalation": "police"}, "escalation"),
    ],
)
async def test_http_resolve_refuses_invalid_queries_naming_the_field(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get("/v1/resolve", params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 422
    assert [(error["in"], error["field"]) for error in body["errors"]] == [("query", field)]
    assert "not an ods code" not in response.text, "submitted values are not echoed"


async def test_http_resolve_requires_a_token(stack: Stack) -> None:
    async with stack.raw("teams") as teams:
        response = await teams.get(
            "/v1/resolve", params={"practice": "M91001", "pathway": "rapid_response"}
        )

    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401
    assert "team" not in response.json()


async def test_http_resolve_requires_the_directory_read_scope(stack: Stack) -> None:
    async with stack.client("teams", "no-scopes") as teams:
        response = await teams.get(
            "/v1/resolve", params={"practice": "M91001", "pathway": "rapid_response"}
        )

    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "directory:read" in response.headers["www-authenticate"]


async def test_http_locate_names_the_locality_and_refuses_bad_queries(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        by_practice = await teams.get("/v1/locate", params={"practice": "M92001"})
        by_district = await teams.get("/v1/locate", params={"district": "XW7"})
        nowhere = await teams.get("/v1/locate")
        bad = await teams.get("/v1/locate", params={"district": "not a district"})

    assert by_practice.json()["locality_code"] == "east"
    assert by_district.json()["locality_code"] == "south"
    assert nowhere.json()["locality_code"] is None
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "district"
