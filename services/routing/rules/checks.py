"""Static checks of a triage rule set: what to fix before it may go live.

Each condition of a rule constrains one independent part of a referral (red flags, needs,
urgency, channel, age), so whether one rule covers another, or two rules can match the same
referral, is decided one part at a time. Both answers are exact for the conditions of
``language.Conditions``; a rule covered only by several earlier rules together is not reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from services.routing.rules.language import Conditions, Rule, RuleSet
from services.shared.vocabulary import UNASSIGNED_PATHWAYS, Channel, Pathway, Urgency

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    rule: str | None
    field: str | None
    message: str


def check_rule_set(rule_set: RuleSet) -> list[Finding]:
    dead = _dead_rules(rule_set.rules)
    live = [rule for index, rule in enumerate(rule_set.rules) if index not in dead]
    return [
        *_missing_policies(rule_set),
        *_held_and_refused(rule_set),
        *_catch_all_not_last(rule_set),
        *dead.values(),
        *_overlaps(rule_set, live),
        *_missing_response_targets(rule_set),
        *_unreachable_pathways(live),
    ]


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


def _missing_policies(rule_set: RuleSet) -> list[Finding]:
    return [
        Finding(
            "error",
            rule.id,
            "pathway",
            f"pathways without a policy: {rule.pathway} (add it under pathways)",
        )
        for rule in rule_set.rules
        if rule.pathway not in rule_set.pathways
    ]


def _held_and_refused(rule_set: RuleSet) -> list[Finding]:
    reason = (
        "a rule either holds the case for a call handler or refuses it, not both"
        " (remove hold or refuse)"
    )
    return [
        Finding("error", rule.id, "refuse", reason)
        for rule in rule_set.rules
        if rule.hold is not None and rule.refuse is not None
    ]


def _catch_all_not_last(rule_set: RuleSet) -> list[Finding]:
    last = rule_set.rules[-1]
    if _is_catch_all(last):
        return []
    reason = "the last rule must have no conditions, so every referral gets a pathway"
    return [Finding("error", last.id, "when", reason)]


def _is_catch_all(rule: Rule) -> bool:
    return not rule.when.model_dump(exclude_none=True)


# --- rules that can never match ---------------------------------------------------------------


def _dead_rules(rules: Sequence[Rule]) -> dict[int, Finding]:
    """Why each rule that can never match cannot, by its index."""
    dead: dict[int, Finding] = {}
    for index, rule in enumerate(rules):
        finding = _why_dead(rule, rules[:index])
        if finding is not None:
            dead[index] = finding
    return dead


def _why_dead(rule: Rule, earlier: Sequence[Rule]) -> Finding | None:
    contradiction = _contradiction(rule.when)
    if contradiction is not None:
        field, reason = contradiction
        return Finding("error", rule.id, f"when.{field}", f"never matches: {reason}")
    cover = next((other for other in earlier if _covers(other.when, rule.when)), None)
    if cover is None:
        return None
    reason = f"never matches: the earlier rule {cover.id} matches every referral this rule would"
    return Finding("error", rule.id, "when", reason)


def _contradiction(when: Conditions) -> tuple[str, str] | None:
    """The condition no referral can satisfy, with the reason, or None."""
    lists: dict[str, frozenset[str] | None] = {
        "red_flags_any": when.red_flags_any,
        "needs_any": when.needs_any,
        "needs_only": when.needs_only,
        "urgency_in": when.urgency_in,
        "channels_in": when.channels_in,
    }
    for name, values in lists.items():
        if values is not None and not values:
            return name, f"{name} is an empty list"
    if _needs_hit(when) == frozenset():
        return "needs_only", "no need of needs_any is allowed by needs_only"
    low, high = _ages(when)
    if low > high:
        return "max_age", "max_age is below min_age"
    return None


def _covers(earlier: Conditions, later: Conditions) -> bool:
    """Whether every referral that satisfies ``later`` (satisfiable) satisfies ``earlier``."""
    earlier_low, earlier_high = _ages(earlier)
    later_low, later_high = _ages(later)
    return (
        _within(later.red_flags_any, earlier.red_flags_any)
        and _within(_needs_hit(later), earlier.needs_any)
        and _within(later.needs_only, earlier.needs_only)
        and _within(_urgencies(later), _urgencies(earlier))
        and _within(_channels(later), _channels(earlier))
        and earlier_low <= later_low
        and later_high <= earlier_high
    )


def _within(inner: frozenset[str] | None, outer: frozenset[str] | None) -> bool:
    """Whether satisfying the constraint ``inner`` implies ``outer``; None is no constraint."""
    return outer is None or (inner is not None and inner <= outer)


def _needs_hit(when: Conditions) -> frozenset[str] | None:
    """The needs of which every referral satisfying ``when`` has at least one, if limited."""
    if when.needs_any is not None and when.needs_only is not None:
        return when.needs_any & when.needs_only
    return when.needs_any if when.needs_any is not None else when.needs_only


def _urgencies(when: Conditions) -> frozenset[str] | None:
    # A referral always has exactly one urgency and one channel: listing them all is no limit.
    return None if when.urgency_in == frozenset(Urgency) else when.urgency_in


def _channels(when: Conditions) -> frozenset[str] | None:
    return None if when.channels_in == frozenset(Channel) else when.channels_in


def _ages(when: Conditions) -> tuple[float, float]:
    low = -math.inf if when.min_age is None else when.min_age
    high = math.inf if when.max_age is None else when.max_age
    return low, high


# --- overlaps under the unique hit policy ------------------------------------------------------


def _overlaps(rule_set: RuleSet, live: list[Rule]) -> list[Finding]:
    if rule_set.hit_policy != "unique":
        return []
    last = rule_set.rules[-1]
    rules = [rule for rule in live if not (rule is last and _is_catch_all(rule))]
    return [
        _overlap(earlier, later)
        for index, later in enumerate(rules)
        for earlier in rules[:index]
        if earlier.pathway != later.pathway and _compatible(earlier.when, later.when)
    ]


def _overlap(earlier: Rule, later: Rule) -> Finding:
    reason = (
        f"a referral can match both this rule and rule {earlier.id} ({earlier.pathway}),"
        " but the hit policy is unique"
    )
    return Finding("error", later.id, "when", reason)


def _compatible(first: Conditions, second: Conditions) -> bool:
    """Whether some referral satisfies both (each satisfiable on its own)."""
    (first_low, first_high), (second_low, second_high) = _ages(first), _ages(second)
    return (
        _needs_compatible(first, second)
        and _meet(first.urgency_in, second.urgency_in)
        and _meet(first.channels_in, second.channels_in)
        and max(first_low, second_low) <= min(first_high, second_high)
    )


def _meet(first: frozenset[str] | None, second: frozenset[str] | None) -> bool:
    return first is None or second is None or bool(first & second)


def _needs_compatible(first: Conditions, second: Conditions) -> bool:
    # Red flags and needs_any lists always combine: a referral may have one of each list.
    only = [needs for needs in (first.needs_only, second.needs_only) if needs is not None]
    if not only:
        return True
    allowed = frozenset.intersection(*only)
    wanted = [needs for needs in (first.needs_any, second.needs_any) if needs is not None]
    return bool(allowed) and all(needs & allowed for needs in wanted)


# --- pathways ----------------------------------------------------------------------------------


def _missing_response_targets(rule_set: RuleSet) -> list[Finding]:
    chosen = dict.fromkeys(rule.pathway for rule in rule_set.rules)
    return [
        Finding(
            "error",
            None,
            f"pathways.{pathway}.response_target",
            f"{pathway} is assigned to a team but has no response target",
        )
        for pathway in chosen
        if pathway not in UNASSIGNED_PATHWAYS
        and pathway in rule_set.pathways
        and rule_set.pathways[pathway].response_target is None
    ]


def _unreachable_pathways(live: list[Rule]) -> list[Finding]:
    chosen = {rule.pathway for rule in live}
    return [
        Finding("warning", None, None, f"no rule that can match chooses the pathway {pathway}")
        for pathway in Pathway
        if pathway not in chosen
    ]
