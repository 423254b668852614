"""The routing service's operations as its OpenAPI document names and describes them."""

from __future__ import annotations

from services.shared.openapi import COMMON, Operation

_RULES = "Rule sets are versioned YAML, one active version per scope (county or locality). "

CATALOGUE: dict[str, Operation] = {
    **COMMON,
    "POST /v1/decisions": Operation(
        "createDecision",
        "Triage one referral with the active rules of its scope: exactly one pathway, any "
        "escalations (safeguarding), and the team type to route to. The decision is recorded "
        "with a trace of each rule that fired, so a person can read why.",
    ),
    "POST /v1/decisions/batch": Operation(
        "createDecisions",
        "Triage many referrals in one request; each gets its own decision, or its own "
        "problem, in the order sent.",
    ),
    "GET /v1/decisions/{decision_id}": Operation(
        "getDecision", "A recorded decision with the trace of the rules that made it."
    ),
    "POST /v1/rule-sets": Operation(
        "uploadRuleSet",
        _RULES + "An upload is checked whole and stored as a draft; an invalid one is "
        "refused with every error found.",
    ),
    "GET /v1/rule-sets": Operation("listRuleSets", _RULES + "Every version, newest first."),
    "GET /v1/rule-sets/{rule_set_id}": Operation(
        "getRuleSet", _RULES + "One version with its rules and state.", summary="A rule set"
    ),
    "POST /v1/rule-sets/{rule_set_id}/dry-run": Operation(
        "dryRunRuleSet",
        _RULES + "Evaluate a sample referral against this version and see the decision and "
        "its trace; nothing is recorded.",
    ),
    "POST /v1/rule-sets/{rule_set_id}/activate": Operation(
        "activateRuleSet",
        _RULES + "This version decides from now on; the one it replaces is kept for rollback.",
    ),
    "POST /v1/rule-sets/{rule_set_id}/shadow": Operation(
        "shadowRuleSet",
        _RULES + "This version is evaluated beside the active one on live referrals and its "
        "disagreements recorded, without deciding anything.",
    ),
    "POST /v1/rule-set-scopes/{scope}/rollback": Operation(
        "rollbackRuleSetScope",
        _RULES + "The previously active version of the scope becomes active again.",
    ),
    "GET /v1/shadow-disagreements": Operation(
        "listShadowDisagreements",
        "Live decisions on which a shadowed version would have chosen differently.",
    ),
    "GET /v1/rule-sets/{rule_set_id}/events": Operation(
        "listRuleSetEvents",
        "Who uploaded, activated, shadowed or rolled back this rule set, and when.",
    ),
}
