"""The Open Referral UK feed's services and where they work, over the demo directory.

Every answer read here is checked against the published HSDS 3.0 and UK profile schemas.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from services.teams.directory.loading import DEMO_DIRECTORY, load_directory, read_directory_file
from services.teams.directory.models import Organisation, Team
from tests.stack import Stack
from tests.teams.hsds import read_feed

ACTIVE_TEAMS = 13
COVERED_PRACTICES = 14  # every demo practice is covered by exactly one practice-linked team
PROBLEM = "urn:spa-platform:problem:"
URGENT_TEAMS = {
    "Locality Integrated Team North",
    "Integrated Team East 1",
    "Integrated Team East 2",
    "Locality Integrated Team South",
}


async def team_ids(stack: Stack) -> dict[str, str]:
    async with stack.client("teams", "team-app") as teams:
        listed = (await teams.get("/v1/teams")).json()["items"]
    return {team["code"]: team["id"] for team in listed}


async def update_team(stack: Stack, code: str, **values: Any) -> None:
    async with stack.apps["teams"].state.sessionmaker() as session, session.begin():
        await session.execute(update(Team).where(Team.code == code).values(**values))


async def organisation_id(stack: Stack) -> str:
    async with stack.apps["teams"].state.sessionmaker() as session:
        return str(await session.scalar(select(Organisation.id)))


async def names(stack: Stack, **params: Any) -> set[str]:
    page = await read_feed(stack, "/services", per_page=100, **params)
    assert page["total_items"] == len(page["contents"])
    return {service["name"] for service in page["contents"]}


async def term_id(stack: Stack, code: str) -> str:
    terms = await read_feed(stack, "/taxonomy_terms", search=code)
    [term] = [term for term in terms["contents"] if term["code"] == code]
    return str(term["id"])


async def test_one_page_holds_every_active_team(stack: Stack) -> None:
    page = await read_feed(stack, "/services")

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
        await read_feed(stack, "/services", page=number, per_page=5) for number in (1, 2, 3, 4)
    ]

    assert [page["size"] for page in pages] == [5, 5, 3, 0]
    assert {page["total_pages"] for page in pages} == {3}
    assert [page["first_page"] for page in pages] == [True, False, False, False]
    assert [page["last_page"] for page in pages] == [False, False, True, True]
    assert [page["empty"] for page in pages] == [False, False, False, True]
    ids = [service["id"] for page in pages for service in page["contents"]]
    assert len(ids) == len(set(ids)) == ACTIVE_TEAMS


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        (
            "plmdt",
            {"PLMDT North 1", "PLMDT North 2", "PLMDT South 1", "PLMDT South 2", "PLMDT South 3"},
        ),
        ("TEAM SOUTH", {"Locality Integrated Team South"}),
        # What a team does, not only its name: the pathways and disciplines it is described by.
        ("reablement", URGENT_TEAMS),
        ("speech and language", URGENT_TEAMS),
        ("100%", set()),
    ],
)
async def test_search_finds_services_by_name_or_by_what_they_do(
    stack: Stack, search: str, expected: set[str]
) -> None:
    assert await names(stack, search=search) == expected


async def test_the_older_text_parameter_still_searches(stack: Stack) -> None:
    assert await names(stack, text="TEAM SOUTH") == {"Locality Integrated Team South"}


async def test_a_taxonomy_term_finds_the_services_it_describes(stack: Stack) -> None:
    rapid_response = await term_id(stack, "rapid_response")
    plmdt = await term_id(stack, "plmdt")

    assert await names(stack, taxonomy_term_id=rapid_response) == URGENT_TEAMS
    assert len(await names(stack, taxonomy_term_id=plmdt)) == 5
    assert await names(stack, taxonomy_term_id=str(uuid.uuid4())) == set()


async def test_a_taxonomy_finds_the_services_any_of_its_terms_describe(stack: Stack) -> None:
    taxonomies = await read_feed(stack, "/taxonomies")
    ids = {taxonomy["name"]: taxonomy["id"] for taxonomy in taxonomies["contents"]}

    every_team = await names(stack, taxonomy_id=ids["SPA platform team types"])
    staffed = await names(stack, taxonomy_id=ids["SPA platform disciplines"])

    assert len(every_team) == ACTIVE_TEAMS
    # The county contact centre lists no disciplines in the demo directory.
    assert every_team - staffed == {"Wealdmoor County Contact Centre"}


async def test_the_organization_finds_its_services(stack: Stack) -> None:
    assert len(await names(stack, organization_id=await organisation_id(stack))) == ACTIVE_TEAMS
    assert await names(stack, organization_id=str(uuid.uuid4())) == set()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # Open on a Saturday: the urgent teams, the contact centre, the night service, the CRU.
        (
            {"day": "SA"},
            URGENT_TEAMS
            | {
                "Wealdmoor County Contact Centre",
                "Wealdmoor Out-of-Hours Service",
                "Wealdmoor Central Referral Unit",
            },
        ),
        ({"start_time": "20:00"}, {"Wealdmoor Out-of-Hours Service"}),
        (
            {"day": "SA", "end_time": "13:00"},
            {"Wealdmoor County Contact Centre", "Wealdmoor Out-of-Hours Service"},
        ),
        ({"day": "SU", "start_time": "08:30", "end_time": "17:00"}, set()),
    ],
)
async def test_day_and_times_find_services_by_their_schedules(
    stack: Stack, params: dict[str, str], expected: set[str]
) -> None:
    assert await names(stack, **params) == expected


async def test_modified_after_lists_only_the_services_changed_since(any_stack: Stack) -> None:
    stack = any_stack  # PostgreSQL and SQLite compare the times alike
    loaded = (await read_feed(stack, "/services/{id}", id=(await team_ids(stack))["lit-north"]))[
        "last_modified"
    ]
    since = stack.clock().isoformat()
    assert await names(stack, modified_after=since) == set()

    async with stack.client("teams", "team-app") as teams:
        response = await teams.put(
            "/v1/teams/lit-north/capacity",
            json={"available": 2, "maximum": 10, "unit": "referrals"},
        )
    assert response.status_code == 200, response.text

    page = await read_feed(stack, "/services", modified_after=since)
    [service] = page["contents"]
    assert service["name"] == "Locality Integrated Team North"
    assert datetime.fromisoformat(service["last_modified"]) > datetime.fromisoformat(loaded)
    assert datetime.fromisoformat(service["last_modified"]) >= datetime.fromisoformat(since)


async def test_a_renamed_practice_changes_the_services_that_cover_it(stack: Stack) -> None:
    since = stack.clock().isoformat()
    practice = {"ods_code": "M91002", "name": "Harrow Lane Surgery", "postcode": "XW1 4CD"}

    async with stack.client("teams", "fuzzer") as admin:
        response = await admin.put(
            "/v1/directory/practices/M91002", json={**practice, "locality": "north"}
        )
    assert response.status_code == 200, response.text

    assert await names(stack, modified_after=since) == {"PLMDT North 1"}
    links = await read_feed(stack, "/service_at_locations", modified_after=since)
    assert {link["location"]["name"] for link in links["contents"]} == {
        "Millbrook Surgery",
        "Harrow Lane Surgery",
    }


async def test_a_team_covering_another_practice_is_changed(stack: Stack) -> None:
    since = stack.clock().isoformat()
    async with stack.client("teams", "fuzzer") as admin:
        directory = (await admin.get("/v1/directory")).json()
        [team] = [team for team in directory["teams"] if team["code"] == "plmdt-south-3"]
        team["practices"] = []
        changed = await admin.put("/v1/directory/teams/plmdt-south-3", json=team)
    assert changed.status_code == 200, changed.text

    assert await names(stack, modified_after=since) == {"PLMDT South 3"}


async def test_a_renamed_locality_changes_its_services_and_the_county_wide_ones(
    stack: Stack,
) -> None:
    since = stack.clock().isoformat()
    async with stack.client("teams", "fuzzer") as admin:
        directory = (await admin.get("/v1/directory")).json()
        [south] = [row for row in directory["localities"] if row["code"] == "south"]
        changed = await admin.put(
            "/v1/directory/localities/south", json={**south, "name": "Southern Wealdmoor"}
        )
    assert changed.status_code == 200, changed.text

    assert await names(stack, modified_after=since) == {
        "Locality Integrated Team South",
        "PLMDT South 1",
        "PLMDT South 2",
        "PLMDT South 3",
        # County-wide services list every locality's districts.
        "Wealdmoor Community Equipment Service",
        "Wealdmoor Central Referral Unit",
        "Wealdmoor County Contact Centre",
        "Wealdmoor Out-of-Hours Service",
    }


async def test_loading_the_same_directory_again_changes_no_service(stack: Stack) -> None:
    since = stack.clock().isoformat()
    async with stack.apps["teams"].state.sessionmaker() as session, session.begin():
        directory = read_directory_file(DEMO_DIRECTORY)
        await load_directory(session, directory, actor="tests", now=stack.clock())

    assert await names(stack, modified_after=since) == set()


async def test_a_modified_after_without_its_offset_is_a_422_problem(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(
            "/openreferral/services", params={"modified_after": "2026-11-24T10:00:00"}
        )

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["modified_after"]


async def test_a_service_carries_its_capacity_hours_area_and_terms(stack: Stack) -> None:
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

    service = await read_feed(stack, "/services/{id}", id=service_id)

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
    terms = [(a["link_type"], a["taxonomy_term"]["code"]) for a in service["attributes"]]
    assert terms[:3] == [
        ("team_type", "locality_integrated"),
        ("pathway", "rapid_response"),
        ("pathway", "reablement"),
    ]
    assert [code for kind, code in terms if kind == "discipline"][:2] == [
        "social_care",
        "community_nursing",
    ]
    assert {a["link_id"] for a in service["attributes"]} == {service_id}


async def test_a_service_nests_the_organization_that_provides_it(stack: Stack) -> None:
    service_id = (await team_ids(stack))["plmdt-south-1"]

    service = await read_feed(stack, "/services/{id}", id=service_id)

    assert service["organization"]["id"] == service["organization_id"]
    assert service["organization"]["name"] == "Wealdmoor County Council and Community Health"


async def test_a_service_without_an_endpoint_or_capacity_leaves_them_out(stack: Stack) -> None:
    service_id = (await team_ids(stack))["ooh-county"]

    service = await read_feed(stack, "/services/{id}", id=service_id)

    # HSDS has no null: what the directory does not hold is absent.
    assert "url" not in service
    assert service["service_capacity"] == []
    assert service["description"] == "Out-of-hours service serving the whole county"
    assert service["organization_id"] == await organisation_id(stack)
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

    service = await read_feed(stack, "/services/{id}", id=service_id)

    assert {(s["opens_at"], s["closes_at"]) for s in service["schedules"]} == {("00:00", "23:59")}
    assert len(service["schedules"]) == 7


async def test_a_plmdt_is_found_at_its_practices(stack: Stack) -> None:
    service_id = (await team_ids(stack))["plmdt-north-2"]

    service = await read_feed(stack, "/services/{id}", id=service_id)
    links = await read_feed(stack, "/service_at_locations", service_id=service_id)

    assert links["contents"] == service["service_at_locations"]
    assert links["total_items"] == 3
    assert {link["service_id"] for link in links["contents"]} == {service_id}
    assert [
        (
            link["location"]["external_identifier"],
            link["location"]["name"],
            link["location"]["description"],
        )
        for link in links["contents"]
    ] == [
        ("M91003", "Kingsmead Practice", "GP practice M91003, postcode XW2 1EF"),
        ("M91004", "Oakfield Health Centre", "GP practice M91004, postcode XW2 7GH"),
        ("M91005", "Riverside Family Practice", "GP practice M91005, postcode XW3 3JK"),
    ]
    assert all(link["location_id"] == link["location"]["id"] for link in links["contents"])
    assert all(link["contacts"] == [] for link in links["contents"])


async def test_a_model_b_team_names_its_linked_worker_at_each_practice(stack: Stack) -> None:
    service_id = (await team_ids(stack))["int-east-1"]

    service = await read_feed(stack, "/services/{id}", id=service_id)

    workers = {
        link["location"]["external_identifier"]: [c["name"] for c in link["contacts"]]
        for link in service["service_at_locations"]
    }
    assert workers == {
        "M92001": ["Linked worker for Eastgate (community matron)"],
        "M92002": ["Linked worker for Saltmarsh (social worker)"],
        "M92003": ["Linked worker for Heronsway (district nurse)"],
    }
    link = service["service_at_locations"][0]
    assert link["contacts"][0]["service_at_location_id"] == link["id"]
    assert link["contacts"][0]["title"] == "Linked worker"


async def test_service_at_locations_cover_every_practice_once(stack: Stack) -> None:
    page = await read_feed(stack, "/service_at_locations", per_page=100)
    unknown = await read_feed(stack, "/service_at_locations", service_id=str(uuid.uuid4()))

    assert page["total_items"] == len(page["contents"]) == COVERED_PRACTICES
    practices = [link["location"]["external_identifier"] for link in page["contents"]]
    assert len(set(practices)) == COVERED_PRACTICES
    assert (unknown["total_items"], unknown["empty"], unknown["contents"]) == (0, True, [])


async def test_a_postcode_finds_the_practices_of_the_teams_serving_it(stack: Stack) -> None:
    north = await read_feed(stack, "/service_at_locations", postcode="xw2 9zz")
    nowhere = await read_feed(stack, "/service_at_locations", postcode="ZZ99 3VZ")

    assert {link["location"]["external_identifier"] for link in north["contents"]} == {
        f"M9100{n}" for n in range(1, 6)
    }
    assert nowhere["total_items"] == 0


async def test_one_service_at_a_location_is_read_by_its_id(stack: Stack) -> None:
    links = await read_feed(stack, "/service_at_locations", per_page=1)
    [first] = links["contents"]

    link = await read_feed(stack, "/service_at_locations/{id}", id=first["id"])
    async with stack.client("teams", "team-app") as teams:
        unknown = await teams.get(f"/openreferral/service_at_locations/{uuid.uuid4()}")

    assert link == first
    assert unknown.status_code == 404
    assert unknown.json()["type"] == PROBLEM + "service-at-location-not-found"


async def test_a_retired_team_is_no_longer_a_service(stack: Stack) -> None:
    service_id = (await team_ids(stack))["plmdt-south-3"]
    await update_team(stack, "plmdt-south-3", retired_at=stack.clock())

    async with stack.client("teams", "team-app") as teams:
        one = await teams.get(f"/openreferral/services/{service_id}")
    page = await read_feed(stack, "/services")
    links = await read_feed(stack, "/service_at_locations")

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


async def test_a_closed_team_is_a_temporarily_closed_service(stack: Stack) -> None:
    service_id = (await team_ids(stack))["lit-south"]
    await update_team(stack, "lit-south", operating_status="closed")

    service = await read_feed(stack, "/services/{id}", id=service_id)

    assert service["status"] == "temporarily closed"
