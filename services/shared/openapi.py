"""The published contract: each service's OpenAPI document finished from its routes and a
catalogue of its operations, and the page that shows it.

FastAPI derives the paths and schemas from the routes. What a generator or a reader also needs
is kept out of the route files in a catalogue per service (``Operation`` entries): a stable
``operationId``, a description, the headers a handler reads itself (so the framework cannot
know they are required) and the headers an answer carries. ``finish`` adds the rest that holds
for every operation: the server to call, an absolute token URL, an example for every body (an
example a schema's own fields give, else one built from the schema), and the problem answers
every operation can give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.shared.problems import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    InternalError,
    Problem,
    UnknownQueryParameter,
)

# Headers answers carry, described once and referred to by name.
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id (the one sent, or one made here): quote it when "
        "reporting a problem.",
        "schema": {"type": "string"},
    },
    "X-Correlation-Id": {
        "description": "The request's X-Correlation-Id, sent back on every answer under "
        "/FHIR/R4 (BaRS), as it was sent.",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "Where the resource created (or to poll) is read.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key; absent on a first answer.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Preference-Applied": {
        "description": "`wait=N` when the answer honoured the request's `Prefer: wait`: it "
        "waited up to N seconds for the outcome (N capped by the service).",
        "schema": {"type": "string", "pattern": "^wait=[0-9]+$"},
    },
}
# Answers that tell the client when to come back.
_RETRY_STATUSES = ("429", "503")


@dataclass(frozen=True)
class Operation:
    """What the catalogue says of one operation; the summary stays the route's unless given."""

    operation_id: str
    description: str
    summary: str | None = None
    required_headers: tuple[str, ...] = ()
    # Response status -> names from HEADERS (beyond X-Request-Id, which every answer has).
    response_headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Links from a response (status -> name -> OpenAPI link object), for clients and
    # stateful testing that follow the resource's lifecycle.
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # An example of the JSON request body where one built from its schema would not be taken
    # (a check digit, a date in range): a reader copies it and a fuzzer starts from it.
    request_example: Any = None


Catalogue = Mapping[str, Operation]  # keyed "METHOD /path"


@dataclass(frozen=True)
class Publication:
    """Where the service is reached, and where its clients get their tokens."""

    base_url: str
    token_url: str


def finish(document: dict[str, Any], catalogue: Catalogue, publication: Publication) -> None:
    """Complete ``document`` in place; an operation missing from the catalogue keeps what the
    framework gave it (the contract test names it)."""
    document["servers"] = [{"url": publication.base_url.rstrip("/")}]
    components = document.setdefault("components", {})
    components.setdefault("headers", {}).update(HEADERS)
    _absolute_token_urls(components, publication.token_url)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            entry = catalogue.get(f"{method.upper()} {path}")
            if entry is not None:
                _describe(operation, entry)
            fhir = path.startswith("/FHIR/")
            _error_answers(operation, fhir=fhir)
            _response_headers(operation, fhir=fhir)
            _examples(operation, components)


def _absolute_token_urls(components: dict[str, Any], token_url: str) -> None:
    for scheme in components.get("securitySchemes", {}).values():
        for flow in scheme.get("flows", {}).values():
            if "tokenUrl" in flow:
                flow["tokenUrl"] = token_url


def _describe(operation: dict[str, Any], entry: Operation) -> None:
    operation["operationId"] = entry.operation_id
    operation["description"] = entry.description
    if entry.summary is not None:
        operation["summary"] = entry.summary
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"] in entry.required_headers:
            parameter["required"] = True
            # Sent or not, never null: the framework's "or null" is for its own default.
            parameter["schema"] = _without_null(parameter["schema"])
    responses = operation.setdefault("responses", {})
    for status, names in entry.response_headers.items():
        headers = responses[status].setdefault("headers", {})
        headers.update({name: {"$ref": f"#/components/headers/{name}"} for name in names})
    for status, links in entry.links.items():
        responses[status].setdefault("links", {}).update(links)
    if entry.request_example is not None:
        media = operation["requestBody"]["content"]["application/json"]
        media["example"] = entry.request_example


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if len(options) != 1:
        return schema
    kept = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**options[0], **kept}


def problem_content(problem: type[Problem], description: str | None = None) -> dict[str, Any]:
    """A ``responses`` entry for ``problem``: its description, schema and an example."""
    example = {"type": problem.type, "title": problem.title, "status": problem.status}
    return {
        "description": description or problem.title,
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": {"$ref": "#/components/schemas/ProblemDetails"},
                "example": example,
            }
        },
    }


def _error_answers(operation: dict[str, Any], *, fhir: bool) -> None:
    """Answers any operation can give: a query parameter it does not take, a fault of ours.
    (The FHIR door declares its own, in OperationOutcome; see services/spa/fhir.)"""
    if fhir:
        return
    responses = operation.setdefault("responses", {})
    if "400" not in responses:
        responses["400"] = problem_content(UnknownQueryParameter, BadRequest.title)
    responses.setdefault("500", problem_content(InternalError))


def _response_headers(operation: dict[str, Any], *, fhir: bool) -> None:
    always = ("X-Request-Id", "X-Correlation-Id") if fhir else ("X-Request-Id",)
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        for name in always:
            headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})
        if status in _RETRY_STATUSES:
            headers.setdefault("Retry-After", {"$ref": "#/components/headers/Retry-After"})


def _examples(operation: dict[str, Any], components: dict[str, Any]) -> None:
    bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
    for body in bodies:
        for media in body.get("content", {}).values():
            if "example" not in media and "examples" not in media and "schema" in media:
                media["example"] = example_of(media["schema"], components)


_FORMATS: dict[str, Any] = {
    "uuid": "3f2c9a1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b",
    "date-time": "2026-01-05T09:30:00Z",
    "date": "2026-01-05",
    "time": "09:30:00",
    "uri": "https://example.org/hooks/spa",
    "uri-reference": "/v1/referrals/3f2c9a1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b",
    "email": "duty.desk@example.org",
    "duration": "PT2H",
    "binary": "",
}
# Deeper than any body here; a schema that refers to itself stops at this depth.
_MOST_DEPTH = 16
# Values of this domain tried, in turn, against a string's pattern: a code, a practice (ODS),
# a postcode and its district, a time of day, an NHS number (valid by Modulus 11), a version.
_PATTERNED = (
    "example",
    "K81003",
    "LS1 4AP",
    "LS1",
    "09:00",
    "9434765919",
    "Dx05",
    "1234",
    "v1",
    "1.0.0",
    "LIT-NORTH",
    "example-1",
)


def _fits(text: str, schema: Mapping[str, Any]) -> bool:
    return bool(schema.get("minLength", 0) <= len(text) <= schema.get("maxLength", len(text)))


def example_of(schema: Mapping[str, Any], components: Mapping[str, Any], depth: int = 0) -> Any:
    """A value ``schema`` accepts: its own example or default where it has one, else one made
    from its type, format, enumeration and bounds, every property of an object included."""
    schema = _resolved(schema, components)
    for own in ("examples", "example", "default", "const"):
        if own in schema:
            value = schema[own]
            return value[0] if own == "examples" and isinstance(value, list) and value else value
    if "enum" in schema:
        return schema["enum"][0]
    for choice in ("anyOf", "oneOf"):
        options = [option for option in schema.get(choice, []) if option.get("type") != "null"]
        if options:
            return example_of(options[0], components, depth)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = example_of(part, components, depth)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    return _typed_example(schema, components, depth)


def _typed_example(schema: Mapping[str, Any], components: Mapping[str, Any], depth: int) -> Any:
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((each for each in kind if each != "null"), "string")
    if kind == "object":
        if depth >= _MOST_DEPTH:
            return {}
        properties = schema.get("properties", {})
        return {
            name: example_of(child, components, depth + 1) for name, child in properties.items()
        }
    if kind == "array":
        if depth >= _MOST_DEPTH or "items" not in schema:
            return []
        count = max(1, schema.get("minItems", 1))
        return [example_of(schema["items"], components, depth + 1)] * count
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return max(low, min(1, schema.get("maximum", 1)))
    if kind == "boolean":
        return True
    return _string_example(schema)


def _string_example(schema: Mapping[str, Any]) -> str:
    if schema.get("format") in _FORMATS:
        return str(_FORMATS[schema["format"]])
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        for candidate in _PATTERNED:
            if pattern.search(candidate) and _fits(candidate, schema):
                return candidate
    text = "example"
    low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", len(text)))
    return (text * (1 + low // len(text)))[: max(low, min(high, len(text)))]


def _resolved(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = components.get("schemas", {})[name]
    return schema


# The operations every service has (services.shared.health and services.shared.audit_api).
COMMON: dict[str, Operation] = {
    "GET /healthz": Operation(
        "getLiveness",
        "Answers 200 while the process is serving requests; it checks nothing else, so an "
        "orchestrator restarts only a process that has stopped answering.",
    ),
    "GET /readyz": Operation(
        "getReadiness",
        "Answers 200 when the database answers a query, else 503: a load balancer sends "
        "traffic only to replicas that can serve it. With `workers=1` it also answers 503 "
        "when a worker kind has not reported a heartbeat lately, or work has waited past "
        "its threshold: the probe of the worker processes, not of the API's.",
    ),
    "GET /metrics": Operation(
        "getMetrics",
        "The service's metrics in the Prometheus text format, for a scraper holding "
        "`metrics:read`: requests by route and status with their latency, what the service "
        "did (referrals received, routed, queued; deliveries by outcome), its outbox depth "
        "and oldest due age, worker heartbeats and database pool use.",
    ),
    "GET /v1/audit": Operation(
        "listAuditEvents",
        "Who read or changed patient data, when, with which client and request id, oldest "
        "first and a page at a time. Each record is sealed into a hash chain, so a gap or an "
        "altered record shows.",
    ),
}
