"""The Open Referral UK (HSDS 3.0) read API of the teams service, over the demo directory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from services.teams.directory.models import Organisation, Team
from tests.stack import Stack

ACTIVE_TEAMS = 13
COVERED_PRACTICES = 14  # every demo practice is covered by exactly one practice-linked team
PROBLEM = "urn:spa-platform:problem:"


async def team_ids(stack: Stack) -> dict[str, str]:
    async with stack.client("teams", "team-app") as teams:
        listed = (await teams.get("/v1/teams")).json()
    return {team["code"]: team["id"] for team in listed}


async def update_team(stack: Stack, code: str, **values: Any) -> None:
    async with stack.apps["teams"].state.sessionmaker() as session, session.begin():
        await session.execute(update(Team).where(Team.code == code).values(**values))


async def organisation_id(stack: Stack) -> str:
    async with stack.apps["teams"].state.sessionmaker() as session:
        return str(await session.scalar(select(Organisation.id)))


async def get(stack: Stack, path: str, **params: Any) -> Any:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_one_page_holds_every_active_team(stack: Stack) -> None:
    page = await get(stack, "/openreferral/services")

    assert {key: value for key, value in page.items() if key != "contents"} == {
        "total_items": ACTIVE_TEAMS,
        "total_pages": 1,
        "page_number": 1,
        "size": ACTIVE_TEAMS,
        "first_page": True,
        "last_page": True,
        "empty": False,
    }
    assert {service["id"] for service in page["contents"]} == set((await team_ids(stack)).values())
    assert {service["status"] for service in page["contents"]} == {"active"}
    assert {service["organization_id"] for service in page["contents"]} == {
        await organisation_id(stack)
    }


async def test_pages_of_five_split_the_teams_into_three(stack: Stack) -> None:
    pages = [
        await get(stack, "/openreferral/services", page=number, per_page=5)
        for number in (1, 2, 3, 4)
    ]

    assert [page["size"] for page in pages] == [5, 5, 3, 0]
    assert {page["total_pages"] for page in pages} == {3}
    assert [page["first_page"] for page in pages] == [True, False, False, False]
    assert [page["last_page"] for page in pages] == [False, False, True, True]
    assert [page["empty"] for page in pages] == [False, False, False, True]
    ids = [service["id"] for page in pages for service in page["contents"]]
    assert len(ids) == len(set(ids)) == ACTIVE_TEAMS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "plmdt",
            {"PLMDT North 1", "PLMDT North 2", "PLMDT South 1", "PLMDT South 2", "PLMDT South 3"},
        ),
        ("TEAM SOUTH", {"Locality Integrated Team South"}),
        ("100%", set()),
    ],
)
async def test_text_finds_services_by_part_of_their_name(
    stack: Stack, text: str, expected: set[str]
) -> None:
    page = await get(stack, "/openreferral/services", text=text)

    assert {service["name"] for service in page["contents"]} == expected
    assert page["total_items"] == len(expected)


async def test_a_service_carries_its_capacity_hours_and_area(stack: Stack) -> None:
    updated = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
    await update_team(
        stack,
        "lit-north",
        capacity_available=3,
        capacity_maximum=12,
        capacity_unit="referrals",
        capacity_updated_at=updated,
    )
    service_id = (await team_ids(stack))["lit-north"]

    service = await get(stack, f"/openreferral/services/{service_id}")

    assert service["name"] == "Locality Integrated Team North"
    assert service["description"] == (
        "Locality integrated health and social care team serving North Wealdmoor"
    )
    assert service["url"] == "https://lit-north.wealdmoor.example/referrals"
    [capacity] = service["service_capacity"]
    assert (capacity["available"], capacity["maximum"], capacity["unit"]["name"]) == (
        3,
        12,
        "referrals",
    )
    assert capacity["service_id"] == service_id
    assert datetime.fromisoformat(capacity["updated"]) == updated
    assert [(s["byday"], s["opens_at"], s["closes_at"]) for s in service["schedules"]] == [
        (day, "08:00", "20:00") for day in ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    ]
    assert "bank holidays in England: 08:00-20:00" in service["schedules"][0]["description"]
    assert [area["name"] for area in service["service_areas"]] == ["XW1", "XW2", "XW3"]
    assert service["service_at_locations"] == []


async def test_a_county_wide_night_service_serves_every_district(stack: Stack) -> None:
    service_id = (await team_ids(stack))["ooh-county"]

    service = await get(stack, f"/openreferral/services/{service_id}")

    assert service["description"] == "Out-of-hours service serving the whole county"
    assert service["organization_id"] == await organisation_id(stack)
    assert service["service_capacity"] == []
    assert [(s["opens_at"], s["closes_at"]) for s in service["schedules"][:2]] == [
        ("00:00", "08:00"),
        ("20:00", "23:59"),
    ]
    assert len(service["schedules"]) == 14
    assert [area["name"] for area in service["service_areas"]] == [
        f"XW{n}" for n in (4, 5, 1, 2, 3, 6, 7, 8)
    ]


async def test_a_service_always_open_has_a_whole_day_every_day(stack: Stack) -> None:
    service_id = (await team_ids(stack))["cru-county"]

    service = await get(stack, f"/openreferral/services/{service_id}")

    assert {(s["opens_at"], s["closes_at"]) for s in service["schedules"]} == {("00:00", "23:59")}
    assert len(service["schedules"]) == 7


async def test_a_plmdt_is_found_at_its_practices(stack: Stack) -> None:
    service_id = (await team_ids(stack))["plmdt-north-2"]

    service = await get(stack, f"/openreferral/services/{service_id}")
    links = await get(stack, "/openreferral/service_at_locations", service_id=service_id)

    assert links["contents"] == service["service_at_locations"]
    assert links["total_items"] == 3
    assert {link["service_id"] for link in links["contents"]} == {service_id}
    assert [
        (
            link["location"]["external_identifier"],
            link["location"]["name"],
            link["location"]["addresses"][0]["postal_code"],
        )
        for link in links["contents"]
    ] == [
        ("M91003", "Kingsmead Practice", "XW2 1EF"),
        ("M91004", "Oakfield Health Centre", "XW2 7GH"),
        ("M91005", "Riverside Family Practice", "XW3 3JK"),
    ]
    assert all(link["location_id"] == link["location"]["id"] for link in links["contents"])


async def test_service_at_locations_cover_every_practice_once(stack: Stack) -> None:
    page = await get(stack, "/openreferral/service_at_locations", per_page=100)
    unknown = await get(stack, "/openreferral/service_at_locations", service_id=str(uuid.uuid4()))

    assert page["total_items"] == len(page["contents"]) == COVERED_PRACTICES
    practices = [link["location"]["external_identifier"] for link in page["contents"]]
    assert len(set(practices)) == COVERED_PRACTICES
    assert (unknown["total_items"], unknown["empty"], unknown["contents"]) == (0, True, [])


async def test_a_retired_team_is_no_longer_a_service(stack: Stack) -> None:
    service_id = (await team_ids(stack))["plmdt-south-3"]
    await update_team(stack, "plmdt-south-3", retired_at=stack.clock())

    async with stack.client("teams", "team-app") as teams:
        one = await teams.get(f"/openreferral/services/{service_id}")
        page = (await teams.get("/openreferral/services")).json()
        links = (await teams.get("/openreferral/service_at_locations")).json()

    assert one.status_code == 404
    assert one.json()["type"] == PROBLEM + "service-not-found"
    assert page["total_items"] == ACTIVE_TEAMS - 1
    assert links["total_items"] == COVERED_PRACTICES - 1


async def test_an_unknown_service_is_a_404_problem(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(f"/openreferral/services/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + "service-not-found"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/openreferral/services", {"page": "0"}, "page"),
        ("/openreferral/services", {"per_page": "0"}, "per_page"),
        ("/openreferral/services", {"per_page": "101"}, "per_page"),
        ("/openreferral/services", {"page": "first"}, "page"),
        ("/openreferral/services", {"text": "x" * 101}, "text"),
        ("/openreferral/services/not-a-uuid", {}, "id"),
        ("/openreferral/service_at_locations", {"service_id": "lit-north"}, "service_id"),
        ("/openreferral/service_at_locations", {"per_page": "101"}, "per_page"),
    ],
)
async def test_bad_parameters_are_a_422_problem(
    stack: Stack, path: str, params: dict[str, str], field: str
) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(path, params=params)

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "validation-failed"
    assert [error["field"] for error in response.json()["errors"]] == [field]


ENDPOINTS = [
    "/openreferral/services",
    f"/openreferral/services/{uuid.uuid4()}",
    "/openreferral/service_at_locations",
]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_every_endpoint_needs_a_token(stack: Stack, path: str) -> None:
    async with stack.raw("teams") as anonymous:
        response = await anonymous.get(path)

    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "authentication-required"


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_every_endpoint_needs_the_directory_read_scope(stack: Stack, path: str) -> None:
    async with stack.client("teams", "no-scopes") as client:
        response = await client.get(path)

    assert response.status_code == 403
    assert response.json()["type"] == PROBLEM + "insufficient-scope"


async def test_a_closed_team_is_a_temporarily_closed_service(stack: Stack) -> None:
    service_id = (await team_ids(stack))["lit-south"]
    await update_team(stack, "lit-south", operating_status="closed")

    service = await get(stack, f"/openreferral/services/{service_id}")

    assert service["status"] == "temporarily closed"
