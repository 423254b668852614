"""The directory admin API: every change is checked as a whole directory and versioned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.shared import pagination
from services.shared.db import create_engine, create_sessionmaker
from services.spa.identity import service as identity
from tests.stack import MORNING, ClientSpec, SettableClock, Stack

PROBLEM = "urn:spa-platform:problem:"
ADMIN = ClientSpec(
    "directory-admin",
    ["directory:admin", "directory:read"],
    ["teams"],
    secret="directory-admin-secret-0123",
)


async def _register(spa_url: str, spec: ClientSpec) -> None:
    engine = create_engine(spa_url, clock=SettableClock(MORNING))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await identity.register_client(
                session,
                client_id=spec.client_id,
                name=spec.client_id,
                secret=spec.secret,
                scopes=spec.scopes,
                audiences=spec.audiences,
                replace=True,
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def admin_client(postgres_urls: dict[str, str]) -> ClientSpec:
    """A client with directory:admin; the shared CLIENTS list has none."""
    asyncio.run(_register(postgres_urls["spa"], ADMIN))
    return ADMIN


@pytest.fixture
async def admin(stack: Stack, admin_client: ClientSpec) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.raw("spa") as spa:
        response = await spa.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(admin_client.client_id, admin_client.secret),
        )
    assert response.status_code == 200, response.text
    async with stack.raw("teams") as teams:
        teams.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        yield teams


async def directory(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/v1/directory")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def admin_changes(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """The changes the admin client made (the demo load's are by "tests"), newest first."""
    response = await admin.get("/v1/directory/changes", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [item for item in response.json()["items"] if item["actor"] == ADMIN.client_id]


def entry(body: dict[str, Any], section: str, code: str) -> dict[str, Any]:
    key = "ods_code" if section == "practices" else "code"
    found: dict[str, Any] = next(item for item in body[section] if item[key] == code)
    return found


def index_without(body: dict[str, Any], section: str, removed: str, code: str) -> int:
    """Where ``code`` sits in ``section`` once ``removed`` is gone, as an error names it."""
    key = "ods_code" if section == "practices" else "code"
    codes = [item[key] for item in body[section] if item[key] != removed]
    return codes.index(code)


def plmdt(code: str, *ods_codes: str, **overrides: Any) -> dict[str, Any]:
    """A PLMDT in north; without hours it is always open, so routing never skips it."""
    team: dict[str, Any] = {
        "code": code,
        "name": f"PLMDT {code}",
        "type": "plmdt",
        "locality": "north",
        "backup": "lit-north",
        "practices": [{"ods_code": ods_code} for ods_code in ods_codes],
        "pathways": ["routine_assessment", "case_management"],
    }
    team.update(overrides)
    return team


def practice(ods_code: str, **overrides: Any) -> dict[str, Any]:
    body = {"ods_code": ods_code, "name": "Newfield Surgery", "postcode": "XW3 9ZZ"}
    return {**body, "locality": "north", **overrides}


def assert_error(problem: dict[str, Any], field: str, reason_fragment: str) -> None:
    assert any(
        error["field"] == field and reason_fragment in error["reason"]
        for error in problem["errors"]
    ), f"no error on {field!r} mentioning {reason_fragment!r} in {problem['errors']}"


# --- The whole directory -----------------------------------------------------------------------


async def test_the_exported_directory_loads_back_without_a_change(
    admin: httpx.AsyncClient,
) -> None:
    exported = await directory(admin)

    response = await admin.put("/v1/directory", json=exported)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "localities": len(exported["localities"]),
        "practices": len(exported["practices"]),
        "teams": len(exported["teams"]),
        "changes": 0,
    }
    assert await directory(admin) == exported
    assert await admin_changes(admin) == []


async def test_a_whole_directory_load_records_each_change(admin: httpx.AsyncClient) -> None:
    edited = await directory(admin)
    entry(edited, "localities", "south")["name"] = "South Wealdmoor and the Downs"
    edited["teams"].remove(entry(edited, "teams", "plmdt-south-3"))

    response = await admin.put("/v1/directory", json=edited)

    assert response.status_code == 200, response.text
    assert response.json()["changes"] == 2
    changes = {(c["entity_code"], c["action"]) for c in await admin_changes(admin)}
    assert changes == {("south", "updated"), ("plmdt-south-3", "retired")}


async def test_an_inconsistent_whole_directory_changes_nothing(admin: httpx.AsyncClient) -> None:
    before = await directory(admin)
    edited = await directory(admin)
    entry(edited, "localities", "north")["name"] = "Renamed North"
    entry(edited, "teams", "plmdt-north-2")["backup"] = "lit-nowhere"

    response = await admin.put("/v1/directory", json=edited)

    assert response.status_code == 422
    i = [team["code"] for team in edited["teams"]].index("plmdt-north-2")
    assert_error(response.json(), f"teams.{i}.backup", "no active team 'lit-nowhere'")
    assert await directory(admin) == before


# --- Creating, replacing and retiring entries ---------------------------------------------------


async def test_a_new_plmdt_for_an_uncovered_practice_is_where_routing_sends_it(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    query = {"practice": "M91006", "pathway": "case_management"}
    added = await admin.post("/v1/directory/practices", json=practice("m91006"))
    async with stack.client("teams", "team-app") as team_app:
        uncovered = (await team_app.get("/v1/resolve", params=query)).json()

        created = await admin.post("/v1/directory/teams", json=plmdt("plmdt-north-3", "M91006"))
        resolved = await team_app.get("/v1/resolve", params=query)

    assert added.status_code == 201, added.text
    assert added.json()["ods_code"] == "M91006"
    assert "practice_located" in [step["code"] for step in uncovered["explanation"]]
    assert (uncovered["team"] or {}).get("code") != "plmdt-north-3"
    assert created.status_code == 201, created.text
    assert created.json() == {
        **plmdt("plmdt-north-3", "M91006"),
        "practices": [{"ods_code": "M91006", "linked_worker": None}],
        "disciplines": [],
        "hours": None,
        "endpoint_url": None,
    }
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["team"]["code"] == "plmdt-north-3"
    assert [(c["entity_code"], c["action"]) for c in await admin_changes(admin)] == [
        ("plmdt-north-3", "created"),
        ("M91006", "created"),
    ]


async def test_renaming_a_team_records_one_change_with_before_and_after(
    admin: httpx.AsyncClient,
) -> None:
    team = entry(await directory(admin), "teams", "lit-south")
    renamed = {**team, "name": "Locality Integrated Team South and Downs"}

    response = await admin.put("/v1/directory/teams/lit-south", json=renamed)

    assert response.status_code == 200, response.text
    assert response.json() == renamed
    [change] = await admin_changes(admin)
    assert change["action"] == "updated"
    assert (change["entity_type"], change["entity_code"]) == ("team", "lit-south")
    assert change["before"] == team
    assert change["after"] == renamed
    assert change["actor"] == "directory-admin"


async def test_a_locality_and_its_practice_come_and_go(admin: httpx.AsyncClient) -> None:
    west = {"code": "west", "name": "West Wealdmoor", "operating_model": "B"}

    created = await admin.post("/v1/directory/localities", json=west)
    added = await admin.post("/v1/directory/practices", json=practice("M94001", locality="west"))
    moved = await admin.put(
        "/v1/directory/practices/m94001", json=practice("M94001", locality="north")
    )
    retired_locality = await admin.post("/v1/directory/localities/west/retire")
    retired_practice = await admin.post("/v1/directory/practices/M94001/retire")

    assert [r.status_code for r in (created, added, moved, retired_locality, retired_practice)] == [
        201,
        201,
        200,
        200,
        200,
    ]
    assert created.json() == {
        **west,
        "pathway_team_types": None,
        "postcode_districts": [],
        "out_of_hours": None,
        "time_critical_pathways": ["rapid_response"],
    }
    assert moved.json()["locality"] == "north"
    assert retired_practice.json() == moved.json()
    exported = await directory(admin)
    assert "west" not in [locality["code"] for locality in exported["localities"]]
    assert "M94001" not in [item["ods_code"] for item in exported["practices"]]
    assert [(c["entity_code"], c["action"]) for c in await admin_changes(admin)] == [
        ("M94001", "retired"),
        ("west", "retired"),
        ("M94001", "updated"),
        ("M94001", "created"),
        ("west", "created"),
    ]


async def test_a_locality_decides_which_pathways_go_out_of_hours(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    evening = {"practice": "M91001", "pathway": "reablement", "at": "2026-11-24T22:00:00Z"}
    north = entry(await directory(admin), "localities", "north")
    async with stack.client("teams", "team-app") as team_app:
        waits = (await team_app.get("/v1/resolve", params=evening)).json()
        changed = await admin.put(
            "/v1/directory/localities/north",
            json={**north, "time_critical_pathways": ["rapid_response", "reablement"]},
        )
        goes = (await team_app.get("/v1/resolve", params=evening)).json()

    assert waits["team"]["code"] == "lit-north"
    assert changed.status_code == 200, changed.text
    assert goes["team"]["code"] == "ooh-county"
    [change] = await admin_changes(admin)
    assert change["before"]["time_critical_pathways"] == ["rapid_response"]
    assert change["after"]["time_critical_pathways"] == ["rapid_response", "reablement"]


async def test_a_time_critical_pathway_that_goes_to_no_team_is_refused(
    admin: httpx.AsyncClient,
) -> None:
    before = await directory(admin)
    north = {**entry(before, "localities", "north"), "time_critical_pathways": ["advice"]}

    response = await admin.put("/v1/directory/localities/north", json=north)

    assert response.status_code == 422, response.text
    i = [locality["code"] for locality in before["localities"]].index("north")
    assert_error(
        response.json(), f"localities.{i}.time_critical_pathways.0", "advice goes to no team"
    )
    assert await directory(admin) == before


async def test_retiring_a_team_no_one_refers_to_takes_it_out_of_service(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    team = entry(await directory(admin), "teams", "plmdt-south-3")

    response = await admin.post("/v1/directory/teams/plmdt-south-3/retire")

    assert response.status_code == 200, response.text
    assert response.json() == team
    async with stack.client("teams", "team-app") as team_app:
        active = [item["code"] for item in (await team_app.get("/v1/teams")).json()["items"]]
    assert "plmdt-south-3" not in active
    assert "lit-south" in active
    [change] = await admin_changes(admin, entity_code="plmdt-south-3")
    assert (change["action"], change["before"], change["after"]) == ("retired", team, None)


@pytest.mark.parametrize(
    ("path", "section", "removed", "referrer", "field", "reason"),
    [
        ("teams/lit-north", "teams", "lit-north", "plmdt-north-1", "backup", "'lit-north'"),
        (
            "teams/ooh-county",
            "localities",
            "ooh-county",
            "east",
            "out_of_hours",
            "'ooh-county'",
        ),
        ("practices/M91001", "teams", "M91001", "plmdt-north-1", "practices.0", "M91001"),
        ("localities/north", "practices", "north", "M91001", "locality", "'north'"),
    ],
)
async def test_retiring_an_entry_still_referred_to_is_refused_naming_the_reference(
    admin: httpx.AsyncClient,
    path: str,
    section: str,
    removed: str,
    referrer: str,
    field: str,
    reason: str,
) -> None:
    before = await directory(admin)

    response = await admin.post(f"/v1/directory/{path}/retire")

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == PROBLEM + "invalid-directory"
    i = index_without(before, section, removed, referrer)
    assert_error(problem, f"{section}.{i}.{field}", reason)
    assert await directory(admin) == before
    assert await admin_changes(admin) == []


async def test_changes_made_at_once_both_land(admin: httpx.AsyncClient) -> None:
    exported = await directory(admin)
    renamed = {
        code: {**entry(exported, "teams", code), "name": f"Renamed {code}"}
        for code in ("lit-north", "lit-south")
    }

    responses = await asyncio.gather(
        *(admin.put(f"/v1/directory/teams/{code}", json=body) for code, body in renamed.items())
    )

    assert [response.status_code for response in responses] == [200, 200]
    after = await directory(admin)
    assert [entry(after, "teams", code) for code in renamed] == list(renamed.values())
    assert len(await admin_changes(admin)) == 2


# --- Refused changes ---------------------------------------------------------------------------


async def test_adding_a_code_already_in_use_is_a_conflict(admin: httpx.AsyncClient) -> None:
    team = await admin.post("/v1/directory/teams", json=plmdt("plmdt-north-1"))
    practice_again = await admin.post("/v1/directory/practices", json=practice("M91001"))

    assert (team.status_code, practice_again.status_code) == (409, 409)
    assert team.json()["type"] == PROBLEM + "directory-entry-exists"
    assert "plmdt-north-1" in team.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/v1/directory/teams/plmdt-nowhere"), ("post", "/v1/directory/teams/x/retire")],
)
async def test_changing_a_missing_entry_is_not_found(
    admin: httpx.AsyncClient, method: str, path: str
) -> None:
    body = plmdt(path.split("/")[4])
    response = await admin.request(method, path, json=body if method == "put" else None)

    assert response.status_code == 404, response.text
    assert response.json()["type"] == PROBLEM + "directory-entry-not-found"


async def test_the_body_code_must_be_the_path_code(admin: httpx.AsyncClient) -> None:
    before = await directory(admin)
    body = {**entry(before, "teams", "lit-north"), "name": "Renamed"}

    response = await admin.put("/v1/directory/teams/lit-south", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + "directory-entry-code-mismatch"
    assert response.json()["errors"] == [
        {"in": "body", "field": "code", "reason": "differs from the path"}
    ]
    assert await directory(admin) == before


async def test_an_invalid_ods_code_is_refused_naming_the_field(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/directory/practices", json=practice("M9-1005!"))

    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + "validation-failed"
    assert_error(response.json(), "ods_code", "ODS code")
    assert "M9-1005!" not in response.text


async def test_an_unknown_locality_is_refused_naming_the_field(admin: httpx.AsyncClient) -> None:
    before = await directory(admin)

    response = await admin.post("/v1/directory/practices", json=practice("M94001", locality="x"))

    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + "invalid-directory"
    new_entry = len(before["practices"])
    assert_error(response.json(), f"practices.{new_entry}.locality", "no active locality 'x'")
    assert await directory(admin) == before


async def test_a_backup_cycle_is_refused(admin: httpx.AsyncClient) -> None:
    before = await directory(admin)
    body = {**entry(before, "teams", "lit-north"), "backup": "plmdt-north-1"}

    response = await admin.put("/v1/directory/teams/lit-north", json=body)

    assert response.status_code == 422, response.text
    assert_error(response.json(), "teams", "the backup chain from lit-north returns to itself")
    assert await directory(admin) == before


async def test_a_practice_covered_by_two_plmdts_is_refused(admin: httpx.AsyncClient) -> None:
    before = await directory(admin)

    response = await admin.post("/v1/directory/teams", json=plmdt("plmdt-north-3", "M91001"))

    assert response.status_code == 422, response.text
    new_entry = len(before["teams"])
    assert_error(
        response.json(),
        f"teams.{new_entry}.practices.0",
        "M91001 is already covered by plmdt team plmdt-north-1",
    )
    assert await directory(admin) == before


# --- Who may do what ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/directory"),
        ("get", "/v1/directory/changes"),
        ("post", "/v1/directory/teams/plmdt-south-3/retire"),
    ],
)
async def test_every_operation_needs_a_token(stack: Stack, method: str, path: str) -> None:
    async with stack.raw("teams") as anonymous:
        response = await anonymous.request(method, path)

    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "authentication-required"


async def test_a_reader_can_read_but_not_change_the_directory(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    async with stack.client("teams", "team-app") as team_app:
        read = await team_app.get("/v1/directory")
        history = await team_app.get("/v1/directory/changes")
        write = await team_app.post("/v1/directory/teams/plmdt-south-3/retire")

    assert (read.status_code, history.status_code) == (200, 200)
    assert write.status_code == 403
    assert write.json()["type"] == PROBLEM + "insufficient-scope"
    assert "directory:admin" in write.json()["detail"]
    assert "plmdt-south-3" in [team["code"] for team in (await directory(admin))["teams"]]


# --- The version history -----------------------------------------------------------------------


async def test_changes_page_newest_first_and_filter(admin: httpx.AsyncClient) -> None:
    exported = await directory(admin)
    renamed = ["lit-north", "lit-south", "cru-county"]
    for code in renamed:
        body = {**entry(exported, "teams", code), "name": f"Renamed {code}"}
        assert (await admin.put(f"/v1/directory/teams/{code}", json=body)).status_code == 200

    first = (await admin.get("/v1/directory/changes", params={"limit": 2})).json()
    second = (
        await admin.get(
            "/v1/directory/changes", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    lit_south = (
        await admin.get(
            "/v1/directory/changes", params={"entity_type": "team", "entity_code": "lit-south"}
        )
    ).json()
    localities = await admin.get("/v1/directory/changes", params={"entity_type": "locality"})

    assert [item["entity_code"] for item in first["items"]] == ["cru-county", "lit-south"]
    assert [item["entity_code"] for item in second["items"]] == ["lit-north", "plmdt-south-3"]
    assert second["items"][1]["actor"] == "tests", "the demo load comes before"
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert [item["action"] for item in lit_south["items"]] == ["updated", "created"]
    assert lit_south["next_cursor"] is None
    codes = [item["entity_code"] for item in localities.json()["items"]]
    assert sorted(codes) == ["east", "north", "south"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"entity_type": "pharmacy"}])
async def test_bad_history_queries_are_refused(
    admin: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await admin.get("/v1/directory/changes", params=params)

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "validation-failed"


async def test_a_cursor_not_given_out_by_the_history_is_refused(admin: httpx.AsyncClient) -> None:
    audit_cursor = pagination.encode("audit", (1,))
    for cursor in ("not-a-cursor", audit_cursor):
        response = await admin.get("/v1/directory/changes", params={"cursor": cursor})

        assert response.status_code == 400
        assert response.json()["type"] == PROBLEM + "invalid-cursor"
