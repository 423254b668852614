"""Use cases of referrals. They flush; the request edge (or the worker) commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.calendar import LOCAL
from services.shared.logging import current_request_id
from services.shared.problems import ValidationFailed
from services.shared.tracing import current_traceparent
from services.shared.vocabulary import ReferralStatus as S
from services.shared.vocabulary import Urgency
from services.spa.audit import record_access
from services.spa.referrals import lifecycle
from services.spa.referrals.clinical_schemas import clinical_problems
from services.spa.referrals.models import (
    OutboxJob,
    Referral,
    ReferralAssignment,
    ReferralClinical,
    ReferralEvent,
)
from services.spa.referrals.problems import ChannelNotPermitted
from services.spa.referrals.schemas import (
    AdviceIn,
    CancellationCreate,
    ReferralCreate,
    birth_date_problem,
)

ROUTE_JOB = "route"
SPA_ACTOR = "spa"
# Seen only by call handlers: a referrer must not learn of another referrer's referral.
DUPLICATE_LINKED = "possible_duplicate_linked"
WITHDRAW_JOB = "withdraw"
ESCALATE_JOB = "escalate"

# Statuses of a referral still being worked: a new one for the same need may be a duplicate.
OPEN_STATUSES = (
    S.RECEIVED,
    S.AWAITING_ASSESSMENT,
    S.TRIAGED,
    S.ROUTED,
    S.ACCEPTED,
    S.DECLINED,
    S.REROUTED,
)


# Told the id of a referral whose status may have changed (wakes requests waiting on it).
ChangeListener = Callable[[uuid.UUID], None]


class QueueReason(StrEnum):
    """Why a case waits for a call handler."""

    CONTACT_ASSESSMENT = "contact_assessment"
    POSSIBLE_DUPLICATE = "possible_duplicate"
    NO_TEAM = "no_team"
    # Neither the practice nor the postcode places the patient in a locality: county-wide
    # call handlers take it.
    NO_LOCALITY = "no_locality"
    # Long-term work for a patient whose practice is not known: the locality's handlers find
    # the practice, and so its team.
    PRACTICE_UNKNOWN = "practice_unknown"
    ROUTING_REFUSED = "routing_refused"
    # The referral carries codes no mapping turns into needs or red flags: a handler reads
    # them rather than the system dropping or guessing them.
    UNMAPPED_CODES = "unmapped_codes"


async def create_referral(
    session: AsyncSession,
    body: ReferralCreate,
    principal: Principal,
    *,
    duplicate_window: timedelta,
    now: datetime,
) -> Referral:
    """Store the referral with its first timeline event and what happens next: resolved at once
    with the county's advice, or a job that routes it (or puts it in the call-handler queue)."""
    if body.channel not in principal.channels:
        raise ChannelNotPermitted(
            f"This client may not post referrals on the {body.channel} channel."
        )
    _check_against_clock(body, now)
    referral = _new_referral(body, principal)
    referral.received_at = now
    session.add(referral)
    await session.flush()
    if body.clinical is not None:
        details = body.clinical.model_dump(mode="json", exclude_none=True)
        session.add(ReferralClinical(referral_id=referral.id, details=details))
    detail: dict[str, Any] = {"channel": body.channel, "urgency": body.urgency}
    if body.nhs111 is not None and body.nhs111.dx_code:
        detail["dx_code"] = body.nhs111.dx_code
    lifecycle.record_event(
        session,
        referral,
        "received",
        actor=principal.client_id,
        detail=detail,
        to_status=S.RECEIVED,
    )
    if body.contact is not None and body.contact.advice is not None:
        resolve_with_advice(session, referral, body.contact.advice, actor=principal.client_id)
    else:
        if body.contact is not None and not body.red_flags:
            # A red flag must not wait for an assessment: triage redirects it at once.
            referral.queue_reason = QueueReason.CONTACT_ASSESSMENT
        elif body.unmapped_codes and not body.red_flags:
            referral.queue_reason = QueueReason.UNMAPPED_CODES
        await _link_possible_duplicate(session, referral, duplicate_window, now)
        add_job(session, referral, ROUTE_JOB)
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.create",
        resource_type="referral",
        resource_id=referral.id,
    )
    await session.flush()
    return referral


def _check_against_clock(body: ReferralCreate, now: datetime) -> None:
    """What the schema cannot check without the service's clock: a birth date, and the times
    of the clinical payload's observations."""
    errors = []
    reason = birth_date_problem(body.patient.date_of_birth, now.astimezone(LOCAL).date())
    if reason is not None:
        errors.append({"in": "body", "field": "patient.date_of_birth", "reason": reason})
    if body.clinical is not None:
        errors += clinical_problems(body.clinical, now)
    if errors:
        raise ValidationFailed("One or more fields are invalid; see errors.", errors=errors)


def _new_referral(body: ReferralCreate, principal: Principal) -> Referral:
    patient = body.patient
    channel_details: dict[str, Any] = {}
    if body.nhs111 is not None:
        channel_details["nhs111"] = body.nhs111.model_dump(mode="json", exclude_none=True)
    if body.contact is not None:
        channel_details["contact"] = {"outcome": body.contact.outcome}
    if body.unmapped_codes:
        channel_details["unmapped_codes"] = [code.model_dump() for code in body.unmapped_codes]
    return Referral(
        id=uuid.uuid4(),
        status=S.RECEIVED,
        channel=body.channel,
        urgency=body.urgency,
        needs=list(body.needs),
        red_flags=list(body.red_flags),
        nhs_number=patient.nhs_number,
        nhs_number_verification=str(patient.nhs_number_verification),
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=patient.date_of_birth,
        postcode=patient.postcode,
        registered_practice=patient.registered_practice,
        safeguarding=body.safeguarding.model_dump(mode="json"),
        consent=body.consent.model_dump(mode="json"),
        reason=body.reason,
        risk=body.risk.model_dump(exclude_defaults=True),
        referrer_client_id=principal.client_id,
        referrer_organisation=body.referrer.organisation,
        referrer_reference=body.referrer.reference,
        channel_details=channel_details,
    )


def resolve_with_advice(
    session: AsyncSession, referral: Referral, advice: AdviceIn, *, actor: str
) -> None:
    referral.advice = advice.model_dump(mode="json", exclude_none=True)
    release_from_queue(referral)
    detail = {"topics": [topic.value for topic in advice.topics]}
    lifecycle.transition(session, referral, S.RESOLVED_WITH_ADVICE, actor=actor, detail=detail)


def release_from_queue(referral: Referral) -> None:
    """The case no longer waits for a call handler: its queue place and any claim go."""
    referral.queue_reason = None
    clear_claim(referral)


def clear_claim(referral: Referral) -> None:
    referral.claim_id = None
    referral.claim_client_id = None
    referral.claim_handler = None
    referral.claim_expires_at = None


async def _link_possible_duplicate(
    session: AsyncSession, referral: Referral, window: timedelta, now: datetime
) -> None:
    """Link a referral for a patient and need already open here to that referral, and hold it
    for a call handler to decide; unless it carries red flags or is a crisis, which must not
    wait (an ambulance crew waits with the patient to hear who will come)."""
    earlier = await possible_duplicate(session, referral, window, now)
    if earlier is None:
        return
    referral.possible_duplicate_of = earlier.id
    urgent = bool(referral.red_flags) or referral.urgency == Urgency.CRISIS
    if not urgent and referral.queue_reason is None:
        referral.queue_reason = QueueReason.POSSIBLE_DUPLICATE
    for one, other in ((referral, earlier), (earlier, referral)):
        detail = {"other_referral_id": str(other.id)}
        lifecycle.record_event(session, one, DUPLICATE_LINKED, actor=SPA_ACTOR, detail=detail)


async def possible_duplicate(
    session: AsyncSession, referral: Referral, window: timedelta, now: datetime
) -> Referral | None:
    """The oldest open referral within the window for the same person with a need in common.
    The person is matched on NHS number, or without one on family name, birth date and postcode."""
    if window <= timedelta(0):
        return None
    query = select(Referral).where(
        Referral.id != referral.id,
        Referral.status.in_(OPEN_STATUSES),
        Referral.created_at >= now - window,
    )
    if referral.nhs_number:
        query = query.where(Referral.nhs_number == referral.nhs_number)
    elif referral.family_name and referral.postcode:
        query = query.where(
            Referral.date_of_birth == referral.date_of_birth,
            func.lower(Referral.family_name) == referral.family_name.lower(),
            Referral.postcode == referral.postcode,
        )
    else:
        return None
    needs = set(referral.needs)
    for candidate in await session.scalars(query.order_by(Referral.created_at).limit(50)):
        if needs & set(candidate.needs):
            return candidate
    return None


def cancel(session: AsyncSession, referral: Referral, body: CancellationCreate, actor: str) -> None:
    """The referrer withdraws the referral; any team holding it for care is told. A safeguarding
    escalation stays with the CRU: the duty to look into a concern does not end with a referral."""
    detail = {"reason": body.reason.value}
    lifecycle.transition(session, referral, S.CANCELLED, actor=actor, detail=detail)
    if body.note:
        referral.cancellation_note = body.note
    release_from_queue(referral)
    if referral.safeguarding.get("concern"):
        # Idempotent: a CRU that already holds the concern keeps the one assignment.
        add_job(session, referral, ESCALATE_JOB)
    add_job(session, referral, WITHDRAW_JOB)


def is_call_handler(principal: Principal) -> bool:
    return "queue:work" in principal.scopes


def handled_by(referral: Referral, principal: Principal) -> bool:
    """Whether the referral came to a call-handler queue this client works."""
    came = (
        referral.queue_reason is not None
        or referral.came_to_queue
        or referral.escalated_at is not None  # on its locality coordinator's list
    )
    return came and principal.works_locality(referral.locality_code)


def add_job(session: AsyncSession, referral: Referral, kind: str) -> None:
    """A job for the referral, carrying the request's id and trace for the worker."""
    session.add(
        OutboxJob(
            referral_id=referral.id,
            kind=kind,
            request_id=current_request_id(),
            traceparent=current_traceparent(),
        )
    )


ASSIGNMENT_WITHDRAWN = "assignment_withdrawn"


async def visible_referral(
    session: AsyncSession, referral_id: uuid.UUID, principal: Principal
) -> Referral | None:
    """The referral if this client may see it (need to know)."""
    referral = await session.get(Referral, referral_id)
    if referral is None:
        return None
    held: list[str] = []
    if principal.teams:
        held = list(
            await session.scalars(
                select(ReferralAssignment.team_code).where(
                    ReferralAssignment.referral_id == referral.id
                )
            )
        )
    return referral if may_see(referral, principal, held) else None


def may_see(referral: Referral, principal: Principal, team_codes: list[str]) -> bool:
    """The referrer that made it, a call-handler system working the locality whose queue it
    came to, or a system acting for a team the referral is assigned to."""
    if referral.referrer_client_id == principal.client_id:
        return True
    if is_call_handler(principal) and handled_by(referral, principal):
        return True
    return any(code in principal.teams for code in team_codes)


async def assignments_of(session: AsyncSession, referral_id: uuid.UUID) -> list[ReferralAssignment]:
    query = select(ReferralAssignment).where(ReferralAssignment.referral_id == referral_id)
    return list(await session.scalars(query.order_by(ReferralAssignment.created_at)))


async def timeline_of(session: AsyncSession, referral_id: uuid.UUID) -> list[ReferralEvent]:
    query = select(ReferralEvent).where(ReferralEvent.referral_id == referral_id)
    return list(await session.scalars(query.order_by(ReferralEvent.id)))


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _decision_named(referral: Referral, team_id: uuid.UUID | None) -> dict[str, Any] | None:
    """The decision's routing record, if the team it named is ``team_id``."""
    routing: dict[str, Any] = referral.routing or {}
    named = (routing.get("team") or {}).get("id")
    return routing if team_id is not None and named == str(team_id) else None


def linked_worker(referral: Referral, team_id: uuid.UUID | None) -> str | None:
    """The practice's linked worker, when the team is the one the decision named with one."""
    routing = _decision_named(referral, team_id)
    return routing.get("linked_worker") if routing else None


def why_this_team(referral: Referral, team_id: uuid.UUID | None) -> list[str]:
    """The directory's reasons for the team, in plain words, when it is the decision's team."""
    routing = _decision_named(referral, team_id)
    return [step["message"] for step in routing.get("team_explanation", [])] if routing else []
