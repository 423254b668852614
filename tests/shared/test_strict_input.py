"""Input no service can store or mean is refused before any handler, the same way in all three
services: text holding U+0000 or a lone surrogate (422 naming where), integers beyond 64 bits,
dates that are date-times, bodies that are not UTF-8 (or say they are not), and a repeated
Idempotency-Key. Nothing of a refused request is stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from services.routing.rule_sets.models import RuleSetVersion
from services.spa.referrals.models import Referral
from services.teams.directory.models import Locality
from tests import factories
from tests.stack import Stack

PROBLEM = "urn:spa-platform:problem:"
RULES = yaml.safe_load(
    resources.files("services.routing.rules").joinpath("default_rules.yaml").read_text("utf-8")
)
NUL, LONE_SURROGATE = "\u0000", "\ud800"
JSON = {"content-type": "application/json"}

# What a test sends, and the number of rows that would hold it had it been stored.
Sent = tuple[httpx.Response, int]


def _encoded(body: Any) -> bytes:
    """JSON as a client library sends it: non-ASCII escaped, so a lone surrogate survives."""
    return json.dumps(body).encode()


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return body


async def _refer(stack: Stack, body: dict[str, Any], **headers: str) -> Sent:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", content=_encoded(body), headers=JSON | headers)
    return response, await stack.count_rows("spa", Referral)


def _intake(path: str, **extra: Any) -> Callable[[Stack, str], Awaitable[Sent]]:
    async def send(stack: Stack, text: str) -> Sent:
        body = _with(factories.referral(**extra), path, f"Ada{text}")
        return await _refer(stack, body)

    return send


async def _referral_id(stack: Stack) -> str:
    async with stack.client("spa", "gp-system") as spa:
        created = await spa.post("/v1/referrals", json=factories.referral())
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _cancellation(stack: Stack, text: str) -> Sent:
    referral_id = await _referral_id(stack)
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            f"/v1/referrals/{referral_id}/cancellation",
            content=_encoded({"reason": "other", "note": f"Moved{text}"}),
            headers=JSON,
        )
        status = (await spa.get(f"/v1/referrals/{referral_id}")).json()["status"]
    return response, int(status == "cancelled")


async def _decline_note(stack: Stack, text: str) -> Sent:
    async with stack.client("teams", "team-app") as team:
        teams = (await team.get("/v1/teams")).json()["items"]
        team_id = next(item["id"] for item in teams if item["code"] == "lit-south")
        async with stack.client("teams", "spa-service") as spa:
            offered = await spa.post(
                "/v1/assignments",
                json={
                    "referral_id": str(uuid.uuid4()),
                    "team_id": team_id,
                    "kind": "care",
                    "pathway": "reablement",
                    "urgency": "urgent",
                },
            )
        assignment_id = offered.json()["id"]
        response = await team.post(
            f"/v1/assignments/{assignment_id}/decline",
            content=_encoded({"reason": "not_appropriate", "note": f"Not{text}ours"}),
            headers=JSON,
        )
        caseload = (await team.get("/v1/teams/lit-south/caseload")).json()["items"]
    declined = [item for item in caseload if item["declined_at"] is not None]
    return response, len(declined)


def _token_form(field: str) -> Callable[[Stack, str], Awaitable[Sent]]:
    async def send(stack: Stack, text: str) -> Sent:
        form = {"grant_type": "client_credentials", "client_id": "gp-system"}
        form["client_secret"] = "test-secret-0123456789"
        form[field] = f"{form[field]}{text}"
        async with stack.raw("spa") as spa:
            return await spa.post("/oauth/token", data=form), 0

    return send


async def _locality(stack: Stack, text: str) -> Sent:
    before = await stack.count_rows("teams", Locality)
    body = {"code": "strict-east", "name": f"East{text}", "operating_model": "A"}
    async with stack.client("teams", "fuzzer") as admin:
        response = await admin.post(
            "/v1/directory/localities", content=_encoded(body), headers=JSON
        )
    return response, await stack.count_rows("teams", Locality) - before


def _rules(version: str, note: str = "") -> str:
    comment = f"# Rules for the county; café hours ignored.{note}\n"
    return comment + yaml.safe_dump({**RULES, "version": version}, sort_keys=False)


async def _rule_set(stack: Stack, text: str) -> Sent:
    before = await stack.count_rows("routing", RuleSetVersion)
    body = {"scope": "county", "document": _rules("2026.11-strict", note=text)}
    async with stack.client("routing", "clinical-lead") as lead:
        response = await lead.post("/v1/rule-sets", content=_encoded(body), headers=JSON)
    return response, await stack.count_rows("routing", RuleSetVersion) - before


async def _query(stack: Stack, text: str) -> Sent:
    async with stack.client("teams", "team-app") as team:
        return await team.get("/v1/directory/changes", params={"entity_code": f"lit{text}"}), 0


async def _header(stack: Stack, text: str) -> Sent:
    return await _refer(stack, factories.referral(), Prefer=f"wait=1{text}")


async def _path(stack: Stack, text: str) -> Sent:
    before = await stack.count_rows("teams", Locality)
    body = {"code": "north", "name": "North", "operating_model": "A"}
    async with stack.client("teams", "fuzzer") as admin:
        response = await admin.put(f"/v1/directory/localities/north{quote(text)}", json=body)
    return response, await stack.count_rows("teams", Locality) - before


async def _list_item(stack: Stack, text: str) -> Sent:
    return await _refer(stack, factories.referral(needs=["fall", f"Ada{text}"]))


async def _key_in_object(stack: Stack, text: str) -> Sent:
    body = factories.referral()
    body["patient"][f"given{text}name"] = "Ada"
    return await _refer(stack, body)


# Where the text goes, and where the problem says it was: in which part, at which field.
PLACES: list[tuple[str, Callable[[Stack, str], Awaitable[Sent]], str, str]] = [
    ("intake given name", _intake("patient.given_name"), "body", "patient.given_name"),
    ("intake family name", _intake("patient.family_name"), "body", "patient.family_name"),
    ("intake reason", _intake("reason"), "body", "reason"),
    (
        "intake safeguarding",
        _intake("safeguarding.immediate_actions", safeguarding={"concern": True}),
        "body",
        "safeguarding.immediate_actions",
    ),
    (
        "intake free-form safeguarding",
        _intake("safeguarding.details"),
        "body",
        "safeguarding.details",
    ),
    ("intake consent", _intake("consent.override_reason"), "body", "consent.override_reason"),
    ("intake list item", _list_item, "body", "needs.1"),
    ("intake key", _key_in_object, "body", "patient"),
    ("cancellation note", _cancellation, "body", "note"),
    ("teams decline note", _decline_note, "body", "note"),
    ("token client_id", _token_form("client_id"), "body", "client_id"),
    ("token client_secret", _token_form("client_secret"), "body", "client_secret"),
    ("directory admin body", _locality, "body", "name"),
    ("rule-set upload", _rule_set, "body", "document"),
    ("query parameter", _query, "query", "entity_code"),
    ("header", _header, "header", "prefer"),
    ("path parameter", _path, "path", "code"),
]


@pytest.mark.parametrize("text", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("send", "where", "field"),
    [place[1:] for place in PLACES],
    ids=[place[0] for place in PLACES],
)
async def test_text_postgresql_cannot_store_is_refused_naming_the_field(
    stack: Stack,
    send: Callable[[Stack, str], Awaitable[Sent]],
    where: str,
    field: str,
    text: str,
) -> None:
    if text == LONE_SURROGATE and where in ("header", "query", "path"):
        pytest.skip("a lone surrogate has no encoding to send outside a JSON or form body")
    if text == LONE_SURROGATE and field.startswith("client_"):
        pytest.skip("a form is percent-encoded UTF-8, which has no lone surrogate")

    response, stored = await send(stack, text)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == PROBLEM + "validation-failed"
    assert {"in": where, "field": field} in [
        {"in": error["in"], "field": error["field"]} for error in problem["errors"]
    ]
    assert "cannot be stored" in problem["errors"][0]["reason"]
    assert "Ada" not in response.text
    assert stored == 0


async def test_a_rule_set_whose_yaml_escapes_a_nul_is_refused_naming_the_field(
    stack: Stack,
) -> None:
    # YAML writes U+0000 as "\\0": the JSON string holds none, the parsed rule set would.
    document = _rules(f"2026.11{NUL}")
    assert NUL not in document
    before = await stack.count_rows("routing", RuleSetVersion)
    async with stack.client("routing", "clinical-lead") as lead:
        response = await lead.post("/v1/rule-sets", json={"scope": "county", "document": document})

    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + "rule-set-rejected"
    assert [error["field"] for error in response.json()["errors"]] == ["version"]
    assert await stack.count_rows("routing", RuleSetVersion) == before


async def test_a_percent_escape_of_nul_in_basic_credentials_is_refused(stack: Stack) -> None:
    async with stack.raw("spa") as spa:
        response = await spa.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("gp-system%00", "test-secret-0123456789"),
        )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


RANGE = "integer from -9223372036854775808 to 9223372036854775807"
NUMBERS = [
    ("10000-digits", "9" * 10_000, RANGE),
    ("2**63", str(2**63), RANGE),
    ("-2**63-1", str(-(2**63) - 1), RANGE),
    ("1e400", "1e400", RANGE),
    ("nan", "NaN", "not JSON numbers"),
    ("infinity", "-Infinity", "not JSON numbers"),
]


@pytest.mark.parametrize(
    ("literal", "reason"), [n[1:] for n in NUMBERS], ids=[n[0] for n in NUMBERS]
)
async def test_a_number_beyond_64_bits_is_refused_naming_the_field(
    stack: Stack, literal: str, reason: str
) -> None:
    # The literal is spliced in as sent: Python's JSON encoder would not write most of them.
    body = _encoded(factories.referral(risk={"clinical_frailty_scale": "N"}))
    response, stored = await _refer_raw(stack, body.replace(b'"N"', literal.encode()))

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "risk.clinical_frailty_scale"
    assert reason in error["reason"]
    assert stored == 0


async def _refer_raw(stack: Stack, content: bytes, **headers: str) -> Sent:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            "/v1/referrals", content=content, headers={"content-type": "application/json"} | headers
        )
    return response, await stack.count_rows("spa", Referral)


async def test_an_integer_a_field_has_no_bound_for_is_still_within_64_bits(stack: Stack) -> None:
    update = {
        "assignment_id": str(uuid.uuid4()),
        "team_id": str(uuid.uuid4()),
        "kind": "care",
        "change": "accepted",
        "at": "2026-11-24T10:00:00Z",
        "seq": 2**63,
    }
    async with stack.client("spa", "teams-service") as teams:
        response = await teams.post(
            f"/v1/referrals/{await _referral_id(stack)}/assignment-updates", json=update
        )

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["seq"]


@pytest.mark.parametrize(
    "written", ["1941-03-14T00:00:00", "1941-03-14T00:00:00Z", "1941-03-14 00:00", 0, "19410314"]
)
async def test_a_date_of_birth_must_be_written_as_a_date(stack: Stack, written: Any) -> None:
    response, stored = await _refer(
        stack, _with(factories.referral(), "patient.date_of_birth", written)
    )

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "patient.date_of_birth"
    assert "YYYY-MM-DD" in error["reason"]
    assert stored == 0


async def test_a_date_of_birth_written_as_a_date_is_taken_and_read_back(stack: Stack) -> None:
    response, stored = await _refer(stack, factories.referral())

    assert response.status_code == 201, response.text
    assert response.json()["patient"]["date_of_birth"] == "1941-03-14"
    assert stored == 1


async def test_two_idempotency_keys_are_refused(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            "/v1/referrals",
            json=factories.referral(),
            headers=[
                ("Idempotency-Key", str(uuid.uuid4())),
                ("Idempotency-Key", str(uuid.uuid4())),
            ],
        )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + "idempotency-key-repeated"
    assert await stack.count_rows("spa", Referral) == 0


# One JSON endpoint of each service, and the rows it would add.
# Each body holds a character that UTF-8 writes differently from the other encodings tried.
ENDPOINTS = [
    ("spa", "gp-system", "/v1/referrals", factories.referral(reason="Zoë fell."), Referral),
    (
        "routing",
        "clinical-lead",
        "/v1/rule-sets",
        {"scope": "county", "document": _rules("2026.11-strict")},
        RuleSetVersion,
    ),
    (
        "teams",
        "fuzzer",
        "/v1/directory/localities",
        {"code": "strict-east", "name": "Éast", "operating_model": "A"},
        Locality,
    ),
]


async def _post_each(
    stack: Stack, encoding: str, content_type: str = "application/json"
) -> list[Sent]:
    sent = []
    for service, client_id, path, body, model in ENDPOINTS:
        before = await stack.count_rows(service, model)
        content = json.dumps(body, ensure_ascii=False).encode(encoding)
        async with stack.client(service, client_id) as http:
            response = await http.post(
                path, content=content, headers={"content-type": content_type}
            )
        sent.append((response, await stack.count_rows(service, model) - before))
    return sent


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"])
async def test_a_body_that_is_not_utf8_is_refused_by_every_service(
    stack: Stack, encoding: str
) -> None:
    for response, stored in await _post_each(stack, encoding):
        assert response.status_code == 400, response.text
        assert response.json()["type"] == PROBLEM + "body-not-utf-8"
        assert stored == 0


@pytest.mark.parametrize("charset", ["utf-16", "iso-8859-1", "no-such-charset"])
async def test_a_body_declared_in_another_charset_is_refused_by_every_service(
    stack: Stack, charset: str
) -> None:
    content_type = f"application/json; charset={charset}"
    for response, stored in await _post_each(stack, "utf-8", content_type):
        assert response.status_code == 415, response.text
        assert response.json()["type"] == PROBLEM + "unsupported-media-type"
        assert stored == 0


async def test_a_body_declared_utf8_is_taken_by_every_service(stack: Stack) -> None:
    answers = await _post_each(stack, "utf-8", "application/json; charset=UTF-8")

    assert [(response.status_code, stored) for response, stored in answers] == [(201, 1)] * 3


async def test_a_form_with_a_percent_escape_that_is_not_utf8_is_refused(stack: Stack) -> None:
    async with stack.raw("spa") as spa:
        response = await spa.post(
            "/oauth/token",
            content=b"grant_type=client_credentials&client_id=gp%FF&client_secret=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM + "body-not-utf-8"


async def test_a_multipart_form_is_refused_at_the_token_endpoint(stack: Stack) -> None:
    form = {"grant_type": "client_credentials", "client_id": f"gp{NUL}", "client_secret": "x"}
    async with stack.raw("spa") as spa:
        response = await spa.post("/oauth/token", data=form, files={"unused": b""})

    assert response.status_code == 415
    assert response.json()["type"] == PROBLEM + "unsupported-media-type"
