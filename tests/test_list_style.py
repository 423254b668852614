"""The README's API conventions, held over the committed OpenAPI documents of all three
services: one list envelope with cursor paging, and one identifier per resource kind in paths."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OPENAPI = Path(__file__).resolve().parents[1] / "openapi"
SERVICES = ["spa", "routing", "teams"]
# The Open Referral feed pages and names as HSDS says; the FHIR door as FHIR says.
OWN_STANDARDS = ("/openreferral/", "/FHIR/R4/")
# Kinds the directory names with a code, by the path parameter that names them.
CODED = {"team_code", "code", "ods_code", "scope"}


def _document(service: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((OPENAPI / f"{service}.json").read_text("utf-8"))
    return found


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _gets(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for path, item in document["paths"].items():
        if path.startswith(OWN_STANDARDS) or "get" not in item:
            continue
        content = item["get"]["responses"].get("200", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is not None:
            yield path, item["get"], _schema(document, schema)


@pytest.mark.parametrize("service", SERVICES)
def test_no_list_is_a_bare_array(service: str) -> None:
    document = _document(service)
    bare = [path for path, _, schema in _gets(document) if schema.get("type") == "array"]
    assert bare == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_list_pages_by_cursor_in_one_envelope(service: str) -> None:
    document = _document(service)
    lists = 0
    for path, operation, schema in _gets(document):
        properties = schema.get("properties", {})
        if properties.get("items", {}).get("type") != "array":
            continue
        lists += 1
        assert "next_cursor" in properties, f"{path} has items but no next_cursor"
        assert set(schema.get("required", [])) >= {"items", "next_cursor"}, path
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert {"cursor", "limit"} <= query, f"{path} pages without cursor and limit"
        assert not query & {"after", "before_id", "page", "offset"}, f"{path}: another style"
        assert "400" in operation["responses"], f"{path} does not say a bad cursor is a 400"
    assert lists > 0


@pytest.mark.parametrize("service", SERVICES)
def test_one_identifier_per_kind_in_paths(service: str) -> None:
    document = _document(service)
    for path, item in document["paths"].items():
        if path.startswith(OWN_STANDARDS):
            continue
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                name, schema = parameter["name"], _schema(document, parameter["schema"])
                if name in CODED:
                    assert schema.get("type") == "string", f"{path}: {name}"
                    assert schema.get("format") != "uuid", f"{path}: {name} is a code"
                else:
                    assert name.endswith("_id"), f"{path}: {name} is neither a code nor an id"
                    assert schema.get("format") == "uuid" or schema.get("type") == "integer", (
                        f"{path}: {name}"
                    )
    # A team is addressed by its code wherever a path names one.
    team_paths = [path for path in document["paths"] if re.match(r"^/v1/teams/\{", path)]
    assert all(path.startswith("/v1/teams/{team_code}") for path in team_paths), team_paths
