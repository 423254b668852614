"""Static checks of rule sets, precise load errors, and ``python -m services.routing check-rules``."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing import cli
from services.routing.rules.checks import Finding, check_rule_set, has_errors
from services.routing.rules.evaluation import Facts, evaluate
from services.routing.rules.language import Conditions, Rule, RuleSet
from services.routing.rules.parsing import RuleSetInvalid, default_rule_set, load_rule_set
from services.shared.vocabulary import Channel, Need, Pathway, RedFlag, Urgency

REPO_ROOT = Path(__file__).resolve().parents[2]

POLICIES: dict[str, dict[str, Any]] = {
    "redirect_emergency": {"priority": 1},
    "rapid_response": {"priority": 1, "response_target": "PT2H"},
    "reablement": {"priority": 2, "response_target": "P2D"},
    "equipment": {"priority": 3, "response_target": "P7D"},
    "routine_assessment": {"priority": 4, "response_target": "P28D"},
    "case_management": {"priority": 4, "response_target": "P28D"},
    "advice": {"priority": 5},
}


def rule(rule_id: str, pathway: str, **when: Any) -> dict[str, Any]:
    return {"id": rule_id, "reason": f"Test rule {rule_id}.", "when": when, "pathway": pathway}


CATCH_ALL = rule("otherwise", "routine_assessment")


def document(*rules: dict[str, Any], hit_policy: str = "first") -> dict[str, Any]:
    return {
        "version": "test-1",
        "hit_policy": hit_policy,
        "pathways": {name: dict(policy) for name, policy in POLICIES.items()},
        "rules": copy.deepcopy([*rules, CATCH_ALL]),
    }


def checked(data: dict[str, Any]) -> list[Finding]:
    return check_rule_set(RuleSet.model_validate(data))


def errors_of(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity == "error"]


def as_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# --- shadowed rules --------------------------------------------------------------------------

BROAD = rule(
    "fall-or-wound", "rapid_response", needs_any=["fall", "wound_care"], urgency_in=["crisis"]
)


def test_a_rule_covered_by_an_earlier_rule_is_reported_as_shadowed() -> None:
    narrow = rule("fall-only", "reablement", needs_any=["fall"], urgency_in=["crisis"])

    findings = errors_of(checked(document(BROAD, narrow)))

    assert findings == [
        Finding(
            "error",
            "fall-only",
            "when",
            "never matches: the earlier rule fall-or-wound matches every referral this rule would",
        )
    ]


def test_needs_only_within_an_earlier_needs_any_is_shadowed() -> None:
    broad = rule("any-equipment", "equipment", needs_any=["equipment", "urgent_equipment", "fall"])
    narrow = rule("equipment-alone", "equipment", needs_only=["equipment"], min_age=18)

    findings = errors_of(checked(document(broad, narrow)))

    assert [(finding.rule, finding.field) for finding in findings] == [("equipment-alone", "when")]


def test_a_rule_after_an_earlier_catch_all_is_shadowed() -> None:
    findings = errors_of(checked(document(rule("too-early", "case_management"), BROAD)))

    assert [finding.rule for finding in findings] == ["fall-or-wound", "otherwise"]


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(
            [
                BROAD,
                rule(
                    "fall", "reablement", needs_any=["fall", "catheter_care"], urgency_in=["crisis"]
                ),
            ],
            id="a-need-the-earlier-rule-lacks",
        ),
        pytest.param(
            [
                BROAD,
                rule("fall", "reablement", needs_any=["fall"], urgency_in=["crisis", "urgent"]),
            ],
            id="a-wider-urgency",
        ),
        pytest.param(
            [
                rule("adult", "rapid_response", needs_any=["fall", "wound_care"], min_age=18),
                rule("fall", "reablement", needs_any=["fall"]),
            ],
            id="the-earlier-rule-has-an-age-limit",
        ),
        pytest.param(
            [rule("fall", "reablement", needs_any=["fall"], urgency_in=["crisis"]), BROAD],
            id="the-narrow-rule-comes-first",
        ),
        pytest.param(
            [
                rule("equipment-alone", "equipment", needs_only=["equipment"]),
                rule("equipment-any", "equipment", needs_any=["equipment"]),
            ],
            id="needs-only-does-not-cover-needs-any",
        ),
    ],
)
def test_a_rule_that_can_still_match_is_not_shadowed(rules: list[dict[str, Any]]) -> None:
    assert errors_of(checked(document(*rules))) == []


@pytest.mark.parametrize(
    ("when", "field"),
    [
        pytest.param({"needs_any": []}, "when.needs_any", id="empty-list"),
        pytest.param({"min_age": 65, "max_age": 18}, "when.max_age", id="ages-crossed"),
        pytest.param(
            {"needs_any": ["fall"], "needs_only": ["equipment"]},
            "when.needs_only",
            id="needs-apart",
        ),
    ],
)
def test_a_rule_whose_conditions_contradict_each_other_never_matches(
    when: dict[str, Any], field: str
) -> None:
    findings = errors_of(checked(document(rule("impossible", "reablement", **when))))

    assert [(finding.rule, finding.field) for finding in findings] == [("impossible", field)]
    assert findings[0].message.startswith("never matches: ")


# --- overlaps under the unique hit policy ----------------------------------------------------

FALL = rule("fall", "rapid_response", needs_any=["fall"], urgency_in=["crisis"])
WOUND = rule(
    "wound", "routine_assessment", needs_any=["wound_care"], urgency_in=["crisis", "urgent"]
)


def test_unique_hit_policy_reports_rules_that_can_match_the_same_referral() -> None:
    findings = errors_of(checked(document(FALL, WOUND, hit_policy="unique")))

    assert [(finding.rule, finding.field) for finding in findings] == [("wound", "when")]
    assert "rule fall (rapid_response)" in findings[0].message
    assert "unique" in findings[0].message


def test_first_hit_policy_expects_overlaps() -> None:
    assert errors_of(checked(document(FALL, WOUND))) == []


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(
            rule("wound", "routine_assessment", needs_any=["wound_care"], urgency_in=["routine"]),
            id="urgencies-apart",
        ),
        pytest.param(rule("equipment", "equipment", needs_only=["equipment"]), id="needs-apart"),
        pytest.param(
            rule("child", "routine_assessment", needs_any=["fall"], max_age=17),
            id="ages-apart",
        ),
        pytest.param(
            rule("same-pathway", "rapid_response", needs_any=["catheter_care"]),
            id="same-pathway",
        ),
    ],
)
def test_unique_hit_policy_accepts_rules_no_referral_can_match_both(other: dict[str, Any]) -> None:
    adult_fall = rule(
        "fall", "rapid_response", needs_any=["fall"], urgency_in=["crisis"], min_age=18
    )

    assert errors_of(checked(document(adult_fall, other, hit_policy="unique"))) == []


# --- pathways --------------------------------------------------------------------------------


def test_a_pathway_no_rule_chooses_is_a_warning() -> None:
    findings = checked(document(rule("fall", "rapid_response", needs_any=["fall"])))

    assert not has_errors(findings)
    unreachable = {Pathway(finding.message.rsplit(" ", 1)[-1]) for finding in findings}
    assert unreachable == set(Pathway) - {Pathway.RAPID_RESPONSE, Pathway.ROUTINE_ASSESSMENT}
    assert {(finding.severity, finding.rule) for finding in findings} == {("warning", None)}


def test_a_pathway_chosen_only_by_a_shadowed_rule_is_unreachable() -> None:
    shadowed = rule("fall-only", "reablement", needs_any=["fall"], urgency_in=["crisis"])

    findings = checked(document(BROAD, shadowed))

    assert (
        Finding("warning", None, None, "no rule that can match chooses the pathway reablement")
        in findings
    )


def test_a_team_pathway_without_a_response_target_is_an_error() -> None:
    data = document(rule("equipment", "equipment", needs_only=["equipment"]))
    del data["pathways"]["equipment"]["response_target"]

    findings = errors_of(checked(data))

    assert findings == [
        Finding(
            "error",
            None,
            "pathways.equipment.response_target",
            "equipment is assigned to a team but has no response target",
        )
    ]


def test_advice_and_redirect_need_no_response_target() -> None:
    data = document(
        rule("red-flag", "redirect_emergency", red_flags_any=["chest_pain"]),
        rule("advice", "advice", needs_only=["information_advice"]),
    )

    assert errors_of(checked(data)) == []


def test_a_pathway_without_a_policy_and_a_last_rule_with_conditions_are_errors() -> None:
    data = document(rule("advice", "advice", needs_only=["information_advice"]))
    del data["pathways"]["advice"]
    data["rules"][-1]["when"] = {"urgency_in": ["routine"]}

    findings = errors_of(checked(data))

    assert [(finding.rule, finding.field) for finding in findings] == [
        ("advice", "pathway"),
        ("otherwise", "when"),
    ]


def test_a_rule_that_both_holds_and_refuses_is_an_error() -> None:
    both = {**rule("child", "routine_assessment", max_age=17), "hold": "under_18"}
    both["refuse"] = "under_18"

    with pytest.raises(RuleSetInvalid) as raised:
        load_rule_set(as_yaml(document(both)), "east.yaml")

    assert str(raised.value) == (
        "east.yaml: rule child: refuse: a rule either holds the case for a call handler or"
        " refuses it, not both (remove hold or refuse)"
    )


def test_a_rule_may_refuse_instead_of_holding() -> None:
    refusing = {**rule("child", "routine_assessment", max_age=17), "refuse": "under_18"}

    rule_set = load_rule_set(as_yaml(document(refusing)))

    assert (rule_set.rules[0].refuse, rule_set.rules[0].hold) == ("under_18", None)


def test_the_default_rule_set_passes_every_check() -> None:
    assert check_rule_set(default_rule_set()) == []


# --- the checks agree with evaluation --------------------------------------------------------

# Conditions draw on a few codes; the facts also hold codes no condition names, so that "every
# listed value" never looks like "anything" to the checks or to evaluation.
SOME_NEEDS = [Need.FALL, Need.WOUND_CARE, Need.EQUIPMENT]
SOME_FLAGS = [RedFlag.CHEST_PAIN, RedFlag.HEAD_INJURY]
SOME_CHANNELS = [Channel.GP, Channel.SELF, Channel.AMBULANCE]
AGE_LIMITS = [17, 18, 65]


def _subsets(values: list[Any]) -> list[frozenset[Any]]:
    return [
        frozenset(chosen)
        for size in range(len(values) + 1)
        for chosen in itertools.combinations(values, size)
    ]


ALL_FACTS = [
    Facts(channel, urgency, needs, flags, age, safeguarding_concern=False)
    for needs in _subsets([*SOME_NEEDS, Need.CARER_SUPPORT])
    for flags in _subsets(SOME_FLAGS)
    for urgency in Urgency
    for channel in [*SOME_CHANNELS, Channel.CARE_HOME]
    for age in [0, *AGE_LIMITS, 100]
]


def _maybe_set(values: list[Any]) -> st.SearchStrategy[frozenset[Any] | None]:
    # Empty lists are left to the tests above: they would make most rules dead here.
    return st.none() | st.frozensets(st.sampled_from(values), min_size=1)


CONDITION_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "red_flags_any": _maybe_set(SOME_FLAGS),
    "needs_any": _maybe_set(SOME_NEEDS),
    "needs_only": _maybe_set(SOME_NEEDS),
    "urgency_in": _maybe_set(list(Urgency)),
    "channels_in": _maybe_set(SOME_CHANNELS),
    "min_age": st.none() | st.sampled_from(AGE_LIMITS),
    "max_age": st.none() | st.sampled_from(AGE_LIMITS),
}
conditions = st.builds(Conditions, **CONDITION_VALUES)


@st.composite
def condition_pairs(draw: st.DrawFn) -> tuple[Conditions, Conditions]:
    """Two conditions, often one a near copy of the other: the pairs where covering and
    overlapping turn on a single condition."""
    first = draw(conditions)
    if draw(st.booleans()):
        return first, draw(conditions)
    names = draw(st.lists(st.sampled_from(list(CONDITION_VALUES)), min_size=1, max_size=2))
    second = first.model_copy(update={name: draw(CONDITION_VALUES[name]) for name in names})
    return (first, second) if draw(st.booleans()) else (second, first)


def _rule_set(first: Conditions, second: Conditions) -> RuleSet:
    return RuleSet.model_validate(
        {
            "version": "property",
            "hit_policy": "unique",
            "pathways": POLICIES,
            "rules": [
                Rule(id="first", reason="First.", when=first, pathway=Pathway.RAPID_RESPONSE),
                Rule(id="second", reason="Second.", when=second, pathway=Pathway.REABLEMENT),
                CATCH_ALL,
            ],
        }
    )


def _alone(rule_set: RuleSet, index: int) -> RuleSet:
    """``rule_set`` with only its rule at ``index`` and the catch-all."""
    return rule_set.model_copy(update={"rules": [rule_set.rules[index], rule_set.rules[-1]]})


def _matches(rule_set: RuleSet, facts: Facts) -> bool:
    return evaluate(rule_set, facts).rule.id != "otherwise"


@settings(max_examples=200, deadline=None)
@given(condition_pairs())
def test_never_matches_and_overlap_findings_agree_with_evaluation(
    pair: tuple[Conditions, Conditions],
) -> None:
    first, second = pair
    rule_set = _rule_set(first, second)
    findings = errors_of(check_rule_set(rule_set))
    reported = {(finding.rule, finding.message.split(":")[0]) for finding in findings}
    second_matches = [f for f in ALL_FACTS if _matches(_alone(rule_set, 1), f)]
    first_alone = _alone(rule_set, 0)
    both_match = [f for f in second_matches if _matches(first_alone, f)]
    second_is_dead = len(both_match) == len(second_matches)

    assert (("second", "never matches") in reported) is second_is_dead
    overlap = ("second", "a referral can match both this rule and rule first (rapid_response)")
    assert (overlap in {(f.rule, f.message.split(",")[0]) for f in findings}) is (
        bool(both_match) and not second_is_dead
    )


# --- load errors -----------------------------------------------------------------------------


def test_load_lists_every_vocabulary_error_with_file_rule_and_field() -> None:
    data = document(
        rule("fall", "rapid_response", needs_any=["fall", "time_travel"]),
        rule("wound", "routine_assessment", needs_only=["levitation"], urgency_in=["soon"]),
    )

    with pytest.raises(RuleSetInvalid) as raised:
        load_rule_set(as_yaml(data), "county.yaml")

    errors = raised.value.errors
    assert [(e["file"], e["rule"], e["field"]) for e in errors] == [
        ("county.yaml", "fall", "when.needs_any.1"),
        ("county.yaml", "wound", "when.needs_only.0"),
        ("county.yaml", "wound", "when.urgency_in.0"),
    ]
    assert errors[0]["reason"].startswith("unknown value 'time_travel'; expected one of 'fall',")
    assert "'levitation'" in errors[1]["reason"]
    assert (
        str(raised.value)
        .splitlines()[0]
        .startswith("county.yaml: rule fall: when.needs_any.1: unknown value 'time_travel'")
    )
    assert isinstance(raised.value, ValueError)


def test_load_names_top_level_fields_and_rules_without_an_id() -> None:
    data = document(rule("fall", "rapid_response", needs_any=["fall"]))
    data["hit_policy"] = "all"
    data["pathways"]["teleport"] = {"priority": 1}
    del data["rules"][0]["id"]

    with pytest.raises(RuleSetInvalid) as raised:
        load_rule_set(as_yaml(data))

    assert [(e["rule"], e["field"]) for e in raised.value.errors] == [
        ("", "hit_policy"),
        ("", "pathways.teleport"),
        ("", "rules.0.id"),
    ]
    assert raised.value.errors[0]["reason"] == (
        "unknown value 'all'; expected one of 'first' or 'unique'"
    )


def test_load_refuses_a_rule_set_that_fails_the_static_checks_listing_every_error() -> None:
    data = document(
        BROAD, rule("fall-only", "equipment", needs_any=["fall"], urgency_in=["crisis"])
    )
    del data["pathways"]["rapid_response"]["response_target"]

    with pytest.raises(RuleSetInvalid) as raised:
        load_rule_set(as_yaml(data), "county.yaml")

    assert [(e["rule"], e["field"]) for e in raised.value.errors] == [
        ("fall-only", "when"),
        ("", "pathways.rapid_response.response_target"),
    ]


def test_load_accepts_a_rule_set_with_warnings_only() -> None:
    rule_set = load_rule_set(as_yaml(document()))

    assert [rule.id for rule in rule_set.rules] == ["otherwise"]


def test_a_yaml_syntax_error_gives_its_line_and_column() -> None:
    text = "version: test-1\npathways: {advice: {priority: 5}\nrules: []\n"

    with pytest.raises(RuleSetInvalid) as raised:
        load_rule_set(text, "broken.yaml")

    [error] = raised.value.errors
    assert error["file"] == "broken.yaml"
    assert (error["rule"], error["field"]) == ("", "")
    assert error["reason"].startswith("YAML syntax error at line 3, column 1: ")
    assert "line 2, column 11" in error["reason"]


@pytest.mark.parametrize("text", ["", "- a list\n", "just words\n"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(RuleSetInvalid, match="must be a mapping"):
        load_rule_set(text)


# --- the command -----------------------------------------------------------------------------


def write(tmp_path: Path, name: str, data: dict[str, Any] | str) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else as_yaml(data), "utf-8")
    return path


def default_rules_path() -> Path:
    return Path(str(resources.files("services.routing.rules").joinpath("default_rules.yaml")))


def test_check_rules_passes_the_default_rule_set(capsys: pytest.CaptureFixture[str]) -> None:
    path = default_rules_path()

    assert cli.main(["check-rules", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: no errors, 0 warnings\n"


def test_check_rules_prints_one_line_per_finding_and_fails_on_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shadowed = rule("fall-only", "rapid_response", needs_any=["fall"], urgency_in=["crisis"])
    path = write(tmp_path, "county.yaml", document(BROAD, shadowed))

    assert cli.main(["check-rules", str(path)]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{path}: rule fall-only: when: never matches:"
        " the earlier rule fall-or-wound matches every referral this rule would"
    )
    assert f"warning: {path}: no rule that can match chooses the pathway advice" in lines[1:]
    assert all(line.startswith(f"warning: {path}: ") for line in lines[1:])


def test_check_rules_passes_with_warnings_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "small.yaml", document())

    assert cli.main(["check-rules", str(path)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    assert all(line.startswith(f"warning: {path}: ") for line in lines[:-1])
    assert lines[-1] == f"{path}: no errors, 6 warnings"


def test_check_rules_reports_load_errors_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = write(tmp_path, "broken.yaml", "rules: [\n")
    vocabulary = write(
        tmp_path, "vocabulary.yaml", document(rule("fall", "teleport", needs_any=["fall"]))
    )

    assert cli.main(["check-rules", str(broken), str(default_rules_path()), str(vocabulary)]) == 1

    out = capsys.readouterr().out
    assert f"{broken}: YAML syntax error at line 2, column 1: " in out
    assert f"{vocabulary}: rule fall: pathway: unknown value 'teleport';" in out
    assert f"{default_rules_path()}: no errors" in out


def test_check_rules_exits_2_for_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    not_text = write(tmp_path, "binary.yaml", "")
    not_text.write_bytes(b"\xff\xfe\x00rules")
    bad = write(tmp_path, "bad.yaml", "version: [\n")

    assert cli.main(["check-rules", str(missing), str(not_text), str(bad)]) == 2

    captured = capsys.readouterr()
    assert f"{missing}: cannot read the file: " in captured.err
    assert f"{not_text}: cannot read the file: " in captured.err
    assert f"{bad}: YAML syntax error" in captured.out


def test_check_rules_runs_as_a_module(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", document(rule("fall", "reablement", needs_any=[])))

    passed = subprocess.run(
        [sys.executable, "-m", "services.routing", "check-rules", str(default_rules_path())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = subprocess.run(
        [sys.executable, "-m", "services.routing", "check-rules", str(bad)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (passed.returncode, failed.returncode) == (0, 1)
    assert f"{bad}: rule fall: when.needs_any: never matches: needs_any is an empty list" in (
        failed.stdout
    )


def test_migrate_still_upgrades_the_routing_database(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    async def upgrade(url: str, name: str) -> None:
        calls.append((url, name))

    monkeypatch.setenv("ROUTING_DATABASE_URL", "sqlite+aiosqlite:///test-routing.db")
    monkeypatch.setattr(cli, "upgrade_url", upgrade)

    assert cli.main(["migrate"]) == 0
    assert calls == [("sqlite+aiosqlite:///test-routing.db", "routing")]
