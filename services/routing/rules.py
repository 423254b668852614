"""Triage rules as data: an ordered first-match table, evaluated with a full trace.

Red flags come first (redirect to emergency services); exactly one pathway is chosen; the
safeguarding escalation is collected in parallel and never changes the pathway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from services.routing.checks import Finding, check_rule_set
from services.shared.strict_input import json_errors
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
    # Overrides the pathway's response target for this rule; null means no national standard
    # applies (reablement for someone leaving a hospital bed is outside the two-day standard).
    response_target: timedelta | None = None
    # Hold the case for a call handler instead of sending it to a team, with this reason (for
    # example under_18: adult services do not take children; a handler finds the service
    # that does). The pathway is recorded with the decision but no team is asked.
    hold: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=32)
    # Refuse the case outright, with this reason code, instead of holding it: a locality whose
    # call handlers do not find other services sends the referrer back with the rule's reason
    # (for example under_18). As with a hold, the pathway is recorded and no team is asked.
    refuse: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=32)


class PathwayPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: int = Field(ge=1, le=9)
    response_target: timedelta | None = None


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    # "first": the first matching rule decides and overlaps are expected; "unique": at most one
    # rule (besides the final catch-all) may match any referral.
    hit_policy: Literal["first", "unique"] = "first"
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


class RuleSetInvalid(ValueError):
    """A rule set that must not be used; ``errors`` lists every problem found, one dict each:
    ``{"in", "file", "rule" (id, or ""), "field" (dotted path in the rule, or from the top),
    "reason"}``.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("\n".join(describe_error(error) for error in errors))
        self.errors = errors


def describe_error(error: Mapping[str, str]) -> str:
    """One line, ``FILE: rule RULE_ID: FIELD: REASON``, leaving out the parts that are empty."""
    parts = [error["file"], f"rule {error['rule']}" if error["rule"] else "", error["field"]]
    return ": ".join([*(part for part in parts if part), error["reason"]])


def finding_error(finding: Finding, source: str) -> dict[str, str]:
    return _error(source, finding.rule or "", finding.field or "", finding.message)


def parse_rule_set(text: str, source: str = "<rules>") -> RuleSet:
    """The rule set in ``text`` checked for syntax and schema only; see ``load_rule_set``."""
    document = _parse_yaml(text, source)
    if not isinstance(document, dict):
        reason = "the document must be a mapping with version, pathways and rules"
        raise RuleSetInvalid([_error(source, "", "", reason)])
    try:
        return RuleSet.model_validate(document)
    except ValidationError as exc:
        errors = [_schema_error(detail, document, source) for detail in exc.errors()]
        raise RuleSetInvalid(errors) from exc


def load_rule_set(text: str, source: str = "<rules>") -> RuleSet:
    """The rule set in ``text``, or RuleSetInvalid listing every error in it.

    The static checks need a rule set that parses, so they run once syntax and schema pass.
    """
    rule_set = parse_rule_set(text, source)
    findings = check_rule_set(rule_set)
    errors = [finding_error(f, source) for f in findings if f.severity == "error"]
    if errors:
        raise RuleSetInvalid(errors)
    return rule_set


def _error(source: str, rule: str, field: str, reason: str) -> dict[str, str]:
    # "in" as every problem's errors have it: the rule document is the request's body.
    return {"in": "body", "file": source, "rule": rule, "field": field, "reason": reason}


def _parse_yaml(text: str, source: str) -> object:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetInvalid([_error(source, "", "", _yaml_reason(exc))]) from exc
    # YAML's own escapes ("\0") make text that the check of the request body never saw.
    unstorable = json_errors(document)
    if unstorable:
        raise RuleSetInvalid([_error(source, "", e["field"], e["reason"]) for e in unstorable])
    return document


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"YAML syntax error: {exc}"
    reason = f"YAML syntax error at {_position(exc.problem_mark)}: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        reason += f" ({exc.context} started at {_position(exc.context_mark)})"
    return reason


def _position(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _schema_error(detail: ErrorDetails, document: Mapping[str, Any], source: str) -> dict[str, str]:
    path = [str(part) for part in detail["loc"] if part != "[key]"]
    rule_id = _rule_id(document, detail["loc"])
    field = ".".join(path[2:] if rule_id else path)
    return _error(source, rule_id, field, _schema_reason(detail))


def _rule_id(document: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    """The id written in the rule at ``rules.N`` of the raw document, or "" if there is none."""
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
        return ""
    rules = document.get("rules")
    if not isinstance(rules, list) or not 0 <= loc[1] < len(rules):
        return ""
    rule = rules[loc[1]]
    rule_id = rule.get("id") if isinstance(rule, dict) else None
    return rule_id if isinstance(rule_id, str) else ""


def _schema_reason(detail: ErrorDetails) -> str:
    expected = detail.get("ctx", {}).get("expected")
    if detail["type"] in ("enum", "literal_error") and expected:
        return f"unknown value {detail['input']!r}; expected one of {expected}"
    return detail["msg"]


def default_rule_set() -> RuleSet:
    text = resources.files("services.routing").joinpath("default_rules.yaml").read_text("utf-8")
    return load_rule_set(text, "default_rules.yaml")
