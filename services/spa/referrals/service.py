"""Use cases of referrals. They flush; the request edge (or the worker) commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.calendar import LOCAL
from services.shared.identifiers import postcode_district
from services.shared.logging import current_request_id
from services.shared.problems import ValidationFailed
from services.shared.vocabulary import AssignmentKind, Pathway, Urgency
from services.shared.vocabulary import ReferralStatus as S
from services.spa.audit import record_access
from services.spa.referrals import lifecycle
from services.spa.referrals.clients import Assignment, Decision, TeamRef
from services.spa.referrals.models import OutboxJob, Referral, ReferralAssignment, ReferralEvent
from services.spa.referrals.problems import ChannelNotPermitted
from services.spa.referrals.schemas import (
    AdviceIn,
    CancellationCreate,
    ReferralCreate,
    birth_date_problem,
)

ROUTE_JOB = "route"
SPA_ACTOR = "spa"
# Durations go to other services as ISO 8601 ("PT8H").
_DURATION = TypeAdapter(timedelta)
# Seen only by call handlers: a referrer must not learn of another referrer's referral.
DUPLICATE_LINKED = "possible_duplicate_linked"
WITHDRAW_JOB = "withdraw"
ESCALATE_JOB = "escalate"
# Why a referral was closed when the triage rules refuse it (the "closed" event's reason).
REFUSED_BY_RULES = "refused_by_rules"

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
    _check_birth_date(body, now)
    referral = _new_referral(body, principal)
    referral.received_at = now
    session.add(referral)
    await session.flush()
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
        await _link_possible_duplicate(session, referral, duplicate_window, now)
        session.add(
            OutboxJob(referral_id=referral.id, kind=ROUTE_JOB, request_id=current_request_id())
        )
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.create",
        resource_type="referral",
        resource_id=referral.id,
    )
    await session.flush()
    return referral


def _check_birth_date(body: ReferralCreate, now: datetime) -> None:
    reason = birth_date_problem(body.patient.date_of_birth, now.astimezone(LOCAL).date())
    if reason is not None:
        raise ValidationFailed(
            "One or more fields are invalid; see errors.",
            errors=[{"in": "body", "field": "patient.date_of_birth", "reason": reason}],
        )


def _new_referral(body: ReferralCreate, principal: Principal) -> Referral:
    patient = body.patient
    channel_details: dict[str, Any] = {}
    if body.nhs111 is not None:
        channel_details["nhs111"] = body.nhs111.model_dump(mode="json", exclude_none=True)
    if body.contact is not None:
        channel_details["contact"] = {"outcome": body.contact.outcome}
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
    session.add(OutboxJob(referral_id=referral.id, kind=kind, request_id=current_request_id()))


ASSIGNMENT_WITHDRAWN = "assignment_withdrawn"


def withdraw_assignment(
    session: AsyncSession,
    referral: Referral,
    assignment: ReferralAssignment,
    reason: str,
    actor: str,
) -> None:
    """Record that a team no longer holds the case, on the timeline (and so to subscribers)."""
    assignment.status = "withdrawn"
    detail = {
        "assignment_id": str(assignment.assignment_id),
        "team_id": str(assignment.team_id),
        "reason": reason,
    }
    lifecycle.record_event(session, referral, ASSIGNMENT_WITHDRAWN, actor=actor, detail=detail)


def mark_withdrawn(
    session: AsyncSession,
    referral: Referral,
    assignments: list[ReferralAssignment],
    reason: str,
    actor: str,
) -> None:
    for assignment in assignments:
        if assignment.kind == AssignmentKind.CARE and assignment.status in ("assigned", "accepted"):
            withdraw_assignment(session, referral, assignment, reason, actor)


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


def patient_place(referral: Referral) -> dict[str, str | None]:
    """Where the directory looks for the patient's teams: the practice, else the district."""
    district = postcode_district(referral.postcode) if referral.postcode else None
    return {"practice": referral.registered_practice, "district": district}


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def decision_request(referral: Referral) -> dict[str, object]:
    """What routing is told: codes, an age and a place; no identifiers, no free text. With the
    referral id, the time of the assessment triage follows (none at intake) tells routing which
    triage this is: a retry of the same one gets the decision already recorded."""
    assessed_at = referral.assessed_at.isoformat() if referral.assessed_at else None
    return {
        "referral_id": str(referral.id),
        "assessed_at": assessed_at,
        "channel": referral.channel,
        "urgency": referral.urgency,
        "needs": referral.needs,
        "red_flags": referral.red_flags,
        "age_years": age_on(referral.date_of_birth, referral.created_at.date()),
        "practice": referral.registered_practice,
        "postcode_district": postcode_district(referral.postcode) if referral.postcode else None,
        "safeguarding_concern": bool(referral.safeguarding.get("concern")),
    }


def apply_decision(
    session: AsyncSession, referral: Referral, decision: Decision, actor: str
) -> None:
    referral.decision_id = decision.id
    referral.locality_code = decision.locality_code or referral.locality_code
    referral.pathway = decision.pathway
    referral.priority = decision.priority
    referral.response_target_seconds = (
        int(decision.response_target.total_seconds()) if decision.response_target else None
    )
    referral.routing_reason = decision.reason
    referral.routing = decision.model_dump(
        mode="json",
        include={
            "team",
            "linked_worker",
            "team_outcome",
            "team_explanation",
            "escalations",
            "refuse",
        },
    )
    detail = {
        "decision_id": str(decision.id),
        "pathway": decision.pathway,
        "rule_id": decision.rule_id,
        "rule_set_version": decision.rule_set_version,
    }
    lifecycle.transition(session, referral, S.TRIAGED, actor=actor, detail=detail)


def hold_by_decision(
    session: AsyncSession, referral: Referral, decision: Decision, actor: str
) -> None:
    """The rules hold the case for a call handler (a child, say): no pathway is acted on and
    no team is asked; the handlers of its locality (or the county's) take it."""
    assert decision.hold is not None
    referral.decision_id = decision.id
    referral.locality_code = decision.locality_code or referral.locality_code
    referral.routing_reason = decision.reason
    referral.queue_reason = decision.hold
    detail = {
        "decision_id": str(decision.id),
        "rule_id": decision.rule_id,
        "queue_reason": decision.hold,
    }
    if referral.status == S.AWAITING_ASSESSMENT:  # assessed, and held by the rules again
        lifecycle.record_event(session, referral, "held_by_rules", actor=actor, detail=detail)
    else:
        lifecycle.transition(session, referral, S.AWAITING_ASSESSMENT, actor=actor, detail=detail)


def refuse_by_decision(
    session: AsyncSession, referral: Referral, decision: Decision, actor: str
) -> None:
    """The rules refuse the case (a locality that sends children back to the referrer, say): it
    is triaged and closed at once, no team is asked, and the referrer reads the rule's reason."""
    assert decision.refuse is not None
    apply_decision(session, referral, decision, actor)
    detail = {
        "reason": REFUSED_BY_RULES,
        "refusal": decision.refuse,
        "decision_id": str(decision.id),
        "rule_id": decision.rule_id,
    }
    lifecycle.transition(session, referral, S.CLOSED, actor=actor, detail=detail)


def assignments_wanted(referral: Referral) -> list[tuple[AssignmentKind, TeamRef]]:
    """The teams a triaged referral goes to: the pathway's team and each escalation's team."""
    routing = referral.routing or {}
    wanted: list[tuple[AssignmentKind, TeamRef]] = []
    if routing.get("team"):
        wanted.append((AssignmentKind.CARE, TeamRef.model_validate(routing["team"])))
    for escalation in routing.get("escalations", []):
        if escalation.get("team"):
            wanted.append((AssignmentKind.SAFEGUARDING, TeamRef.model_validate(escalation["team"])))
    return wanted


def assignment_request(
    referral: Referral,
    kind: AssignmentKind,
    team: TeamRef,
    acceptance_window: timedelta | None = None,
) -> dict[str, object]:
    """What teams is told to put the case on a caseload; teams counts the acceptance window
    against the team's hours and answers when it ends."""
    request: dict[str, object] = {
        "referral_id": str(referral.id),
        "team_id": str(team.id),
        "kind": kind,
        "pathway": referral.pathway if kind is AssignmentKind.CARE else None,
        "urgency": referral.urgency,
        "decision_id": str(referral.decision_id) if referral.decision_id else None,
        "risk": referral.risk,
    }
    worker = linked_worker(referral, team.id) if kind is AssignmentKind.CARE else None
    if worker is not None:
        request["linked_worker"] = worker
    if acceptance_window is not None:
        request["acceptance_window"] = _DURATION.dump_python(acceptance_window, mode="json")
    return request


def queue_reason_without_team(referral: Referral) -> QueueReason:
    """Why a triaged case that no team took waits for the call handlers."""
    if referral.locality_code is None:
        return QueueReason.NO_LOCALITY
    steps = (referral.routing or {}).get("team_explanation", [])
    if any(step.get("code") == "practice_needed" for step in steps):
        return QueueReason.PRACTICE_UNKNOWN
    return QueueReason.NO_TEAM


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


def finish_routing(
    session: AsyncSession,
    referral: Referral,
    target: S,
    care_team: TeamRef | None,
    actor: str,
) -> None:
    """Move the triaged referral to where its pathway ends."""
    detail = _team_detail(referral, care_team)
    lifecycle.transition(session, referral, target, actor=actor, detail=detail)


def record_assignment(
    session: AsyncSession,
    referral: Referral,
    kind: AssignmentKind,
    team: TeamRef,
    assignment: Assignment,
    existing: list[ReferralAssignment],
    actor: str,
    *,
    at: datetime,
) -> bool:
    """Record one assignment teams made, once (teams answers a repeat with the same one);
    True when recorded now."""
    if any(row.assignment_id == assignment.id for row in existing):
        return False
    session.add(
        ReferralAssignment(
            created_at=at,
            referral_id=referral.id,
            kind=kind,
            team_id=team.id,
            team_code=team.code,
            team_name=team.name,
            team_type=team.team_type,
            assignment_id=assignment.id,
            status=assignment.status,
        )
    )
    if kind is AssignmentKind.SAFEGUARDING:
        detail = {"team_id": str(team.id), "escalation": "safeguarding"}
        lifecycle.record_event(
            session, referral, "safeguarding_escalated", actor=actor, detail=detail
        )
    return True


def final_status(referral: Referral, care_team: TeamRef | None) -> S:
    if referral.pathway == Pathway.REDIRECT_EMERGENCY:
        return S.REDIRECTED_EMERGENCY
    if referral.pathway == Pathway.ADVICE:
        return S.RESOLVED_WITH_ADVICE
    # No team could be found even on the county queue: the locality SPA's handlers take it.
    return S.ROUTED if care_team is not None else S.AWAITING_ASSESSMENT


def _team_detail(referral: Referral, team: TeamRef | None) -> dict[str, object]:
    """What the timeline (and subscribers) hear of the team a case went to, and why."""
    if team is None:
        return {}
    detail: dict[str, object] = {"team_id": str(team.id), "team_type": team.team_type}
    worker = linked_worker(referral, team.id)
    if worker is not None:
        detail["linked_worker"] = worker
    reasons = why_this_team(referral, team.id)
    if reasons:
        detail["why"] = reasons
    return detail
