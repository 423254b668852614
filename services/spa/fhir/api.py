"""The BaRS receiver's HTTP API at /FHIR/R4: $process-message, metadata, MessageDefinition and
ServiceRequest read. Every answer is FHIR; errors become OperationOutcomes at the edge."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.problems import UnsupportedMediaType
from services.shared.state import state_of
from services.spa.api import WakeupsDep
from services.spa.fhir import documents, messages, replies, service
from services.spa.fhir.edge import UUID_TEXT
from services.spa.fhir.mapping import CodeMapping
from services.spa.fhir.outcomes import BY_STATUS
from services.spa.fhir.problems import MessageInvalid, NotAcceptable
from services.spa.referrals import waiting
from services.spa.referrals.api import wait_for_outcome
from services.spa.settings import SpaSettings
from services.spa.state import SpaState

FHIR_JSON = "application/fhir+json"
_ACCEPTED_TYPES = {FHIR_JSON, "application/json", "application/*", "*/*"}
_BODY_TYPES = {FHIR_JSON, "application/json"}


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


@dataclass(frozen=True)
class BarsRequest:
    request_id: str
    correlation_id: str


def _required_uuid(name: str, value: str | None) -> str:
    if value is None:
        raise MessageInvalid(f"The {name} header is required.", issue_code="required")
    if not UUID_TEXT.match(value):
        raise MessageInvalid(f"The {name} header must be a UUID.", issue_code="value")
    return value


async def _bars_request(
    request: Request,
    x_request_id: Annotated[
        str | None, Header(alias="X-Request-Id", description="A UUID per request (required)")
    ] = None,
    x_correlation_id: Annotated[
        str | None,
        Header(alias="X-Correlation-Id", description="A UUID per conversation (required)"),
    ] = None,
    accept: Annotated[str | None, Header(description="application/fhir+json")] = None,
) -> BarsRequest:
    found = BarsRequest(
        _required_uuid("X-Request-Id", x_request_id),
        _required_uuid("X-Correlation-Id", x_correlation_id),
    )
    structlog.contextvars.bind_contextvars(correlation_id=found.correlation_id)
    _check_accept(accept, _settings(request).bars_versions)
    return found


BarsDep = Annotated[BarsRequest, Depends(_bars_request)]


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    ranges = []
    for part in header.split(","):
        kind, *parameters = (piece.strip() for piece in part.split(";"))
        named = dict(p.partition("=")[::2] for p in parameters if "=" in p)
        ranges.append((kind.lower(), {k.strip().lower(): v.strip('" ') for k, v in named.items()}))
    return ranges


def _fhir_version_ok(parameters: dict[str, str], versions: tuple[str, ...]) -> bool:
    fhir_version = parameters.get("fhirversion")
    version = parameters.get("version")
    return (fhir_version is None or fhir_version.startswith("4.0")) and (
        version is None or version.split(".", 1)[0] in versions
    )


def _check_accept(accept: str | None, versions: tuple[str, ...]) -> None:
    if accept is None or not accept.strip():
        return
    for kind, parameters in _media_ranges(accept):
        if kind in _ACCEPTED_TYPES and _fhir_version_ok(parameters, versions):
            return
    raise NotAcceptable(
        f"Answers are {FHIR_JSON} of FHIR 4.0 and BaRS major version {', '.join(versions)}."
    )


def _check_content_type(content_type: str | None, versions: tuple[str, ...]) -> None:
    ranges = _media_ranges(content_type or "")
    kind, parameters = ranges[0] if ranges else ("", {})
    if kind not in _BODY_TYPES or not _fhir_version_ok(parameters, versions):
        raise UnsupportedMediaType(f"Send the Bundle as {FHIR_JSON} (FHIR 4.0).")


async def _target(
    request: Request,
    target: Annotated[
        str | None,
        Header(
            alias="NHSD-Target-Identifier",
            description="Base64 of a JSON object {value, system} naming this receiver",
        ),
    ] = None,
) -> None:
    if target is None:
        raise MessageInvalid(
            "The NHSD-Target-Identifier header is required.", issue_code="required"
        )
    settings = _settings(request)
    try:
        named = json.loads(base64.b64decode(target, validate=True))
        value, system = named["value"], named.get("system")
    except (ValueError, binascii.Error, KeyError, TypeError) as exc:
        raise MessageInvalid(
            "NHSD-Target-Identifier is base64 of a JSON object with value and system.",
            issue_code="structure",
        ) from exc
    wrong_system = settings.bars_target_system is not None and system != settings.bars_target_system
    if value != settings.bars_target_identifier or wrong_system:
        raise MessageInvalid(
            "NHSD-Target-Identifier names another receiver than this one.", issue_code="value"
        )


TargetDep = Annotated[None, Depends(_target)]


def _settings(request: Request) -> SpaSettings:
    return state_of(request.app, SpaState).settings


def _mapping(request: Request) -> CodeMapping:
    return state_of(request.app, SpaState).bars_mapping


def _outcomes(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for errors as they are sent on these paths: OperationOutcomes."""
    issue = {
        "type": "object",
        "required": ["severity", "code"],
        "properties": {
            "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
            "code": {"type": "string", "description": "FHIR issue type, e.g. invariant"},
            "details": {"type": "object", "description": "The BaRS error code as a coding"},
            "diagnostics": {"type": "string"},
            "expression": {"type": "array", "items": {"type": "string"}},
        },
    }
    schema = {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {"type": "array", "items": issue},
        },
    }
    return {
        status: {
            "description": f"OperationOutcome, BaRS code {BY_STATUS[status][0]}",
            "content": {FHIR_JSON: {"schema": schema}},
        }
        for status in statuses
    }


_ALWAYS = (400, 401, 403, 406, 422, 429, 500, 503)
_FHIR_DOCUMENT = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}

# Authentication comes first in every operation (its parameters are resolved in order): a
# caller without a valid token learns nothing else, not even which headers were wrong.
router = APIRouter(prefix="/FHIR/R4", tags=["fhir"])


@router.post(
    "/$process-message",
    summary="Receive a BaRS message: a referral (new), or an update or cancellation of one",
    description=(
        "A FHIR Bundle of type message. A new referral is taken in as `POST /v1/referrals` "
        "takes one; the X-Request-Id is its idempotency key (a repeat is 409 REC_CONFLICT, a "
        "repeat while the first is processed 425 REC_TOO_EARLY). `Prefer: wait=N` waits for "
        "the routing outcome, as on `POST /v1/referrals`."
    ),
    response_class=FhirResponse,
    responses={200: _FHIR_DOCUMENT, **_outcomes(*_ALWAYS, 404, 409, 413, 415, 422, 425)},
    openapi_extra={"requestBody": {"required": True, **_FHIR_DOCUMENT}},
)
async def process_message(
    request: Request,
    wakeups: WakeupsDep,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("referrals:create")],
    bars: BarsDep,
    _target: TargetDep,
    prefer: Annotated[str | None, Header(description="wait=N: wait N seconds for routing")] = None,
) -> Response:
    settings = _settings(request)
    _check_content_type(request.headers.get("content-type"), settings.bars_versions)
    message = messages.read_message(
        json.loads(await request.body()), _mapping(request), settings.bars_versions
    )
    door = service.Door(
        settings,
        _mapping(request),
        wait=waiting.preferred_wait(prefer, settings.max_prefer_wait_seconds),
        wait_for_outcome=lambda referral_id, wait: wait_for_outcome(request, referral_id, wait),
        wake_router=wakeups.routing,
        correlation_id=bars.correlation_id,
    )
    received = await service.receive(session, message, principal, bars.request_id, now, door)
    answer = documents.response_message(
        message,
        received.referral,
        answers=replies.request_message_id(message, bars.request_id),
        endpoint=settings.bars_target_identifier,
        now=now,
        replies=received.replies,
        left_out=received.left_out,
    )
    return FhirResponse(answer)


@router.get(
    "/metadata",
    summary="The CapabilityStatement of this BaRS receiver",
    response_class=FhirResponse,
    responses={200: _FHIR_DOCUMENT, **_outcomes(*_ALWAYS)},
)
async def metadata(
    request: Request, principal: Annotated[Principal, requires("referrals:create")], _bars: BarsDep
) -> Response:
    return FhirResponse(documents.capability_statement(_settings(request).bars_versions))


@router.get(
    "/MessageDefinition",
    summary="The MessageDefinition of the referral message this receiver takes",
    response_class=FhirResponse,
    responses={200: _FHIR_DOCUMENT, **_outcomes(*_ALWAYS)},
)
async def message_definitions(
    request: Request, principal: Annotated[Principal, requires("referrals:create")], _bars: BarsDep
) -> Response:
    return FhirResponse(documents.message_definitions(_mapping(request)))


@router.get(
    "/ServiceRequest/{referral_id}",
    summary="A referral this client sent, as a ServiceRequest with its current status",
    response_class=FhirResponse,
    responses={200: _FHIR_DOCUMENT, **_outcomes(*_ALWAYS, 404)},
)
async def read_service_request(
    referral_id: str,
    session: SessionDep,
    principal: Annotated[Principal, requires("referrals:read")],
    _bars: BarsDep,
    _target: TargetDep,
) -> Response:
    referral = await service.own_referral(session, referral_id, principal)
    return FhirResponse(documents.service_request(referral))
