"""Use cases of the routing service. They flush; the request edge commits."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.clients import TeamsClient
from services.routing.models import Decision
from services.routing.problems import DecisionNotFound
from services.routing.rules import Facts, RuleSet, evaluate
from services.routing.schemas import DecisionCreate, EscalationRead
from services.shared.vocabulary import UNASSIGNED_PATHWAYS


def facts_of(request: DecisionCreate) -> Facts:
    return Facts(
        channel=request.channel,
        urgency=request.urgency,
        needs=frozenset(request.needs),
        red_flags=frozenset(request.red_flags),
        age_years=request.age_years,
        safeguarding_concern=request.safeguarding_concern,
    )


async def decide(
    session: AsyncSession,
    rule_set: RuleSet,
    teams: TeamsClient,
    request: DecisionCreate,
    requested_by: str,
) -> Decision:
    """Triage the referral, ask the directory for the team, and record the whole decision."""
    evaluation = evaluate(rule_set, facts_of(request))
    if evaluation.pathway in UNASSIGNED_PATHWAYS:
        team, outcome, explanation = None, "no_assignment", []
    else:
        resolution = await teams.resolve(
            practice=request.practice,
            district=request.postcode_district,
            pathway=evaluation.pathway,
        )
        outcome = resolution.outcome
        explanation = [step.model_dump() for step in resolution.explanation]
        team = (
            {
                "team": resolution.team.model_dump(mode="json"),
                "linked_worker": resolution.linked_worker,
            }
            if resolution.team
            else None
        )
    escalations = []
    for escalation in evaluation.escalations:
        resolved = await teams.resolve(
            practice=request.practice, district=request.postcode_district, escalation=escalation
        )
        escalations.append(
            EscalationRead(
                escalation=escalation, team=resolved.team, explanation=resolved.explanation
            )
        )
    target = evaluation.policy.response_target
    decision = Decision(
        referral_id=request.referral_id,
        requested_by=requested_by,
        facts=request.model_dump(mode="json", exclude={"referral_id"}),
        rule_set_version=rule_set.version,
        rule_id=evaluation.rule.id,
        pathway=evaluation.pathway,
        priority=evaluation.policy.priority,
        response_target_seconds=int(target.total_seconds()) if target is not None else None,
        reason=evaluation.rule.reason,
        trace=evaluation.trace,
        team=team,
        team_outcome=outcome,
        team_explanation=explanation,
        escalations=[item.model_dump(mode="json") for item in escalations],
    )
    session.add(decision)
    await session.flush()
    return decision


async def get_decision(session: AsyncSession, decision_id: uuid.UUID) -> Decision:
    decision = await session.get(Decision, decision_id)
    if decision is None:
        raise DecisionNotFound(f"No decision has the id {decision_id}.")
    return decision
