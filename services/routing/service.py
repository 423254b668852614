"""Use cases of the routing service. They flush; the request edge commits."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.clients import TeamsClient
from services.routing.models import Decision, ShadowDisagreement
from services.routing.problems import DecisionNotFound, NoActiveRuleSet
from services.routing.rule_sets import COUNTY, LoadedRuleSet, RuleBook, ScopeRules
from services.routing.rules import Evaluation, Facts, evaluate
from services.routing.schemas import DecisionCreate, EscalationRead, SampleReferral
from services.shared.vocabulary import UNASSIGNED_PATHWAYS


def facts_of(request: SampleReferral) -> Facts:
    return Facts(
        channel=request.channel,
        urgency=request.urgency,
        needs=frozenset(request.needs),
        red_flags=frozenset(request.red_flags),
        age_years=request.age_years,
        safeguarding_concern=request.safeguarding_concern,
    )


async def rules_for(
    session: AsyncSession, book: RuleBook, teams: TeamsClient, request: SampleReferral
) -> ScopeRules:
    """The rules of the referral's locality when it has its own, else the county's."""
    scopes = await book.scopes(session)
    if set(scopes) - {COUNTY}:
        locality = await teams.locate(practice=request.practice, district=request.postcode_district)
        if locality is not None and locality in scopes:
            return scopes[locality]
    if COUNTY not in scopes:
        raise NoActiveRuleSet("No county rule set is active.")
    return scopes[COUNTY]


async def decide(
    session: AsyncSession,
    book: RuleBook,
    teams: TeamsClient,
    request: DecisionCreate,
    requested_by: str,
) -> Decision:
    """Triage the referral, ask the directory for the team, and record the whole decision."""
    rules = await rules_for(session, book, teams, request)
    rule_set = rules.active.rules
    facts = facts_of(request)
    evaluation = evaluate(rule_set, facts)
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
    target = evaluation.response_target
    decision = Decision(
        referral_id=request.referral_id,
        requested_by=requested_by,
        facts=request.model_dump(mode="json", exclude={"referral_id"}),
        rule_set_id=rules.active.id,
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
    if rules.shadow is not None:
        compare_with_shadow(session, decision, evaluation, rules.shadow, facts)
    return decision


def compare_with_shadow(
    session: AsyncSession,
    decision: Decision,
    active: Evaluation,
    shadow: LoadedRuleSet,
    facts: Facts,
) -> None:
    """Evaluate the shadow candidate on the same facts; record it only where it disagrees."""
    candidate = evaluate(shadow.rules, facts)
    if (candidate.pathway, candidate.escalations) == (active.pathway, active.escalations):
        return
    session.add(
        ShadowDisagreement(
            decision_id=decision.id,
            candidate_id=shadow.id,
            active_pathway=active.pathway,
            active_rule=active.rule.id,
            candidate_pathway=candidate.pathway,
            candidate_rule=candidate.rule.id,
            active_escalations=[str(e) for e in active.escalations],
            candidate_escalations=[str(e) for e in candidate.escalations],
        )
    )


async def get_decision(session: AsyncSession, decision_id: uuid.UUID) -> Decision:
    decision = await session.get(Decision, decision_id)
    if decision is None:
        raise DecisionNotFound(f"No decision has the id {decision_id}.")
    return decision
