"""Reading a BaRS message: the Bundle parsed and validated as FHIR (``fhir.resources``, R4B
models, which read R4 alike for these resources), its MessageHeader and focus found, and the
workflow it asks for told from its event, reason, ServiceRequest status and use case.

Every refusal names the failing element by FHIRPath and never repeats a submitted value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.messageheader import MessageHeader
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from services.spa.fhir.mapping import CodeMapping
from services.spa.fhir.outcomes import fhirpath
from services.spa.fhir.problems import (
    MessageInvalid,
    MessageNotSupported,
    WorkflowUnknown,
)

EVENT = "servicerequest-request"
R = TypeVar("R", bound=Resource)
# Enough for a sender to fix its message; a bundle of a thousand errors gets no longer answer.
_MOST_ISSUES = 20


class Action(StrEnum):
    NEW = "new"
    UPDATE = "update"
    CANCEL = "cancel"


# (MessageHeader.reason, ServiceRequest.status) -> what the message asks, for the event above.
# BaRS cancels by an update whose ServiceRequest is revoked; "cancel" as a reason is taken too.
WORKFLOWS: dict[tuple[str, str], Action] = {
    ("new", "active"): Action.NEW,
    ("update", "active"): Action.UPDATE,
    ("update", "revoked"): Action.CANCEL,
    ("cancel", "revoked"): Action.CANCEL,
}


@dataclass(frozen=True)
class Message:
    bundle: Bundle
    header: MessageHeader
    service_request: ServiceRequest
    action: Action
    # The digest of the message's meaning (key order and spacing do not change it).
    digest: str

    def path(self, resource: Resource, *parts: str) -> str:
        """The FHIRPath of an element of one of the message's resources."""
        return element_path(self.bundle, resource, *parts)

    def resolve(self, reference: Reference | None, kind: type[R]) -> R | None:
        return resolve(self.bundle, reference, kind)

    def all_of(self, kind: type[R]) -> list[R]:
        return [resource for _, resource in _entries(self.bundle) if isinstance(resource, kind)]


def element_path(bundle: Bundle, resource: Resource, *parts: str) -> str:
    for index, entry in enumerate(bundle.entry or []):
        if entry.resource is resource:
            return fhirpath(["entry", str(index), "resource", *parts])
    raise LookupError("the resource is not in this message")


def resolve(bundle: Bundle, reference: Reference | None, kind: type[R]) -> R | None:
    """The resource of the message a reference names (by fullUrl, or Type/id)."""
    if reference is None or not reference.reference:
        return None
    for full_url, resource in _entries(bundle):
        named = f"{resource.get_resource_type()}/{resource.id}" if resource.id else None
        if reference.reference in (full_url, named) and isinstance(resource, kind):
            return resource
    return None


def _entries(bundle: Bundle) -> Iterator[tuple[str | None, Resource]]:
    for entry in bundle.entry or []:
        if entry.resource is not None:
            yield entry.fullUrl, entry.resource


def read_message(document: Any, mapping: CodeMapping, versions: tuple[str, ...]) -> Message:
    bundle = _bundle(document)
    _check_version(bundle, versions)
    header = _header(bundle)
    service_request = _focus(bundle, header)
    _check_use_case(bundle, service_request, mapping)
    action = _action(bundle, header, service_request)
    return Message(bundle, header, service_request, action, _digest(document))


def _bundle(document: Any) -> Bundle:
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        raise MessageInvalid(
            "The body of $process-message is a FHIR Bundle.",
            expression=["Bundle"],
            issue_code="structure",
        )
    try:
        bundle = Bundle.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()[:_MOST_ISSUES]
        raise MessageInvalid(
            "The Bundle is not valid FHIR R4: " + "; ".join(_reason(e) for e in errors) + ".",
            expression=[fhirpath([str(part) for part in e["loc"]]) for e in errors],
            issue_code="structure",
        ) from exc
    if bundle.type != "message":
        raise MessageInvalid(
            "The Bundle of a message is of type message.",
            expression=["Bundle.type"],
            issue_code="value",
        )
    return bundle


def _reason(error: Any) -> str:
    """Why an element failed, without its value: a FHIR model's own messages may quote it."""
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "a required element is missing"
    if kind == "extra_forbidden":
        return "an element FHIR does not define is present"
    return "an element's value is not valid for its type"


def _check_version(bundle: Bundle, versions: tuple[str, ...]) -> None:
    version = bundle.meta.versionId if bundle.meta is not None else None
    if not version:
        raise MessageInvalid(
            "Bundle.meta.versionId must give the version of BaRS the message follows.",
            expression=["Bundle.meta.versionId"],
            issue_code="required",
        )
    if version.split(".", 1)[0] not in versions:
        raise MessageNotSupported(
            f"This receiver takes messages of BaRS major version {', '.join(versions)}.",
            expression=["Bundle.meta.versionId"],
        )


def _header(bundle: Bundle) -> MessageHeader:
    entries = bundle.entry or []
    first = entries[0].resource if entries else None
    if not isinstance(first, MessageHeader):
        raise MessageInvalid(
            "The first entry of a message Bundle is its MessageHeader.",
            expression=["Bundle.entry[0]"],
            issue_code="invariant",
        )
    return first


def _focus(bundle: Bundle, header: MessageHeader) -> ServiceRequest:
    focus = header.focus[0] if header.focus else None
    found = resolve(bundle, focus, ServiceRequest)
    if found is None:
        raise MessageInvalid(
            "MessageHeader.focus must name the message's ServiceRequest.",
            expression=["Bundle.entry[0].resource.focus"],
            issue_code="required",
        )
    return found


def _check_use_case(bundle: Bundle, service_request: ServiceRequest, mapping: CodeMapping) -> None:
    codings = [
        (coding.system or "", coding.code or "")
        for concept in service_request.category or []
        for coding in concept.coding or []
    ]
    if not any(coding in mapping.use_cases for coding in codings):
        taken = ", ".join(code for _, code in sorted(mapping.use_cases))
        raise MessageNotSupported(
            f"ServiceRequest.category names no use case this receiver takes ({taken}).",
            expression=[element_path(bundle, service_request, "category")],
        )


def _action(bundle: Bundle, header: MessageHeader, service_request: ServiceRequest) -> Action:
    event = header.eventCoding.code if header.eventCoding is not None else None
    reasons = [c.code for c in (header.reason.coding or [])] if header.reason else []
    status = service_request.status
    for reason in reasons:
        action = WORKFLOWS.get((reason or "", status or ""))
        if event == EVENT and action is not None:
            return action
    raise WorkflowUnknown(
        f"A referral is sent with event {EVENT}, and reason new (ServiceRequest active), "
        "update (active) or update or cancel (revoked).",
        expression=[
            "Bundle.entry[0].resource.eventCoding",
            "Bundle.entry[0].resource.reason",
            element_path(bundle, service_request, "status"),
        ],
    )


def _digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
