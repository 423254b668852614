"""Checking the Open Referral feed's answers against the published HSDS 3.0 and Open Referral UK
schemas (see openreferral_schemas/README.md), as each standard's OpenAPI document declares the
answer of an operation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.stack import Stack

SCHEMAS = Path(__file__).resolve().parent / "openreferral_schemas"
MOUNT = "/openreferral"
PAGE_FIELDS = {
    "total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty",
    "contents",
}  # fmt: skip


@dataclass(frozen=True)
class Standard:
    name: str
    folder: str
    # Where the standard's OpenAPI document says its schemas are.
    base_uri: str

    @property
    def openapi_uri(self) -> str:
        return self.base_uri + "openapi.json"


HSDS = Standard(
    "HSDS 3.0",
    "hsds-3.0",
    "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/",
)
UK_PROFILE = Standard(
    "Open Referral UK 3.0",
    "uk-profile-3.0",
    "https://raw.githubusercontent.com/openreferral/uk-profile/main/schema/",
)
STANDARDS = (HSDS, UK_PROFILE)
# Both documents declare a service as the answer of GET /service_at_locations/{id}, which
# answers with a service at a location: that answer is checked against the schema it means.
SCHEMA_OF = {"/service_at_locations/{id}": "compiled/service_at_location.json"}


@cache
def registry(standard: Standard) -> Registry[Any]:
    folder = SCHEMAS / standard.folder
    resources = [
        (
            standard.base_uri + path.relative_to(folder).as_posix(),
            Resource.from_contents(
                json.loads(path.read_text(encoding="utf-8")), default_specification=DRAFT202012
            ),
        )
        for path in sorted(folder.rglob("*.json"))
    ]
    return Registry().with_resources(resources)


@cache
def operations(standard: Standard) -> frozenset[str]:
    document = registry(standard).contents(standard.openapi_uri)
    return frozenset(path for path, item in document["paths"].items() if "get" in item)


def response_schema(standard: Standard, operation: str) -> dict[str, str]:
    if operation in SCHEMA_OF:
        return {"$ref": standard.base_uri + SCHEMA_OF[operation]}
    pointer = operation.replace("~", "~0").replace("/", "~1")
    return {
        "$ref": f"{standard.openapi_uri}#/paths/{pointer}/get/responses/200/content/"
        "application~1json/schema"
    }


def problems(standard: Standard, operation: str, body: Any) -> list[str]:
    """Where ``body`` breaks the standard's schema for ``operation``'s answer."""
    validator = Draft202012Validator(
        response_schema(standard, operation),
        registry=registry(standard),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    return [f"{standard.name} at {error.json_path}: {error.message}" for error in errors]


def assert_conforms(operation: str, body: Any) -> None:
    """``body``, the answer of ``GET {operation}`` (e.g. ``/services/{id}``), is what HSDS 3.0
    and, where it defines the operation, the UK profile allow."""
    standards = [standard for standard in STANDARDS if operation in operations(standard)]
    assert standards, f"no standard defines GET {operation}"
    found = [problem for standard in standards for problem in problems(standard, operation, body)]
    assert not found, "\n".join(found[:20])
    if operation != "/" and "{" not in operation:
        # The standards' Page schema lists the envelope's fields without requiring them.
        assert body.keys() >= PAGE_FIELDS, f"the page lacks {sorted(PAGE_FIELDS - body.keys())}"


async def read_feed(
    stack: Stack, operation: str, client: str | None = "team-app", **params: Any
) -> Any:
    """``GET`` an operation of the feed (``/services/{id}``, ``id=...``) as ``client`` (None:
    anonymously), expecting a 200 that conforms to the standards."""
    path_params = {name: params.pop(name) for name in list(params) if "{" + name + "}" in operation}
    path = MOUNT + operation.format(**path_params)
    async with stack.client("teams", client) if client else stack.raw("teams") as teams:
        response = await teams.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_conforms(operation, body)
    return body
