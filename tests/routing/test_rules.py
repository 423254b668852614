"""Unit tests of the triage rule table: scenarios, trace, properties and loading."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.routing.rules.evaluation import Evaluation, Facts, evaluate
from services.routing.rules.language import RuleSet
from services.routing.rules.parsing import RuleSetInvalid, default_rule_set, load_rule_set
from services.shared.vocabulary import (
    UCR_NEEDS,
    Channel,
    Escalation,
    Need,
    Pathway,
    RedFlag,
    Urgency,
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return default_rule_set()


def facts(
    *,
    channel: Channel = Channel.GP,
    urgency: Urgency = Urgency.ROUTINE,
    needs: set[Need] | None = None,
    red_flags: set[RedFlag] | None = None,
    age: int = 80,
    safeguarding: bool = False,
) -> Facts:
    return Facts(
        channel=channel,
        urgency=urgency,
        needs=frozenset(needs or set()),
        red_flags=frozenset(red_flags or set()),
        age_years=age,
        safeguarding_concern=safeguarding,
    )


def trace_entry(evaluation: Evaluation, rule_id: str) -> dict[str, Any]:
    entries = [entry for entry in evaluation.trace if entry["rule"] == rule_id]
    assert len(entries) == 1, f"rule {rule_id} should appear once in the trace"
    return entries[0]


# --- scenarios over the default rule set ---------------------------------------------------

SCENARIOS = [
    pytest.param(
        facts(channel=Channel.AMBULANCE, urgency=Urgency.CRISIS, needs={Need.FALL}, age=82),
        Pathway.RAPID_RESPONSE,
        "ucr-crisis-adult",
        1,
        timedelta(hours=2),
        id="ambulance-fall-at-home-crisis-82-rapid-response",
    ),
    pytest.param(
        facts(
            channel=Channel.NHS111,
            urgency=Urgency.CRISIS,
            needs={Need.CONFUSION_DELIRIUM},
            age=77,
        ),
        Pathway.RAPID_RESPONSE,
        "ucr-crisis-adult",
        1,
        timedelta(hours=2),
        id="nhs111-new-confusion-crisis-rapid-response",
    ),
    pytest.param(
        facts(channel=Channel.CARER, urgency=Urgency.CRISIS, needs={Need.CARER_BREAKDOWN}, age=88),
        Pathway.RAPID_RESPONSE,
        "ucr-crisis-adult",
        1,
        timedelta(hours=2),
        id="unpaid-carer-breakdown-crisis-rapid-response",
    ),
    pytest.param(
        facts(channel=Channel.GP, urgency=Urgency.ROUTINE, needs={Need.LTC_MANAGEMENT}, age=70),
        Pathway.CASE_MANAGEMENT,
        "long-term-case-management",
        4,
        timedelta(days=28),
        id="gp-ltc-review-routine-case-management",
    ),
    pytest.param(
        facts(channel=Channel.COUNTY_CONTACT, urgency=Urgency.ROUTINE, needs={Need.EQUIPMENT}),
        Pathway.EQUIPMENT,
        "equipment-need",
        3,
        timedelta(days=7),
        id="county-contact-equipment-only-equipment",
    ),
    pytest.param(
        facts(
            channel=Channel.HOSPITAL_DISCHARGE,
            urgency=Urgency.URGENT,
            needs={Need.POST_DISCHARGE_SUPPORT},
            age=79,
        ),
        Pathway.REABLEMENT,
        "hospital-bed-reablement",
        2,
        None,  # a hospital bed is outside the two-day reablement standard
        id="hospital-discharge-support-reablement",
    ),
    pytest.param(
        facts(
            channel=Channel.GP,
            urgency=Urgency.URGENT,
            needs={Need.POST_DISCHARGE_SUPPORT},
            age=79,
        ),
        Pathway.REABLEMENT,
        "discharge-reablement",
        2,
        timedelta(days=2),
        id="home-after-discharge-reablement-within-two-days",
    ),
    pytest.param(
        facts(
            channel=Channel.AMBULANCE,
            urgency=Urgency.CRISIS,
            needs={Need.FALL},
            red_flags={RedFlag.CHEST_PAIN},
            age=82,
        ),
        Pathway.REDIRECT_EMERGENCY,
        "red-flag-redirect",
        1,
        None,
        id="fall-with-chest-pain-red-flag-redirect-emergency",
    ),
    pytest.param(
        facts(channel=Channel.SELF, urgency=Urgency.ROUTINE, needs={Need.INFORMATION_ADVICE}),
        Pathway.ADVICE,
        "advice-only",
        5,
        None,
        id="information-advice-only-advice",
    ),
    pytest.param(
        facts(channel=Channel.GP, urgency=Urgency.ROUTINE, needs={Need.WOUND_CARE}),
        Pathway.ROUTINE_ASSESSMENT,
        "assessment-otherwise",
        4,
        timedelta(days=28),
        id="wound-care-routine-assessment",
    ),
]


@pytest.mark.parametrize(("given_facts", "pathway", "rule_id", "priority", "target"), SCENARIOS)
def test_default_rules_scenarios(
    rules: RuleSet,
    given_facts: Facts,
    pathway: Pathway,
    rule_id: str,
    priority: int,
    target: timedelta | None,
) -> None:
    evaluation = evaluate(rules, given_facts)

    assert evaluation.pathway is pathway
    assert evaluation.rule.id == rule_id
    assert evaluation.rule.pathway is pathway
    assert evaluation.policy.priority == priority
    assert evaluation.response_target == target
    assert evaluation.escalations == []


def test_fall_in_crisis_with_safeguarding_concern_keeps_rapid_response_and_escalates(
    rules: RuleSet,
) -> None:
    evaluation = evaluate(
        rules,
        facts(
            channel=Channel.AMBULANCE,
            urgency=Urgency.CRISIS,
            needs={Need.FALL},
            age=82,
            safeguarding=True,
        ),
    )

    assert evaluation.pathway is Pathway.RAPID_RESPONSE
    assert evaluation.rule.id == "ucr-crisis-adult"
    assert evaluation.policy.response_target == timedelta(hours=2)
    assert evaluation.escalations == [Escalation.SAFEGUARDING]


def test_chest_pain_alone_redirects_to_emergency(rules: RuleSet) -> None:
    evaluation = evaluate(
        rules,
        facts(channel=Channel.NHS111, urgency=Urgency.URGENT, red_flags={RedFlag.CHEST_PAIN}),
    )

    assert evaluation.pathway is Pathway.REDIRECT_EMERGENCY
    assert evaluation.rule.id == "red-flag-redirect"
    assert evaluation.trace == [{"rule": "red-flag-redirect", "matched": True}]


def test_sixteen_year_old_with_fall_in_crisis_is_held_for_a_call_handler(rules: RuleSet) -> None:
    evaluation = evaluate(
        rules,
        facts(channel=Channel.AMBULANCE, urgency=Urgency.CRISIS, needs={Need.FALL}, age=16),
    )

    # Adult community services do not take children: no adult team is asked.
    assert evaluation.rule.id == "child-held-for-call-handler"
    assert evaluation.rule.hold == "under_18"
    assert [entry["rule"] for entry in evaluation.trace][-1] == "child-held-for-call-handler"


def test_an_adult_in_crisis_is_not_held(rules: RuleSet) -> None:
    evaluation = evaluate(
        rules,
        facts(channel=Channel.AMBULANCE, urgency=Urgency.CRISIS, needs={Need.FALL}, age=18),
    )

    assert (evaluation.pathway, evaluation.rule.hold) == (Pathway.RAPID_RESPONSE, None)
    assert trace_entry(evaluation, "child-held-for-call-handler")["why_not"] == "older than 17"


def test_eighteenth_birthday_is_the_rapid_response_boundary(rules: RuleSet) -> None:
    crisis_fall = facts(channel=Channel.SELF, urgency=Urgency.CRISIS, needs={Need.FALL}, age=18)

    assert evaluate(rules, crisis_fall).pathway is Pathway.RAPID_RESPONSE
    assert evaluate(rules, replace(crisis_fall, age_years=17)).pathway is not (
        Pathway.RAPID_RESPONSE
    )


def test_ucr_condition_that_is_only_urgent_is_not_rapid_response(rules: RuleSet) -> None:
    evaluation = evaluate(
        rules, facts(channel=Channel.GP, urgency=Urgency.URGENT, needs={Need.FALL}, age=82)
    )

    assert evaluation.pathway is not Pathway.RAPID_RESPONSE
    assert trace_entry(evaluation, "ucr-crisis-adult")["why_not"] == "urgency is urgent"


def test_equipment_with_another_need_is_not_equipment_only(rules: RuleSet) -> None:
    evaluation = evaluate(
        rules,
        facts(channel=Channel.COUNTY_CONTACT, needs={Need.EQUIPMENT, Need.WOUND_CARE}),
    )

    assert evaluation.pathway is Pathway.ROUTINE_ASSESSMENT
    assert trace_entry(evaluation, "equipment-need")["why_not"] == "needs other than those listed"


def test_no_needs_at_all_falls_through_to_routine_assessment(rules: RuleSet) -> None:
    evaluation = evaluate(rules, facts(needs=set()))

    assert evaluation.pathway is Pathway.ROUTINE_ASSESSMENT
    assert evaluation.rule.id == "assessment-otherwise"


# --- the trace -------------------------------------------------------------------------------


def test_trace_lists_every_rule_before_the_match_with_its_reason(rules: RuleSet) -> None:
    evaluation = evaluate(
        rules, facts(channel=Channel.GP, urgency=Urgency.ROUTINE, needs={Need.LTC_MANAGEMENT})
    )

    rule_ids = [rule.id for rule in rules.rules]
    matched_at = rule_ids.index("long-term-case-management")
    assert [entry["rule"] for entry in evaluation.trace] == rule_ids[: matched_at + 1]
    for entry in evaluation.trace[:-1]:
        assert entry["matched"] is False
        assert isinstance(entry["why_not"], str)
        assert entry["why_not"]
    assert evaluation.trace[-1] == {"rule": "long-term-case-management", "matched": True}
    assert [entry["why_not"] for entry in evaluation.trace[:-1]] == [
        "no listed red flag",
        "older than 17",
        "no listed need",
        "no listed need",
        "no listed need",
        "no listed need",
        "needs other than those listed",
    ]


def test_trace_of_the_catch_all_covers_the_whole_table(rules: RuleSet) -> None:
    evaluation = evaluate(rules, facts(needs={Need.WOUND_CARE}))

    assert len(evaluation.trace) == len(rules.rules)
    assert all(entry["matched"] is False for entry in evaluation.trace[:-1])
    assert evaluation.trace[-1] == {"rule": "assessment-otherwise", "matched": True}


# --- properties over the whole vocabulary ----------------------------------------------------

any_facts = st.builds(
    Facts,
    channel=st.sampled_from(Channel),
    urgency=st.sampled_from(Urgency),
    needs=st.frozensets(st.sampled_from(Need)),
    red_flags=st.frozensets(st.sampled_from(RedFlag)),
    age_years=st.integers(min_value=0, max_value=110),
    safeguarding_concern=st.booleans(),
)

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)
DEFAULT_RULES = default_rule_set()
# Loaded a second time, so determinism covers loading as well as evaluation.
DEFAULT_RULES_AGAIN = default_rule_set()


@PROPERTY_SETTINGS
@given(any_facts)
def test_every_input_gets_exactly_one_pathway(given_facts: Facts) -> None:
    evaluation = evaluate(DEFAULT_RULES, given_facts)

    assert isinstance(evaluation.pathway, Pathway)
    assert evaluation.pathway in set(Pathway)
    assert evaluation.pathway is evaluation.rule.pathway
    assert evaluation.policy == DEFAULT_RULES.pathways[evaluation.pathway]
    matched = [entry for entry in evaluation.trace if entry["matched"]]
    assert matched == [{"rule": evaluation.rule.id, "matched": True}]
    assert evaluation.trace[-1] == matched[0]
    for entry in evaluation.trace[:-1]:
        assert entry["matched"] is False
        assert isinstance(entry["why_not"], str)
        assert entry["why_not"]


@PROPERTY_SETTINGS
@given(any_facts)
def test_safeguarding_escalates_in_parallel_whatever_the_pathway(given_facts: Facts) -> None:
    with_concern = evaluate(DEFAULT_RULES, replace(given_facts, safeguarding_concern=True))
    without_concern = evaluate(DEFAULT_RULES, replace(given_facts, safeguarding_concern=False))

    assert with_concern.escalations == [Escalation.SAFEGUARDING]
    assert without_concern.escalations == []
    # The escalation never changes the care pathway.
    assert with_concern.pathway is without_concern.pathway
    assert with_concern.rule.id == without_concern.rule.id


@PROPERTY_SETTINGS
@given(any_facts, st.frozensets(st.sampled_from(RedFlag), min_size=1))
def test_any_red_flag_redirects_to_emergency(
    given_facts: Facts, red_flags: frozenset[RedFlag]
) -> None:
    evaluation = evaluate(DEFAULT_RULES, replace(given_facts, red_flags=red_flags))

    assert evaluation.pathway is Pathway.REDIRECT_EMERGENCY
    assert evaluation.rule.id == "red-flag-redirect"


@PROPERTY_SETTINGS
@given(any_facts)
def test_without_red_flags_there_is_no_redirect(given_facts: Facts) -> None:
    evaluation = evaluate(DEFAULT_RULES, replace(given_facts, red_flags=frozenset()))

    assert evaluation.pathway is not Pathway.REDIRECT_EMERGENCY


@PROPERTY_SETTINGS
@given(any_facts)
def test_evaluation_is_deterministic(given_facts: Facts) -> None:
    first = evaluate(DEFAULT_RULES, given_facts)
    second = evaluate(DEFAULT_RULES, given_facts)
    reloaded = evaluate(DEFAULT_RULES_AGAIN, given_facts)

    for other in (second, reloaded):
        assert first.pathway is other.pathway
        assert first.rule == other.rule
        assert first.policy == other.policy
        assert first.trace == other.trace
        assert first.escalations == other.escalations


@PROPERTY_SETTINGS
@given(any_facts, st.integers(min_value=0, max_value=17))
def test_rapid_response_is_never_given_to_a_child(given_facts: Facts, age: int) -> None:
    evaluation = evaluate(DEFAULT_RULES, replace(given_facts, age_years=age))

    assert evaluation.pathway is not Pathway.RAPID_RESPONSE


@PROPERTY_SETTINGS
@given(
    any_facts,
    st.frozensets(st.sampled_from(Need), min_size=1).filter(lambda needs: bool(needs & UCR_NEEDS)),
    st.integers(min_value=18, max_value=110),
)
def test_adult_in_crisis_with_a_ucr_need_and_no_red_flag_gets_rapid_response(
    given_facts: Facts, needs: frozenset[Need], age: int
) -> None:
    evaluation = evaluate(
        DEFAULT_RULES,
        replace(
            given_facts,
            needs=needs,
            urgency=Urgency.CRISIS,
            red_flags=frozenset(),
            age_years=age,
        ),
    )

    assert evaluation.pathway is Pathway.RAPID_RESPONSE
    assert evaluation.policy.response_target == timedelta(hours=2)


# --- loading a rule set ----------------------------------------------------------------------


def minimal_rule_set() -> dict[str, Any]:
    return {
        "version": "test-1",
        "pathways": {
            "redirect_emergency": {"priority": 1},
            "routine_assessment": {"priority": 4, "response_target": "P28D"},
        },
        "rules": [
            {
                "id": "red-flag",
                "reason": "A red flag is not safe for community care.",
                "when": {"red_flags_any": ["chest_pain"]},
                "pathway": "redirect_emergency",
            },
            {
                "id": "otherwise",
                "reason": "Anything else is assessed.",
                "when": {},
                "pathway": "routine_assessment",
            },
        ],
    }


def as_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def test_minimal_rule_set_loads_and_evaluates() -> None:
    rule_set = load_rule_set(as_yaml(minimal_rule_set()))

    assert rule_set.version == "test-1"
    assert rule_set.pathways[Pathway.ROUTINE_ASSESSMENT].response_target == timedelta(days=28)
    assert evaluate(rule_set, facts(red_flags={RedFlag.CHEST_PAIN})).pathway is (
        Pathway.REDIRECT_EMERGENCY
    )
    assert evaluate(rule_set, facts(needs={Need.FALL})).pathway is Pathway.ROUTINE_ASSESSMENT


def test_default_rule_set_ends_with_a_catch_all_and_has_a_policy_for_every_pathway(
    rules: RuleSet,
) -> None:
    assert rules.version == "county-default-1"
    assert rules.rules[-1].id == "assessment-otherwise"
    assert set(rules.pathways) == set(Pathway)
    assert rules.rules[0].id == "red-flag-redirect"
    assert rules.rules[0].when.red_flags_any == frozenset(RedFlag)


def test_load_refuses_a_need_outside_the_vocabulary() -> None:
    data = minimal_rule_set()
    data["rules"][0]["when"] = {"needs_any": ["fall", "time_travel"]}

    with pytest.raises(RuleSetInvalid, match="needs_any") as raised:
        load_rule_set(as_yaml(data))
    assert [(e["rule"], e["field"]) for e in raised.value.errors] == [
        ("red-flag", "when.needs_any.1")
    ]


def test_load_refuses_a_pathway_outside_the_vocabulary() -> None:
    data = minimal_rule_set()
    data["rules"][0]["pathway"] = "teleport"

    with pytest.raises(RuleSetInvalid, match="pathway") as raised:
        load_rule_set(as_yaml(data))
    assert [(e["rule"], e["field"]) for e in raised.value.errors] == [("red-flag", "pathway")]


def test_load_refuses_a_last_rule_with_conditions() -> None:
    data = minimal_rule_set()
    data["rules"][-1]["when"] = {"urgency_in": ["routine"]}

    with pytest.raises(ValueError, match="last rule must have no conditions") as raised:
        load_rule_set(as_yaml(data))
    assert not isinstance(raised.value, ValidationError)


def test_load_refuses_a_pathway_with_no_policy() -> None:
    data = minimal_rule_set()
    data["rules"].insert(
        1,
        {
            "id": "advice",
            "reason": "Advice only.",
            "when": {"needs_only": ["information_advice"]},
            "pathway": "advice",
        },
    )

    with pytest.raises(ValueError, match=r"pathways without a policy: .*advice") as raised:
        load_rule_set(as_yaml(data))
    assert not isinstance(raised.value, ValidationError)


@pytest.mark.parametrize(
    ("where", "rule_id", "field"),
    [
        pytest.param("top", "", "author", id="unknown-top-level-key"),
        pytest.param("policy", "", "pathways.routine_assessment.colour", id="unknown-policy-key"),
        pytest.param("rule", "red-flag", "priority", id="unknown-rule-key"),
        pytest.param("conditions", "red-flag", "when.needs_all", id="unknown-condition"),
    ],
)
def test_load_refuses_unknown_keys(where: str, rule_id: str, field: str) -> None:
    data = minimal_rule_set()
    if where == "top":
        data["author"] = "someone"
    elif where == "policy":
        data["pathways"]["routine_assessment"]["colour"] = "green"
    elif where == "rule":
        data["rules"][0]["priority"] = 1
    else:
        data["rules"][0]["when"]["needs_all"] = ["fall"]

    with pytest.raises(RuleSetInvalid) as raised:
        load_rule_set(as_yaml(data))
    assert raised.value.errors == [
        {
            "in": "body",
            "file": "<rules>",
            "rule": rule_id,
            "field": field,
            "reason": "Extra inputs are not permitted",
        }
    ]


def test_load_refuses_an_empty_rule_list() -> None:
    data = minimal_rule_set()
    data["rules"] = []

    with pytest.raises(RuleSetInvalid, match="rules"):
        load_rule_set(as_yaml(data))
