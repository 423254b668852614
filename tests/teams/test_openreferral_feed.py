"""The Open Referral UK feed as an integrator first meets it: its root, who may read it, the
parameters it takes, its organization and its taxonomies.

Every answer read here is checked against the published HSDS 3.0 and UK profile schemas.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.stack import Stack, running_stack
from tests.teams.hsds import HSDS, UK_PROFILE, problems, read_feed

PROBLEM = "urn:spa-platform:problem:"
TERMS = 7 + 7 + 9  # team types, pathways, disciplines

# An id that names nothing, the same in every test process (the test ids must not differ).
UNKNOWN_ID = "0b7a8c3e-5d1f-4e2a-9c6b-000000000404"

ENDPOINTS = [
    "/openreferral/",
    "/openreferral/services",
    f"/openreferral/services/{UNKNOWN_ID}",
    "/openreferral/service_at_locations",
    f"/openreferral/service_at_locations/{UNKNOWN_ID}",
    "/openreferral/organizations",
    f"/openreferral/organizations/{UNKNOWN_ID}",
    "/openreferral/taxonomies",
    f"/openreferral/taxonomies/{UNKNOWN_ID}",
    "/openreferral/taxonomy_terms",
    f"/openreferral/taxonomy_terms/{UNKNOWN_ID}",
]


@pytest.fixture
async def open_stack(postgres_urls: dict[str, str], issuer_key_file: Path) -> AsyncIterator[Stack]:
    """The stack with the feed open to anonymous readers, as in the demo."""
    overrides = {"teams": {"openreferral_anonymous_read": True}}
    async with running_stack(postgres_urls, issuer_key_file, overrides=overrides) as stack:
        yield stack


async def test_the_root_names_the_hsds_version_and_the_uk_profile(stack: Stack) -> None:
    about = await read_feed(stack, "/")

    assert about["version"] == "3.0"
    assert about["profile"].startswith("https://github.com/OpenReferralUK/uk-profile")
    assert about["openapi_url"].endswith("/schema/openapi.json")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_every_endpoint_needs_a_token_by_default(stack: Stack, path: str) -> None:
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


async def test_an_open_feed_is_read_without_a_token(open_stack: Stack) -> None:
    about = await read_feed(open_stack, "/", client=None)
    services = await read_feed(open_stack, "/services", client=None)
    service = await read_feed(
        open_stack, "/services/{id}", client=None, id=services["contents"][0]["id"]
    )
    terms = await read_feed(open_stack, "/taxonomy_terms", client=None)

    assert about["version"] == "3.0"
    assert services["total_items"] == 13
    assert service["id"] == services["contents"][0]["id"]
    assert terms["total_items"] == TERMS


async def test_an_open_feed_still_checks_a_token_it_is_sent(open_stack: Stack) -> None:
    async with open_stack.raw("teams") as client:
        response = await client.get(
            "/openreferral/services", headers={"Authorization": "Bearer not-a-token"}
        )

    assert response.status_code == 401


async def test_a_token_is_asked_for_before_the_parameters_are_judged(stack: Stack) -> None:
    async with stack.raw("teams") as anonymous:
        response = await anonymous.get("/openreferral/services", params={"colour": "red"})

    assert response.status_code == 401


async def test_an_open_feed_opens_nothing_else(open_stack: Stack) -> None:
    async with open_stack.raw("teams") as anonymous:
        teams = await anonymous.get("/v1/teams")
        directory = await anonymous.get("/v1/directory")

    assert (teams.status_code, directory.status_code) == (401, 401)


@pytest.mark.parametrize(
    ("path", "params", "field", "reason"),
    [
        ("/openreferral/services", {"colour": "red"}, "colour", "not a parameter"),
        ("/openreferral/services", {"minimum_age": "65"}, "minimum_age", "no age range"),
        ("/openreferral/services", {"postcode": "XW1 2AB"}, "postcode", "not a parameter"),
        ("/openreferral/services/" + UNKNOWN_ID, {"full": "true"}, "full", "one form"),
        ("/openreferral/service_at_locations", {"proximity": "500"}, "proximity", "coordinates"),
        ("/openreferral/taxonomies", {"modified_after": "2026-01-01T00:00:00Z"}, "modified_after", "not a parameter"),
        ("/openreferral/", {"page": "1"}, "page", "not a parameter"),
    ],
)  # fmt: skip
async def test_a_parameter_the_operation_does_not_take_is_a_400_problem(
    stack: Stack, path: str, params: dict[str, str], field: str, reason: str
) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(path, params=params)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + "unknown-query-parameter"
    [error] = problem["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/openreferral/services", {"page": "0"}, "page"),
        ("/openreferral/services", {"per_page": "0"}, "per_page"),
        ("/openreferral/services", {"per_page": "101"}, "per_page"),
        ("/openreferral/services", {"page": "first"}, "page"),
        ("/openreferral/services", {"search": "x" * 101}, "search"),
        ("/openreferral/services", {"taxonomy_term_id": "rapid_response"}, "taxonomy_term_id"),
        ("/openreferral/services", {"day": "Monday"}, "day"),
        ("/openreferral/services", {"start_time": "8am"}, "start_time"),
        ("/openreferral/services", {"format": "ndjson"}, "format"),
        ("/openreferral/services/not-a-uuid", {}, "id"),
        ("/openreferral/service_at_locations", {"service_id": "lit-north"}, "service_id"),
        ("/openreferral/service_at_locations", {"postcode": "nowhere"}, "postcode"),
        ("/openreferral/taxonomy_terms", {"taxonomy_id": "pathways"}, "taxonomy_id"),
    ],
)
async def test_a_bad_value_is_a_422_problem(
    stack: Stack, path: str, params: dict[str, str], field: str
) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(path, params=params)

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "validation-failed"
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_json_is_the_one_format(stack: Stack) -> None:
    page = await read_feed(stack, "/services", format="json", per_page=1)

    assert page["size"] == 1


async def test_the_organization_provides_every_service(stack: Stack) -> None:
    organizations = await read_feed(stack, "/organizations")
    [listed] = organizations["contents"]

    organization = await read_feed(stack, "/organizations/{id}", id=listed["id"])
    services = await read_feed(stack, "/services", per_page=100)
    found = await read_feed(stack, "/organizations", search="wealdmoor county")
    missing = await read_feed(stack, "/organizations", search="elsewhere")

    assert listed["name"] == "Wealdmoor County Council and Community Health"
    assert listed["description"]
    assert {service["id"] for service in organization["services"]} == {
        service["id"] for service in services["contents"]
    }
    assert (found["total_items"], missing["total_items"]) == (1, 0)


async def test_an_unknown_organization_is_a_404_problem(stack: Stack) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(f"/openreferral/organizations/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM + "organization-not-found"


async def test_the_taxonomies_are_the_platforms_vocabularies(stack: Stack) -> None:
    taxonomies = await read_feed(stack, "/taxonomies")
    pathways = next(t for t in taxonomies["contents"] if t["name"] == "SPA platform pathways")

    one = await read_feed(stack, "/taxonomies/{id}", id=pathways["id"])
    terms = await read_feed(stack, "/taxonomy_terms", taxonomy_id=pathways["id"])

    assert [t["name"] for t in taxonomies["contents"]] == [
        "SPA platform team types",
        "SPA platform pathways",
        "SPA platform disciplines",
    ]
    assert one == pathways
    assert [term["code"] for term in terms["contents"]] == [
        "rapid_response",
        "reablement",
        "equipment",
        "routine_assessment",
        "case_management",
        "advice",
        "redirect_emergency",
    ]
    assert {term["taxonomy_id"] for term in terms["contents"]} == {pathways["id"]}


async def test_taxonomy_terms_come_a_page_at_a_time_and_one_by_one(stack: Stack) -> None:
    first = await read_feed(stack, "/taxonomy_terms", per_page=10)
    last = await read_feed(stack, "/taxonomy_terms", per_page=10, page=3)
    term = await read_feed(stack, "/taxonomy_terms/{id}", id=last["contents"][0]["id"])
    under_a_term = await read_feed(stack, "/taxonomy_terms", parent_id=term["id"])
    top = await read_feed(stack, "/taxonomy_terms", top_only="true", per_page=100)

    assert (first["total_items"], first["total_pages"], last["size"]) == (TERMS, 3, 3)
    assert term == last["contents"][0]
    # The vocabularies are flat: every term is at the top, and none is under another.
    assert (under_a_term["total_items"], top["total_items"]) == (0, TERMS)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [("taxonomies", "taxonomy-not-found"), ("taxonomy_terms", "taxonomy-term-not-found")],
)
async def test_an_unknown_taxonomy_or_term_is_a_404_problem(
    stack: Stack, kind: str, problem: str
) -> None:
    async with stack.client("teams", "team-app") as teams:
        response = await teams.get(f"/openreferral/{kind}/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM + problem


async def test_the_schema_check_refuses_what_the_standards_do_not_allow(stack: Stack) -> None:
    services = await read_feed(stack, "/services", per_page=1)
    service = await read_feed(stack, "/services/{id}", id=services["contents"][0]["id"])

    # HSDS has no null, a fixed list of statuses, and an address needs a street and a town.
    service["url"] = None
    service["status"] = "open"
    service["service_at_locations"] = [
        {
            "id": str(uuid.uuid4()),
            "location": {
                "id": str(uuid.uuid4()),
                "location_type": "physical",
                "addresses": [{"id": str(uuid.uuid4()), "postal_code": "XW1 2AB"}],
            },
        }
    ]
    found = problems(HSDS, "/services/{id}", service) + problems(
        UK_PROFILE, "/services/{id}", service
    )

    assert any("HSDS 3.0 at $.url" in problem for problem in found)
    assert any("Open Referral UK 3.0 at $.status" in problem for problem in found)
    assert any("'address_1' is a required property" in problem for problem in found)
