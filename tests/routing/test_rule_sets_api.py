"""Rule sets through the API: upload (checked), dry-run, shadow, activate, roll back, overrides."""

from __future__ import annotations

import uuid
from importlib import resources
from typing import Any

import httpx
import yaml

from services.routing.rule_sets.models import RuleSetEvent, ShadowDisagreement
from tests.stack import Stack

DEFAULT = yaml.safe_load(
    resources.files("services.routing.rules").joinpath("default_rules.yaml").read_text("utf-8")
)


def variant(version: str, change: Any = None) -> str:
    document: dict[str, Any] = yaml.safe_load(yaml.safe_dump(DEFAULT))
    document["version"] = version
    if change is not None:
        change(document)
    return yaml.safe_dump(document, sort_keys=False)


def rule(document: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in document["rules"] if r["id"] == rule_id)
    return found


def older_adults_only(document: dict[str, Any]) -> None:
    rule(document, "ucr-crisis-adult")["when"]["min_age"] = 65


def facts(**overrides: Any) -> dict[str, Any]:
    return {
        "channel": "ambulance",
        "urgency": "crisis",
        "needs": ["fall"],
        "age_years": 40,
        "practice": "M91001",
        **overrides,
    }


async def upload(lead: httpx.AsyncClient, document: str, scope: str = "county") -> httpx.Response:
    return await lead.post("/v1/rule-sets", json={"scope": scope, "document": document})


async def decide(stack: Stack, **overrides: Any) -> dict[str, Any]:
    async with stack.client("routing", "spa-service") as routing:
        response = await routing.post(
            "/v1/decisions", json={"referral_id": str(uuid.uuid4()), **facts(**overrides)}
        )
        assert response.status_code == 201, response.text
        decision: dict[str, Any] = response.json()
        return decision


async def test_the_packaged_county_rules_are_active_from_the_start(stack: Stack) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        listed = (await lead.get("/v1/rule-sets")).json()["items"]

    assert [(r["scope"], r["version"], r["status"]) for r in listed] == [
        ("county", "county-default-1", "active")
    ]


async def test_an_invalid_rule_set_is_refused_whole_with_every_error(stack: Stack) -> None:
    def two_mistakes(document: dict[str, Any]) -> None:
        rule(document, "equipment-need")["when"]["needs_only"] = ["equipment", "jetpack"]
        rule(document, "advice-only")["pathway"] = "gossip"

    async with stack.client("routing", "clinical-lead") as lead:
        response = await upload(lead, variant("broken-1", two_mistakes))
        listed = (await lead.get("/v1/rule-sets")).json()["items"]

    assert response.status_code == 422
    assert response.json()["type"] == "urn:spa-platform:problem:rule-set-rejected"
    named = {(error["rule"], error["field"].split(".")[0]) for error in response.json()["errors"]}
    assert {("equipment-need", "when"), ("advice-only", "pathway")} <= named
    assert len(listed) == 1


async def test_a_version_is_uploaded_once_per_scope(stack: Stack) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        first = await upload(lead, variant("county-2"))
        again = await upload(lead, variant("county-2"))

    assert first.status_code == 201
    assert first.json()["status"] == "draft"
    assert again.status_code == 409


async def test_a_dry_run_evaluates_any_version_without_recording(stack: Stack) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        candidate = (await upload(lead, variant("county-2", older_adults_only))).json()
        result = await lead.post(f"/v1/rule-sets/{candidate['id']}/dry-run", json=facts())
        bad = await lead.post(
            f"/v1/rule-sets/{candidate['id']}/dry-run", json=facts(needs=["levitation"])
        )

    assert result.status_code == 200
    assert result.json()["pathway"] == "routine_assessment"
    assert {
        "rule": "ucr-crisis-adult",
        "matched": False,
        "why_not": "younger than 65",
    } in result.json()["trace"]
    assert bad.status_code == 422


async def test_shadow_mode_records_disagreements_and_changes_nothing(stack: Stack) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        candidate = (await upload(lead, variant("county-2", older_adults_only))).json()
        shadowed = await lead.post(f"/v1/rule-sets/{candidate['id']}/shadow")

    young = await decide(stack, age_years=40)
    old = await decide(stack, age_years=80)

    assert shadowed.json()["status"] == "shadow"
    assert young["pathway"] == "rapid_response"
    assert young["rule_set_version"] == "county-default-1"
    async with stack.client("routing", "clinical-lead") as lead:
        disagreements = (
            await lead.get("/v1/shadow-disagreements", params={"candidate_id": candidate["id"]})
        ).json()["items"]
    assert [
        (d["decision_id"], d["active_pathway"], d["candidate_pathway"]) for d in disagreements
    ] == [(young["id"], "rapid_response", "routine_assessment")]
    assert old["id"] not in {d["decision_id"] for d in disagreements}


async def test_activation_takes_effect_and_rollback_restores_the_previous_version(
    stack: Stack,
) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        candidate = (await upload(lead, variant("county-2", older_adults_only))).json()
        activated = await lead.post(f"/v1/rule-sets/{candidate['id']}/activate")
        twice = await lead.post(f"/v1/rule-sets/{candidate['id']}/activate")
    under_candidate = await decide(stack, age_years=40)
    async with stack.client("routing", "clinical-lead") as lead:
        rolled_back = await lead.post("/v1/rule-set-scopes/county/rollback")
        statuses = {
            r["version"]: r["status"] for r in (await lead.get("/v1/rule-sets")).json()["items"]
        }
        nothing_left = await lead.post("/v1/rule-set-scopes/county/rollback")
    after_rollback = await decide(stack, age_years=40)

    assert activated.json()["status"] == "active"
    assert twice.status_code == 409
    assert (under_candidate["rule_set_version"], under_candidate["pathway"]) == (
        "county-2",
        "routine_assessment",
    )
    assert rolled_back.json()["version"] == "county-default-1"
    assert statuses == {"county-default-1": "active", "county-2": "rolled_back"}
    assert nothing_left.status_code == 409
    assert (after_rollback["rule_set_version"], after_rollback["pathway"]) == (
        "county-default-1",
        "rapid_response",
    )
    assert await stack.count_rows("routing", RuleSetEvent) >= 5


async def test_a_locality_table_replaces_the_county_table_for_that_locality_only(
    stack: Stack,
) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        east = (await upload(lead, variant("east-1", older_adults_only), scope="east")).json()
        await lead.post(f"/v1/rule-sets/{east['id']}/activate")

    in_east = await decide(stack, practice="M92001")
    in_north = await decide(stack, practice="M91001")

    assert (in_east["rule_set_version"], in_east["pathway"]) == ("east-1", "routine_assessment")
    assert (in_north["rule_set_version"], in_north["pathway"]) == (
        "county-default-1",
        "rapid_response",
    )
    assert await stack.count_rows("routing", ShadowDisagreement) == 0


def refuse_children(document: dict[str, Any]) -> None:
    child = rule(document, "child-held-for-call-handler")
    del child["hold"]
    child["refuse"] = "under_18"


async def test_a_locality_may_refuse_children_where_the_county_holds_them(stack: Stack) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        south = (await upload(lead, variant("south-1", refuse_children), scope="south")).json()
        tried = await lead.post(
            f"/v1/rule-sets/{south['id']}/dry-run", json=facts(age_years=16, practice="M93001")
        )
        await lead.post(f"/v1/rule-sets/{south['id']}/activate")

    in_south = await decide(stack, age_years=16, practice="M93001")
    in_north = await decide(stack, age_years=16, practice="M91001")

    assert (tried.json()["refuse"], tried.json()["hold"]) == ("under_18", None)
    assert (in_south["refuse"], in_south["hold"]) == ("under_18", None)
    assert (in_south["team"], in_south["team_outcome"]) == (None, "no_assignment")
    assert in_south["locality_code"] == "south"
    assert (in_north["refuse"], in_north["hold"]) == (None, "under_18")


async def test_a_rule_that_holds_and_refuses_is_refused_on_upload(stack: Stack) -> None:
    def both(document: dict[str, Any]) -> None:
        rule(document, "child-held-for-call-handler")["refuse"] = "under_18"

    async with stack.client("routing", "clinical-lead") as lead:
        response = await upload(lead, variant("south-1", both), scope="south")

    assert response.status_code == 422
    assert [(e["rule"], e["field"]) for e in response.json()["errors"]] == [
        ("child-held-for-call-handler", "refuse")
    ]
    assert "not both" in response.json()["errors"][0]["reason"]


async def test_rule_sets_need_the_rules_admin_scope(stack: Stack) -> None:
    async with stack.client("routing", "team-app") as other:
        response = await other.post("/v1/rule-sets", json={"document": variant("county-9")})

    assert response.status_code == 403


async def test_every_change_to_a_rule_set_is_recorded_with_who_made_it(stack: Stack) -> None:
    async with stack.client("routing", "clinical-lead") as lead:
        candidate = (await upload(lead, variant("county-3"))).json()
        await lead.post(f"/v1/rule-sets/{candidate['id']}/shadow")
        await lead.post(
            f"/v1/rule-sets/{candidate['id']}/activate", headers={"X-Request-ID": "change-ticket-7"}
        )
        events = (await lead.get(f"/v1/rule-sets/{candidate['id']}/events")).json()["items"]
        unknown = await lead.get(f"/v1/rule-sets/{uuid.uuid4()}/events")

    assert [(e["action"], e["actor"]) for e in events] == [
        ("uploaded", "clinical-lead"),
        ("shadowed", "clinical-lead"),
        ("activated", "clinical-lead"),
    ]
    assert events[-1]["request_id"] == "change-ticket-7"
    assert unknown.status_code == 404
