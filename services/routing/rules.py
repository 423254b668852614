"""Triage rules as data: an ordered first-match table, evaluated with a full trace.

Red flags come first (redirect to emergency services); exactly one pathway is chosen; the
safeguarding escalation is collected in parallel and never changes the pathway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.shared.vocabulary import Channel, Escalation, Need, Pathway, RedFlag, Urgency


class Conditions(BaseModel):
    """All given conditions must hold; an empty set of conditions always holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red_flags_any: frozenset[RedFlag] | None = None
    needs_any: frozenset[Need] | None = None
    needs_only: frozenset[Need] | None = None
    urgency_in: frozenset[Urgency] | None = None
    channels_in: frozenset[Channel] | None = None
    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    reason: str = Field(min_length=1, max_length=300)
    when: Conditions
    pathway: Pathway


class PathwayPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: int = Field(ge=1, le=9)
    response_target: timedelta | None = None


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    pathways: dict[Pathway, PathwayPolicy]
    rules: list[Rule] = Field(min_length=1)


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


def load_rule_set(text: str) -> RuleSet:
    rule_set = RuleSet.model_validate(yaml.safe_load(text))
    missing = {rule.pathway for rule in rule_set.rules} - rule_set.pathways.keys()
    if missing:
        raise ValueError(f"pathways without a policy: {sorted(missing)}")
    if rule_set.rules[-1].when != Conditions():
        raise ValueError("the last rule must have no conditions, so every referral gets a pathway")
    return rule_set


def default_rule_set() -> RuleSet:
    text = resources.files("services.routing").joinpath("default_rules.yaml").read_text("utf-8")
    return load_rule_set(text)
