"""Use cases of the routing service. They flush; the request edge commits."""

from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.clients import TeamsClient
from services.routing.models import Decision, ShadowDisagreement
from services.routing.problems import DecisionNotFound, DirectoryUnavailable, NoActiveRuleSet
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


def request_key(request: DecisionCreate) -> str:
    """What makes two requests the same triage asked twice: the SHA-256 of every field, with
    needs and red flags taken as the sets they are."""
    fields = request.model_dump(mode="json")
    fields["needs"], fields["red_flags"] = sorted(fields["needs"]), sorted(fields["red_flags"])
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def recorded_decision(
    session: AsyncSession, referral_id: uuid.UUID, key: str
) -> Decision | None:
    return await session.scalar(
        select(Decision).where(Decision.referral_id == referral_id, Decision.request_key == key)
    )


async def decide(
    session: AsyncSession,
    book: RuleBook,
    teams: TeamsClient,
    request: DecisionCreate,
    requested_by: str,
) -> tuple[Decision, bool]:
    """Triage the referral, ask the directory for the team, and record the whole decision; and
    whether it is new. A request asked again (a retry after a timeout) gets the decision
    recorded the first time, and nothing new is recorded."""
    key = request_key(request)
    recorded = await recorded_decision(session, request.referral_id, key)
    if recorded is not None:
        return recorded, False
    rules = await rules_for(session, book, teams, request)
    facts = facts_of(request)
    evaluation = evaluate(rules.active.rules, facts)
    decision = await _decision(teams, request, rules.active, evaluation)
    decision.requested_by, decision.request_key = requested_by, key
    stored = await _record(session, decision)
    if stored is not decision:
        return stored, False
    if rules.shadow is not None:
        compare_with_shadow(session, decision, evaluation, rules.shadow, facts)
    return decision, True


async def _record(session: AsyncSession, decision: Decision) -> Decision:
    """Record the decision; or, when the same request asked at the same time was recorded
    first, that one."""
    try:
        async with session.begin_nested():
            session.add(decision)
    except IntegrityError:
        recorded = await recorded_decision(session, decision.referral_id, decision.request_key)
        if recorded is None:
            raise
        return recorded
    return decision


async def _decision(
    teams: TeamsClient, request: DecisionCreate, active: LoadedRuleSet, evaluation: Evaluation
) -> Decision:
    """The decision on the evaluation, with the teams the directory names for it."""
    # A hold or a refusal asks no team: the case goes to a call handler or back to the referrer.
    no_team = evaluation.rule.hold is not None or evaluation.rule.refuse is not None
    if evaluation.pathway in UNASSIGNED_PATHWAYS or no_team:
        team, outcome, explanation = None, "no_assignment", []
        locality = await _try_locate(teams, request)
    else:
        resolution = await teams.resolve(
            practice=request.practice,
            district=request.postcode_district,
            pathway=evaluation.pathway,
        )
        outcome, locality = resolution.outcome, resolution.locality_code
        explanation = [step.model_dump() for step in resolution.explanation]
        team = (
            {
                "team": resolution.team.model_dump(mode="json"),
                "linked_worker": resolution.linked_worker,
            }
            if resolution.team
            else None
        )
    escalations = await _escalations(teams, request, evaluation)
    target = evaluation.response_target
    return Decision(
        referral_id=request.referral_id,
        facts=request.model_dump(mode="json", exclude={"referral_id"}),
        rule_set_id=active.id,
        rule_set_version=active.rules.version,
        rule_id=evaluation.rule.id,
        pathway=evaluation.pathway,
        priority=evaluation.policy.priority,
        response_target_seconds=int(target.total_seconds()) if target is not None else None,
        reason=evaluation.rule.reason,
        trace=evaluation.trace,
        team=team,
        team_outcome=outcome,
        team_explanation=explanation,
        hold=evaluation.rule.hold,
        refuse=evaluation.rule.refuse,
        locality_code=locality,
        escalations=[item.model_dump(mode="json") for item in escalations],
    )


async def _try_locate(teams: TeamsClient, request: DecisionCreate) -> str | None:
    """The patient's locality if the directory answers; a redirect to emergency services, a
    hold for a call handler or a refusal never waits for it."""
    try:
        return await teams.locate(practice=request.practice, district=request.postcode_district)
    except DirectoryUnavailable:
        return None


async def _escalations(
    teams: TeamsClient, request: DecisionCreate, evaluation: Evaluation
) -> list[EscalationRead]:
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
    return escalations


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
