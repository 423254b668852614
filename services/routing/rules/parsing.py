"""Reading a rule file: syntax, schema and the static checks, every error at once."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from services.routing.rules.checks import Finding, check_rule_set
from services.routing.rules.language import RuleSet
from services.shared.strict_input import json_errors


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


DEFAULT_FILE = "default_rules.yaml"


def default_document() -> str:
    """The county's rule set as packaged, which a first start makes active."""
    return resources.files("services.routing.rules").joinpath(DEFAULT_FILE).read_text("utf-8")


def default_rule_set() -> RuleSet:
    return load_rule_set(default_document(), DEFAULT_FILE)
