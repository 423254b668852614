"""The rules every published OpenAPI document keeps (README, "API"), checked over the committed
documents of all three services, and the behaviour behind them on a running app."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from jsonschema import Draft202012Validator

from services.routing.main import create_app as create_routing
from services.routing.settings import RoutingSettings
from services.shared.clock import system_clock

OPENAPI = Path(__file__).resolve().parents[1] / "openapi"
SERVICES = ["spa", "routing", "teams"]
OPEN_PATHS = {"/healthz", "/readyz", "/oauth/token", "/.well-known/jwks.json"}
# The Open Referral standard's root endpoint is "/" (under our /openreferral).
SLASH_PATHS = {"/openreferral/"}
OPERATION_ID = re.compile(r"^[a-z][a-zA-Z0-9]*$")
METHODS = {"get", "put", "post", "delete", "patch"}


def _document(service: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OPENAPI / f"{service}.json").read_text("utf-8"))
    return loaded


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method.upper(), operation


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node


@pytest.fixture(params=SERVICES)
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _document(request.param)


def test_every_operation_has_a_unique_camel_case_operation_id(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId", "") for _, _, operation in _operations(document)]

    assert [i for i in ids if not OPERATION_ID.match(i)] == []
    assert len(ids) == len(set(ids))


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for path, method, operation in _operations(document)
        if not operation.get("summary") or len(operation.get("description", "")) < 20
    ]
    assert missing == []


def test_every_body_has_an_example_that_its_schema_accepts(document: dict[str, Any]) -> None:
    failures = []
    for path, method, operation in _operations(document):
        bodies = {"request": operation.get("requestBody", {})}
        bodies.update(operation["responses"])
        for where, body in bodies.items():
            for media_type, media in _resolve(document, body).get("content", {}).items():
                name = f"{method} {path} {where} {media_type}"
                if "example" not in media:
                    failures.append(f"{name}: no example")
                    continue
                schema = {**media.get("schema", {}), "components": document["components"]}
                errors = list(Draft202012Validator(schema).iter_errors(media["example"]))
                if errors:
                    failures.append(f"{name}: {errors[0].message[:120]}")
    assert failures == []


def test_every_error_answer_is_a_problem_or_an_operation_outcome(
    document: dict[str, Any],
) -> None:
    failures = []
    for path, method, operation in _operations(document):
        media = "application/fhir+json" if path.startswith("/FHIR/") else "application/problem+json"
        statuses = set(operation["responses"])
        for status, response in operation["responses"].items():
            if status[0] in "45" and media not in response.get("content", {}):
                failures.append(f"{method} {path} {status}")
        if not path.startswith("/FHIR/") and not {"400", "500"} <= statuses:
            failures.append(f"{method} {path}: 400 (unknown query parameter) and 500 unlisted")
    assert failures == []


def test_every_answer_documents_its_headers(document: dict[str, Any]) -> None:
    failures = []
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            if "X-Request-Id" not in headers:
                failures.append(f"{method} {path} {status}: X-Request-Id")
            if path.startswith("/FHIR/") and "X-Correlation-Id" not in headers:
                failures.append(f"{method} {path} {status}: X-Correlation-Id")
            if status in ("429", "503") and "Retry-After" not in headers:
                failures.append(f"{method} {path} {status}: Retry-After")
    assert failures == []


def test_every_security_requirement_names_scopes_that_exist(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    failures = []
    for path, method, operation in _operations(document):
        if path in OPEN_PATHS:
            continue
        for requirement in operation.get("security") or [{}]:
            for scheme, scopes in requirement.items():
                known = schemes[scheme]["flows"]["clientCredentials"]["scopes"]
                if not scopes or not set(scopes) <= set(known):
                    failures.append(f"{method} {path}: {scopes}")
            if not requirement:
                failures.append(f"{method} {path}: no security")
    assert failures == []


def test_servers_and_token_urls_are_absolute(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert [server["url"].startswith(("http://", "https://")) for server in document["servers"]]
    for scheme in document["components"]["securitySchemes"].values():
        for flow in scheme["flows"].values():
            assert flow["tokenUrl"].startswith(("http://", "https://")), flow["tokenUrl"]


def test_no_path_ends_in_a_slash(document: dict[str, Any]) -> None:
    assert [p for p in document["paths"] if p.endswith("/") and p not in SLASH_PATHS] == []


def test_required_headers_are_marked_required() -> None:
    spa = _document("spa")
    create = spa["paths"]["/v1/referrals"]["post"]
    headers = {p["name"]: p for p in create["parameters"] if p["in"] == "header"}

    assert headers["Idempotency-Key"]["required"] is True
    assert {"Location", "Idempotent-Replayed", "Preference-Applied"} <= set(
        create["responses"]["201"]["headers"]
    )
    process = spa["paths"]["/FHIR/R4/$process-message"]["post"]
    fhir_headers = {p["name"]: p for p in process["parameters"] if p["in"] == "header"}
    assert fhir_headers["X-Request-Id"]["required"] is True
    assert fhir_headers["X-Correlation-Id"]["required"] is True


def test_the_referral_lifecycle_is_linked() -> None:
    create = _document("spa")["paths"]["/v1/referrals"]["post"]
    links = create["responses"]["201"]["links"]

    assert {link["operationId"] for link in links.values()} >= {"getReferral", "cancelReferral"}


def _routing(**overrides: Any) -> AsyncClient:
    settings = RoutingSettings(database_url="sqlite+aiosqlite:///:memory:", **overrides)
    app = create_routing(settings, clock=system_clock)
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://routing")


async def test_the_document_and_its_page_are_served_when_turned_on() -> None:
    async with _routing(openapi_enabled=True) as http:
        document = await http.get("/openapi.json")
        page = await http.get("/docs")
        script = await http.get("/docs/swagger-ui-bundle.js")

    assert document.status_code == 200
    assert document.json() == _document("routing")
    assert page.status_code == 200
    assert 'src="/docs/swagger-ui-bundle.js"' in page.text
    assert "https://" not in page.text  # nothing from a CDN
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-eval" not in policy
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")


async def test_the_document_and_its_page_are_off_by_default() -> None:
    async with _routing() as http:
        for path in ("/openapi.json", "/docs", "/docs/swagger-ui-bundle.js"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_trailing_slash_is_a_404_problem_not_a_redirect() -> None:
    async with _routing() as http:
        response = await http.get("/healthz/")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "/healthz" in response.json()["detail"]


async def test_an_unknown_query_parameter_is_a_400_naming_it() -> None:
    async with _routing() as http:
        response = await http.get("/healthz", params={"verbose": "1"})

    assert response.status_code == 400
    problem = response.json()
    assert problem["type"].endswith("unknown-query-parameter")
    assert problem["errors"] == [
        {"in": "query", "field": "verbose", "reason": "not a parameter of this operation"}
    ]
