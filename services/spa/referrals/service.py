"""Use cases of referrals. They flush; the request edge (or the worker) commits."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.identifiers import postcode_district
from services.shared.logging import current_request_id
from services.shared.vocabulary import AssignmentKind, Pathway
from services.shared.vocabulary import ReferralStatus as S
from services.spa.audit import record_access
from services.spa.referrals import lifecycle
from services.spa.referrals.clients import Assignment, Decision, TeamRef
from services.spa.referrals.models import OutboxJob, Referral, ReferralAssignment, ReferralEvent
from services.spa.referrals.problems import ChannelNotPermitted
from services.spa.referrals.schemas import ReferralCreate

ROUTE_JOB = "route"


async def create_referral(
    session: AsyncSession, body: ReferralCreate, principal: Principal
) -> Referral:
    """Store the referral with its first timeline event and the job that will route it."""
    if body.channel not in principal.channels:
        raise ChannelNotPermitted(
            f"This client may not post referrals on the {body.channel} channel."
        )
    patient = body.patient
    referral = Referral(
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
    )
    session.add(referral)
    await session.flush()
    detail = {"channel": body.channel, "urgency": body.urgency}
    session.add(
        lifecycle.record_event(
            referral, "received", actor=principal.client_id, detail=detail, to_status=S.RECEIVED
        )
    )
    session.add(OutboxJob(referral_id=referral.id, kind=ROUTE_JOB, request_id=current_request_id()))
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.create",
        resource_type="referral",
        resource_id=referral.id,
    )
    await session.flush()
    return referral


async def visible_referral(
    session: AsyncSession, referral_id: uuid.UUID, principal: Principal
) -> Referral | None:
    """The referral if this client may see it: the referrer that made it, or a system acting for
    a team the referral is assigned to (need to know)."""
    referral = await session.get(Referral, referral_id)
    if referral is None:
        return None
    if referral.referrer_client_id == principal.client_id:
        return referral
    if principal.teams:
        held = await session.scalar(
            select(ReferralAssignment.id)
            .where(
                ReferralAssignment.referral_id == referral.id,
                ReferralAssignment.team_code.in_(principal.teams),
            )
            .limit(1)
        )
        if held is not None:
            return referral
    return None


async def assignments_of(session: AsyncSession, referral_id: uuid.UUID) -> list[ReferralAssignment]:
    query = select(ReferralAssignment).where(ReferralAssignment.referral_id == referral_id)
    return list(await session.scalars(query.order_by(ReferralAssignment.created_at)))


async def timeline_of(session: AsyncSession, referral_id: uuid.UUID) -> list[ReferralEvent]:
    query = select(ReferralEvent).where(ReferralEvent.referral_id == referral_id)
    return list(await session.scalars(query.order_by(ReferralEvent.id)))


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def decision_request(referral: Referral) -> dict[str, object]:
    """What routing is told: codes, an age and a place; no identifiers, no free text."""
    return {
        "referral_id": str(referral.id),
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
    referral.pathway = decision.pathway
    referral.priority = decision.priority
    referral.response_target_seconds = (
        int(decision.response_target.total_seconds()) if decision.response_target else None
    )
    referral.routing_reason = decision.reason
    referral.routing = decision.model_dump(
        mode="json", include={"team", "team_outcome", "escalations"}
    )
    detail = {
        "decision_id": str(decision.id),
        "pathway": decision.pathway,
        "rule_id": decision.rule_id,
        "rule_set_version": decision.rule_set_version,
    }
    session.add(lifecycle.transition(referral, S.TRIAGED, actor=actor, detail=detail))


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
    referral: Referral, kind: AssignmentKind, team: TeamRef
) -> dict[str, object]:
    return {
        "referral_id": str(referral.id),
        "team_id": str(team.id),
        "kind": kind,
        "pathway": referral.pathway if kind is AssignmentKind.CARE else None,
        "urgency": referral.urgency,
        "decision_id": str(referral.decision_id) if referral.decision_id else None,
        "risk": referral.risk,
    }


def apply_assignments(
    session: AsyncSession,
    referral: Referral,
    made: list[tuple[AssignmentKind, TeamRef, Assignment]],
    actor: str,
) -> None:
    """Record the assignments and move the referral to where its pathway ends."""
    care_team = None
    for kind, team, assignment in made:
        session.add(
            ReferralAssignment(
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
            session.add(
                lifecycle.record_event(
                    referral, "safeguarding_escalated", actor=actor, detail=detail
                )
            )
        else:
            care_team = team
    session.add(
        lifecycle.transition(
            referral,
            _final_status(referral, care_team),
            actor=actor,
            detail=_team_detail(care_team),
        )
    )


def _final_status(referral: Referral, care_team: TeamRef | None) -> S:
    if referral.pathway == Pathway.REDIRECT_EMERGENCY:
        return S.REDIRECTED_EMERGENCY
    if referral.pathway == Pathway.ADVICE:
        return S.RESOLVED_WITH_ADVICE
    # No team could be found even on the county queue: the locality SPA's handlers take it.
    return S.ROUTED if care_team is not None else S.AWAITING_ASSESSMENT


def _team_detail(team: TeamRef | None) -> dict[str, object]:
    return {"team_id": str(team.id), "team_type": team.team_type} if team else {}
