"""Use cases of decisions. They flush; the request edge commits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.decisions.clients import TeamsClient
from services.routing.decisions.models import Decision
from services.routing.decisions.problems import (
    DecisionNotFound,
    DirectoryUnavailable,
    NoActiveRuleSet,
)
from services.routing.decisions.schemas import DecisionCreate, EscalationRead
from services.routing.rule_sets.models import ShadowDisagreement
from services.routing.rule_sets.schemas import SampleReferral
from services.routing.rule_sets.service import (
    COUNTY,
    LoadedRuleSet,
    RuleBook,
    ScopeRules,
    facts_of,
)
from services.routing.rules.evaluation import Evaluation, Facts, evaluate
from services.shared.problems import Problem
from services.shared.vocabulary import UNASSIGNED_PATHWAYS


async def _rules_in(
    scopes: dict[str, ScopeRules], teams: TeamsClient, request: SampleReferral
) -> ScopeRules:
    """The rules of the referral's locality when it has its own, else the county's."""
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


async def _recorded(
    session: AsyncSession, requests: list[DecisionCreate], keys: list[str]
) -> dict[tuple[uuid.UUID, str], Decision]:
    """The decisions already recorded for any of these requests, by referral and request key."""
    rows = await session.scalars(
        select(Decision).where(
            Decision.referral_id.in_({request.referral_id for request in requests}),
            Decision.request_key.in_(set(keys)),
        )
    )
    return {(row.referral_id, row.request_key): row for row in rows}


async def recorded_decision(
    session: AsyncSession, referral_id: uuid.UUID, key: str
) -> Decision | None:
    return await session.scalar(
        select(Decision).where(Decision.referral_id == referral_id, Decision.request_key == key)
    )


@dataclass(frozen=True)
class Decided:
    decision: Decision
    created: bool  # False when the request repeats one already answered


async def decide(
    session: AsyncSession,
    book: RuleBook,
    teams: TeamsClient,
    request: DecisionCreate,
    requested_by: str,
) -> Decided:
    """Triage one referral: ``decide_many`` with one request, its problem raised."""
    (outcome,) = await decide_many(session, book, teams, [request], requested_by)
    if isinstance(outcome, Problem):
        raise outcome
    return outcome


async def decide_many(
    session: AsyncSession,
    book: RuleBook,
    teams: TeamsClient,
    requests: list[DecisionCreate],
    requested_by: str,
) -> list[Decided | Problem]:
    """Triage each referral, ask the directory for its teams, and record the whole decision;
    one outcome per request, in order. A request asked again (a retry after a timeout) gets the
    decision recorded the first time, and nothing new is recorded. The directory is asked for
    every request at once (its client gathers the questions into one call), and a problem of
    one request (the directory down for it, no rule set) is that request's alone."""
    keys = [request_key(request) for request in requests]
    recorded = await _recorded(session, requests, keys)
    scopes = await book.scopes(session)
    fresh = [i for i, r in enumerate(requests) if (r.referral_id, keys[i]) not in recorded]
    built = await asyncio.gather(
        *(_evaluate(scopes, teams, requests[i]) for i in fresh), return_exceptions=True
    )
    outcomes: list[Decided | Problem | None] = [
        Decided(recorded[(r.referral_id, keys[i])], created=False) if i not in fresh else None
        for i, r in enumerate(requests)
    ]
    for i, result in zip(fresh, built, strict=True):
        if isinstance(result, Problem):
            outcomes[i] = result
            continue
        if isinstance(result, BaseException):
            raise result
        decision, rules, evaluation, facts = result
        decision.requested_by, decision.request_key = requested_by, keys[i]
        stored = await _record(session, decision)
        if stored is not decision:
            outcomes[i] = Decided(stored, created=False)
            continue
        if rules.shadow is not None:
            compare_with_shadow(session, decision, evaluation, rules.shadow, facts)
        outcomes[i] = Decided(decision, created=True)
    return [outcome for outcome in outcomes if outcome is not None]


async def _evaluate(
    scopes: dict[str, ScopeRules], teams: TeamsClient, request: DecisionCreate
) -> tuple[Decision, ScopeRules, Evaluation, Facts]:
    """The decision for one request, not yet recorded (no database work: requests of a batch
    are evaluated side by side)."""
    rules = await _rules_in(scopes, teams, request)
    facts = facts_of(request)
    evaluation = evaluate(rules.active.rules, facts)
    decision = await _decision(teams, request, rules.active, evaluation)
    return decision, rules, evaluation, facts


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
    """The decision on the evaluation, with the teams the directory names for it (asked side
    by side, so they go to the directory together)."""
    (team, outcome, explanation, locality), escalations = await asyncio.gather(
        _care_team(teams, request, evaluation), _escalations(teams, request, evaluation)
    )
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


async def _care_team(
    teams: TeamsClient, request: DecisionCreate, evaluation: Evaluation
) -> tuple[dict[str, Any] | None, str, list[dict[str, Any]], str | None]:
    """The team for the pathway (with its linked worker), the directory's outcome and its
    explanation, and the patient's locality."""
    # A hold or a refusal asks no team: the case goes to a call handler or back to the referrer.
    no_team = evaluation.rule.hold is not None or evaluation.rule.refuse is not None
    if evaluation.pathway in UNASSIGNED_PATHWAYS or no_team:
        return None, "no_assignment", [], await _try_locate(teams, request)
    resolution = await teams.resolve(
        practice=request.practice, district=request.postcode_district, pathway=evaluation.pathway
    )
    team = (
        {"team": resolution.team.model_dump(mode="json"), "linked_worker": resolution.linked_worker}
        if resolution.team
        else None
    )
    explanation = [step.model_dump() for step in resolution.explanation]
    return team, resolution.outcome, explanation, resolution.locality_code


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
    resolved = await asyncio.gather(
        *(
            teams.resolve(
                practice=request.practice, district=request.postcode_district, escalation=escalation
            )
            for escalation in evaluation.escalations
        )
    )
    return [
        EscalationRead(escalation=escalation, team=answer.team, explanation=answer.explanation)
        for escalation, answer in zip(evaluation.escalations, resolved, strict=True)
    ]


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
