"""Use cases of the FHIR door. A new referral is taken in by the intake every door shares
(``referrals.intake``); an update or a cancellation changes the referral it names under the
lifecycle's rules. The X-Request-Id is the idempotency key: a message already processed is
refused as a duplicate, one that arrives while its twin is being processed as too early.
They flush; the request edge commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.problems import ValidationFailed
from services.spa.audit import record_access
from services.spa.fhir import replies, translate
from services.spa.fhir.mapping import CodeMapping
from services.spa.fhir.messages import Action, Message
from services.spa.fhir.problems import (
    DuplicateMessage,
    MessageInProgress,
    MessageUnprocessable,
    ReferralNotKnown,
    ReferralStateConflict,
)
from services.spa.referrals import idempotency, intake, lifecycle
from services.spa.referrals import service as referrals
from services.spa.referrals.models import Referral, ReferralClinical
from services.spa.referrals.problems import IllegalTransition
from services.spa.referrals.schemas import CancellationCreate, ReferralCreate
from services.spa.settings import SpaSettings

AMENDED = "amended"
RETRY_AFTER = {"Retry-After": "1"}
# What an update may not change: what the referral was triaged and placed on.
_TRIAGED_ON = ("channel", "urgency", "needs", "red_flags", "unmapped_codes", "dx_code")
_PLACED_ON = ("date_of_birth", "postcode", "registered_practice")
_AMENDABLE = ("given_name", "family_name", "nhs_number", "nhs_number_verification")
_SETTLED = ("closed", "cancelled", "resolved_with_advice", "redirected_emergency")


@dataclass(frozen=True)
class Door:
    """What a message needs besides itself: the settings, the mapping and the intake's hooks."""

    settings: SpaSettings
    mapping: CodeMapping
    wait: int | None
    wait_for_outcome: intake.WaitForOutcome
    wake_router: Callable[[], None]
    correlation_id: str


@dataclass(frozen=True)
class Received:
    referral: Referral
    # Whether replies of its changes go back to the sender (it registered the endpoint).
    replies: bool
    # Clinical elements left out as invalid (their FHIRPaths), told back as warnings.
    left_out: tuple[str, ...] = ()


async def receive(
    session: AsyncSession,
    message: Message,
    principal: Principal,
    request_id: str,
    now: datetime,
    door: Door,
) -> Received:
    await _refuse_replay(session, principal, request_id, now)
    if message.action is Action.NEW:
        return await _take_in(session, message, principal, request_id, now, door)
    referral = await _named_referral(session, message, principal)
    left_out: tuple[str, ...] = ()
    if message.action is Action.CANCEL:
        _cancel(session, message, referral, principal)
    else:
        left_out = await _amend(session, message, referral, principal, door.mapping, now)
    await _remember(session, message, principal, request_id, referral, now, door.settings)
    door.wake_router()
    return Received(referral, await replies.has_route(session, referral.id), left_out)


async def _refuse_replay(
    session: AsyncSession, principal: Principal, request_id: str, now: datetime
) -> None:
    if await idempotency.find(session, principal.client_id, request_id, now) is not None:
        raise DuplicateMessage(
            "A message with this X-Request-Id has been processed already; nothing was changed."
        )


async def _take_in(
    session: AsyncSession,
    message: Message,
    principal: Principal,
    request_id: str,
    now: datetime,
    door: Door,
) -> Received:
    left_out: list[str] = []
    body = translate.referral_create(message, principal, door.mapping, now=now, left_out=left_out)
    routed: list[bool] = []

    async def reply_route(referral: Referral) -> None:
        routed.append(
            await replies.remember_route(
                session,
                message,
                referral,
                client_id=principal.client_id,
                request_id=request_id,
                correlation_id=door.correlation_id,
            )
        )

    try:
        taken = await intake.take_in(
            session,
            body,
            principal,
            request_id,
            now,
            settings=door.settings,
            wait=door.wait,
            wait_for_outcome=door.wait_for_outcome,
            wake_router=door.wake_router,
            with_referral=reply_route,
        )
    except ValidationFailed as exc:
        raise _refused_by_intake(message, exc) from exc
    if taken.replayed:
        # Not there when this request began: its twin committed while this one was processed.
        raise MessageInProgress(
            "A message with this X-Request-Id was being processed when this one arrived.",
            headers=RETRY_AFTER,
        )
    return Received(taken.referral, any(routed), tuple(left_out))


def _refused_by_intake(message: Message, exc: ValidationFailed) -> MessageUnprocessable:
    errors = exc.extensions.get("errors", [])
    found = [(tuple(str(e["field"]).split(".")), str(e["reason"])) for e in errors]
    return translate.unprocessable(message, found)


async def _named_referral(
    session: AsyncSession, message: Message, principal: Principal
) -> Referral:
    """The referral an update or cancellation names, by our id (as our answer gave it) or by
    the sender's own reference; only the sender's own referrals are found."""
    ours = _as_uuid(message.service_request.id)
    referral = await session.get(Referral, ours) if ours is not None else None
    if referral is None:
        reference = translate.referrer_reference(message)
        referral = await session.scalar(
            select(Referral)
            .where(
                Referral.referrer_client_id == principal.client_id,
                Referral.referrer_reference == reference,
            )
            .order_by(Referral.created_at.desc())
            .limit(1)
        )
    own = referral is not None and referral.referrer_client_id == principal.client_id
    if referral is not None:
        record_access(
            session,
            client_id=principal.client_id,
            action=f"referral.{message.action.value}",
            resource_type="referral",
            resource_id=referral.id,
            outcome="allowed" if own else "denied",
        )
    if referral is None or not own:
        raise ReferralNotKnown(
            "No referral made by this client has this ServiceRequest's id or identifier.",
            expression=[message.path(message.service_request, "identifier")],
        )
    return referral


def _cancel(
    session: AsyncSession, message: Message, referral: Referral, principal: Principal
) -> None:
    try:
        referrals.cancel(session, referral, CancellationCreate(reason="other"), principal.client_id)
    except IllegalTransition as exc:
        raise ReferralStateConflict(
            f"The referral is {referral.status} and can no longer be cancelled; "
            "speak to the team that holds it.",
            expression=[message.path(message.service_request, "status")],
        ) from exc


async def _amend(
    session: AsyncSession,
    message: Message,
    referral: Referral,
    principal: Principal,
    mapping: CodeMapping,
    now: datetime,
) -> tuple[str, ...]:
    """Take the patient's identity details, the referrer's note and the clinical payload from
    an update, and a safeguarding concern it newly raises (escalated to the CRU at once); what
    the referral was triaged and placed on is not changed behind the call handlers' and teams'
    backs. The clinical elements left out as invalid are returned (their FHIRPaths)."""
    if referral.status in _SETTLED:
        raise ReferralStateConflict(
            f"The referral is {referral.status}; an update can no longer change it.",
            expression=[message.path(message.service_request, "status")],
        )
    left_out: list[str] = []
    body = translate.referral_create(message, principal, mapping, now=now, left_out=left_out)
    changed = _triage_changes(referral, body)
    if changed:
        raise MessageUnprocessable(
            "An update cannot change what the referral was triaged on ("
            + ", ".join(changed)
            + "); cancel it and send a new referral.",
            expression=[message.path(message.service_request, "reasonCode")],
            issue_code="business-rule",
        )
    amended = _apply(referral, body)
    if await _amend_clinical(session, referral, body):
        amended.append("clinical")
    if body.safeguarding.concern and not referral.safeguarding.get("concern"):
        referral.safeguarding = body.safeguarding.model_dump(mode="json")
        referrals.add_job(session, referral, referrals.ESCALATE_JOB)
        amended.append("safeguarding")
    detail = {"fields": amended}
    lifecycle.record_event(session, referral, AMENDED, actor=principal.client_id, detail=detail)
    return tuple(left_out)


async def _amend_clinical(session: AsyncSession, referral: Referral, body: ReferralCreate) -> bool:
    """An update's clinical payload replaces the one kept (it is the sender's latest view); an
    update that carries none leaves it as it was. Whether it changed."""
    if body.clinical is None:
        return False
    details = body.clinical.model_dump(mode="json", exclude_none=True)
    kept = await session.get(ReferralClinical, referral.id)
    if kept is None:
        session.add(ReferralClinical(referral_id=referral.id, details=details))
        return True
    if kept.details == details:
        return False
    kept.details = details
    return True


def _triage_changes(referral: Referral, body: ReferralCreate) -> list[str]:
    was = {
        "channel": referral.channel,
        "urgency": referral.urgency,
        "needs": sorted(referral.needs),
        "red_flags": sorted(referral.red_flags),
        "unmapped_codes": referral.channel_details.get("unmapped_codes", []),
        "dx_code": (referral.channel_details.get("nhs111") or {}).get("dx_code"),
    }
    now = {
        "channel": body.channel.value,
        "urgency": body.urgency.value,
        "needs": sorted(need.value for need in body.needs),
        "red_flags": sorted(flag.value for flag in body.red_flags),
        "unmapped_codes": [code.model_dump() for code in body.unmapped_codes],
        "dx_code": body.nhs111.dx_code if body.nhs111 else None,
    }
    changed = [name for name in _TRIAGED_ON if was[name] != now[name]]
    patient = body.patient
    placed = {
        "date_of_birth": patient.date_of_birth,
        "postcode": patient.postcode,
        "registered_practice": patient.registered_practice,
    }
    return changed + [name for name in _PLACED_ON if getattr(referral, name) != placed[name]]


def _apply(referral: Referral, body: ReferralCreate) -> list[str]:
    amended = []
    for name in _AMENDABLE:
        value = getattr(body.patient, name)
        value = str(value) if value is not None else None
        if getattr(referral, name) != value:
            setattr(referral, name, value)
            amended.append(name)
    if body.reason != referral.reason:
        referral.reason = body.reason
        amended.append("reason")
    return amended


async def _remember(
    session: AsyncSession,
    message: Message,
    principal: Principal,
    request_id: str,
    referral: Referral,
    now: datetime,
    settings: SpaSettings,
) -> None:
    """Keep the request id of an update or cancellation, so that its repeat changes nothing."""
    retention = timedelta(hours=settings.idempotency_retention_hours)
    record = idempotency.new_record(
        principal.client_id, request_id, message.digest, referral.id, now, retention
    )
    record.status_code = 200
    session.add(record)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise MessageInProgress(
            "A message with this X-Request-Id was being processed when this one arrived.",
            headers=RETRY_AFTER,
        ) from exc


def _as_uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text or "")
    except ValueError:
        return None


async def own_referral(session: AsyncSession, referral_id: str, principal: Principal) -> Referral:
    """A referral this client sent, audited as read (a refusal too); any other is not found."""
    key = _as_uuid(referral_id)
    referral = await session.get(Referral, key) if key is not None else None
    own = referral is not None and referral.referrer_client_id == principal.client_id
    if key is not None:
        record_access(
            session,
            client_id=principal.client_id,
            action="referral.read",
            resource_type="referral",
            resource_id=key,
            outcome="allowed" if own else "denied",
        )
    if referral is None or not own:
        raise ReferralNotKnown(f"No referral {referral_id} made by this client.")
    return referral
