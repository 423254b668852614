"""FHIR OperationOutcomes with the BaRS receiver error codes, made from problem documents.

Every error the service raises is a problem document (RFC 9457); on a FHIR path the edge turns
it into an OperationOutcome here. A FHIR problem names its own BaRS code, issue code and the
failing elements (FHIRPath); any other problem (authentication, rate limits, the body limit,
strict input, an unexpected failure) takes the code its HTTP status has in BaRS. Diagnostics
are the problem's title and detail, which never hold submitted values.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from services.spa.fhir.problems import ISSUE_KEY

ERROR_CODE_SYSTEM = "https://fhir.nhs.uk/CodeSystem/http-error-codes"
OUTCOME_PROFILE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-OperationOutcome"

# HTTP status -> (BaRS receiver error code, FHIR issue code), for problems that name neither.
BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("REC_BAD_REQUEST", "invalid"),
    401: ("REC_UNAUTHORIZED", "login"),
    403: ("REC_FORBIDDEN", "forbidden"),
    404: ("REC_NOT_FOUND", "not-found"),
    405: ("REC_METHOD_NOT_ALLOWED", "not-supported"),
    406: ("REC_NOT_ACCEPTABLE", "processing"),
    409: ("REC_CONFLICT", "conflict"),
    # BaRS has no code of its own for these two: the request is refused as a bad one.
    413: ("REC_BAD_REQUEST", "too-costly"),
    415: ("REC_BAD_REQUEST", "not-supported"),
    422: ("REC_UNPROCESSABLE_ENTITY", "invalid"),
    425: ("REC_TOO_EARLY", "transient"),
    429: ("REC_TOO_MANY_REQUESTS", "throttled"),
    500: ("REC_SERVER_ERROR", "exception"),
    503: ("REC_UNAVAILABLE", "transient"),
}

_INDEX = re.compile(r"^[0-9]+$")


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [OUTCOME_PROFILE]},
        "issue": issues,
    }


def issue(
    bars_code: str,
    code: str,
    diagnostics: str,
    expression: list[str] | None = None,
    severity: str = "error",
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "severity": severity,
        "code": code,
        "details": {"coding": [{"system": ERROR_CODE_SYSTEM, "code": bars_code}]},
        "diagnostics": diagnostics,
    }
    if expression:
        found["expression"] = expression
    return found


# Strict input's reason for a body that is not JSON at all: BaRS calls that malformed (400).
NOT_JSON = "the body is not valid JSON"


def status_of(problem: dict[str, Any], status: int) -> int:
    """The HTTP status BaRS gives the problem: a body that is not JSON is a bad request."""
    errors = problem.get("errors")
    not_json = isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("reason") == NOT_JSON for e in errors
    )
    return 400 if status == 422 and not_json else status


def from_problem(problem: dict[str, Any], status: int) -> dict[str, Any]:
    """The OperationOutcome saying what the problem document says (``status`` as BaRS gives
    it, see status_of)."""
    fallback = BY_STATUS.get(status) or (
        ("REC_SERVER_ERROR", "exception") if status >= 500 else ("REC_BAD_REQUEST", "invalid")
    )
    said = ": ".join(str(part) for part in (problem.get("title"), problem.get("detail")) if part)
    fhir_issue = problem.get(ISSUE_KEY)
    if isinstance(fhir_issue, dict):
        one = issue(fhir_issue["bars_code"], fhir_issue["code"], said, fhir_issue.get("expression"))
        return operation_outcome([one])
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        return operation_outcome([_field_issue(fallback, error) for error in errors])
    return operation_outcome([issue(*fallback, said or "The request failed.")])


def _field_issue(fallback: tuple[str, str], error: dict[str, Any]) -> dict[str, Any]:
    """One field error of a validation problem: a body field is named by FHIRPath, a header or
    query parameter by its name in the diagnostics."""
    where, field, reason = error.get("in"), str(error.get("field", "")), error.get("reason")
    if where == "body":
        expression = [fhirpath(field.split("."))] if field else None
        return issue(*fallback, f"{reason}", expression)
    return issue(*fallback, f"{where} {field}: {reason}")


def fhirpath(parts: list[str], root: str = "Bundle") -> str:
    """``["entry", "0", "resource", "birthDate"]`` as ``Bundle.entry[0].resource.birthDate``."""
    path = root
    for part in parts:
        path += f"[{part}]" if _INDEX.match(part) else f".{part}"
    return path
