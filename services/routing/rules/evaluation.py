"""Triage rules evaluated with a full trace.

Red flags come first (redirect to emergency services); exactly one pathway is chosen; the
safeguarding escalation is collected in parallel and never changes the pathway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.routing.rules.language import Conditions, PathwayPolicy, Rule, RuleSet
from services.shared.vocabulary import Channel, Escalation, Need, Pathway, RedFlag, Urgency


@dataclass(frozen=True)
class Facts:
    """What triage may know of a referral: codes and an age, never identifiers."""

    channel: Channel
    urgency: Urgency
    needs: frozenset[Need]
    red_flags: frozenset[RedFlag]
    age_years: int
    safeguarding_concern: bool


@dataclass
class Evaluation:
    pathway: Pathway
    rule: Rule
    policy: PathwayPolicy
    escalations: list[Escalation]
    trace: list[dict[str, Any]] = field(default_factory=list)

    @property
    def response_target(self) -> timedelta | None:
        if "response_target" in self.rule.model_fields_set:
            return self.rule.response_target
        return self.policy.response_target


def _failed_condition(when: Conditions, facts: Facts) -> str | None:
    """The first condition of ``when`` that ``facts`` fail, in words, or None when all hold."""
    if when.red_flags_any is not None and not when.red_flags_any & facts.red_flags:
        return "no listed red flag"
    if when.needs_any is not None and not when.needs_any & facts.needs:
        return "no listed need"
    if when.needs_only is not None and not (facts.needs and facts.needs <= when.needs_only):
        return "needs other than those listed"
    if when.urgency_in is not None and facts.urgency not in when.urgency_in:
        return f"urgency is {facts.urgency}"
    if when.channels_in is not None and facts.channel not in when.channels_in:
        return f"channel is {facts.channel}"
    if when.min_age is not None and facts.age_years < when.min_age:
        return f"younger than {when.min_age}"
    if when.max_age is not None and facts.age_years > when.max_age:
        return f"older than {when.max_age}"
    return None


def evaluate(rule_set: RuleSet, facts: Facts) -> Evaluation:
    trace: list[dict[str, Any]] = []
    for rule in rule_set.rules:
        failed = _failed_condition(rule.when, facts)
        if failed is None:
            trace.append({"rule": rule.id, "matched": True})
            escalations = [Escalation.SAFEGUARDING] if facts.safeguarding_concern else []
            policy = rule_set.pathways[rule.pathway]
            return Evaluation(rule.pathway, rule, policy, escalations, trace)
        trace.append({"rule": rule.id, "matched": False, "why_not": failed})
    raise NoRuleMatched(rule_set.version)


class NoRuleMatched(Exception):
    """The rule set has no catch-all rule and none matched; a rule set must not allow this."""
