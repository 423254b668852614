"""What routing does to a referral, used by the workers only: the decision request it sends,
a decision applied (or a hold, or a refusal), the assignments it wants and records, the next
team when one lets the case go, and the status routing ends in. Request-time use cases are in
``service``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.identifiers import postcode_district
from services.shared.vocabulary import (
    AssignmentKind,
    AssignmentStatus,
    Channel,
    Need,
    Pathway,
    RedFlag,
    Urgency,
)
from services.shared.vocabulary import ReferralStatus as S
from services.spa.metrics import count
from services.spa.referrals import lifecycle
from services.spa.referrals.clients import (
    Assignment,
    AssignmentRequest,
    Decision,
    DecisionRequest,
    TeamRef,
    TeamsClient,
)
from services.spa.referrals.clocks import ClockPolicy
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.referrals.service import (
    ASSIGNMENT_WITHDRAWN,
    QueueReason,
    age_on,
    linked_worker,
    why_this_team,
)

# Why a referral was closed when the triage rules refuse it (the "closed" event's reason).
REFUSED_BY_RULES = "refused_by_rules"


def withdraw_assignment(
    session: AsyncSession,
    referral: Referral,
    assignment: ReferralAssignment,
    reason: str,
    actor: str,
) -> None:
    """Record that a team no longer holds the case, on the timeline (and so to subscribers)."""
    assignment.status = AssignmentStatus.WITHDRAWN
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
        if assignment.kind == AssignmentKind.CARE and assignment.status in (
            AssignmentStatus.ASSIGNED,
            AssignmentStatus.ACCEPTED,
        ):
            withdraw_assignment(session, referral, assignment, reason, actor)


def patient_place(referral: Referral) -> dict[str, str | None]:
    """Where the directory looks for the patient's teams: the practice, else the district."""
    district = postcode_district(referral.postcode) if referral.postcode else None
    return {"practice": referral.registered_practice, "district": district}


def decision_request(referral: Referral) -> DecisionRequest:
    """What routing is told to triage the referral."""
    return DecisionRequest(
        referral_id=referral.id,
        assessed_at=referral.assessed_at,
        channel=Channel(referral.channel),
        urgency=Urgency(referral.urgency),
        needs=[Need(need) for need in referral.needs],
        red_flags=[RedFlag(flag) for flag in referral.red_flags],
        age_years=age_on(referral.date_of_birth, referral.created_at.date()),
        practice=referral.registered_practice,
        postcode_district=postcode_district(referral.postcode) if referral.postcode else None,
        safeguarding_concern=bool(referral.safeguarding.get("concern")),
    )


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
) -> AssignmentRequest:
    """What teams is told to put the case on the team's caseload."""
    care = kind is AssignmentKind.CARE
    return AssignmentRequest(
        referral_id=referral.id,
        team_id=team.id,
        kind=kind,
        pathway=Pathway(referral.pathway) if care and referral.pathway else None,
        urgency=Urgency(referral.urgency),
        decision_id=referral.decision_id,
        risk=referral.risk,
        linked_worker=linked_worker(referral, team.id) if care else None,
        acceptance_window=acceptance_window,
    )


def queue_reason_without_team(referral: Referral) -> QueueReason:
    """Why a triaged case that no team took waits for the call handlers."""
    if referral.locality_code is None:
        return QueueReason.NO_LOCALITY
    steps = (referral.routing or {}).get("team_explanation", [])
    if any(step.get("code") == "practice_needed" for step in steps):
        return QueueReason.PRACTICE_UNKNOWN
    return QueueReason.NO_TEAM


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
    if target is S.ROUTED and care_team is not None:
        pathway = referral.pathway or "unknown"
        count(session, "routed", pathway=pathway, team_type=care_team.team_type)


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


async def next_team(
    teams: TeamsClient, policy: ClockPolicy, referral: Referral, tried: list[uuid.UUID]
) -> tuple[TeamRef, Assignment] | None:
    """Assign the case to the next team the directory names for its pathway, passing over the
    teams already tried; None when no team is left."""
    assert referral.pathway is not None
    resolution = await teams.resolve_pathway(
        Pathway(referral.pathway),
        exclude=list(dict.fromkeys(tried)),
        **patient_place(referral),
    )
    team = resolution.team
    if team is None or team.id in tried:
        return None
    kind = AssignmentKind.CARE
    request = assignment_request(referral, kind, team, policy.care_window(referral, kind))
    return team, await teams.assign(request)
