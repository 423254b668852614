"""deploy/prometheus/alerts.yaml is a file of Prometheus rule groups, and every metric its
alerts read is one the running services expose: an alert on a misspelt or renamed metric would
never fire."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.stack import Stack

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"
GROUP_KEYS = {"name", "interval", "limit", "query_offset", "rules"}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
SEVERITIES = {"critical", "warning", "info"}
# What PromQL spells with letters that is not a metric name.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
KEYWORDS |= {"group_left", "group_right", "inf", "nan"}
# The samples each kind of metric family is exposed as.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
}


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (what is left once strings, label matchers,
    ranges, grouping clauses and function calls are taken out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        following = bare[match.end() :].lstrip()
        if following.startswith("(") or match.group() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def test_the_file_is_prometheus_rule_groups() -> None:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))

    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    alerts = []
    for group in document["groups"]:
        assert set(group) <= GROUP_KEYS, group["name"]
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) <= RULE_KEYS, rule
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
            assert isinstance(rule["expr"], str)
            assert rule["expr"].strip()
            assert DURATION.match(rule.get("for", "0s")), rule["alert"]
            assert rule["labels"]["severity"] in SEVERITIES
            assert {"summary", "description"} <= set(rule["annotations"])
            assert _balanced(rule["expr"]), rule["alert"]
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))


def _balanced(expr: str) -> bool:
    pairs, depth = {")": "(", "]": "[", "}": "{"}, []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', "", expr):
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth


def test_the_name_extraction_finds_metrics_and_only_metrics() -> None:
    expr = 'sum by (kind) (rate(a_total{outcome=~"x|y"}[5m])) / on (kind) b_seconds > bool 0.2'
    assert metric_names(expr) == {"a_total", "b_seconds"}


def test_the_alerts_cover_what_operators_asked_for() -> None:
    read = set().union(*(metric_names(rule["expr"]) for rule in load_rules()))

    assert {
        "outbox_oldest_due_age_seconds",
        "spa_response_clocks_breached_total",
        "spa_deliveries_total",
        "worker_heartbeat_age_seconds",
    } <= read


async def _exposed(stack: Stack) -> set[str]:
    exposed = set()
    for service in ("spa", "routing", "teams"):
        async with stack.client(service, "prometheus") as http:
            response = await http.get("/metrics")
        assert response.status_code == 200, response.text
        for family in text_string_to_metric_families(response.text):
            exposed |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
            exposed |= {sample.name for sample in family.samples}
    return exposed


async def test_every_metric_an_alert_reads_is_exposed(stack: Stack) -> None:
    # The readings are cached for a few seconds: each look moves the clock past the cache, so
    # the scrape reads the heartbeats the workers wrote as they started.
    async def beaten() -> set[str] | None:
        stack.clock.now += timedelta(seconds=6)
        exposed = await _exposed(stack)
        return exposed if "worker_heartbeat_age_seconds" in exposed else None

    exposed = await stack.wait_for(beaten)
    missing = {
        rule["alert"]: sorted(metric_names(rule["expr"]) - exposed)
        for rule in load_rules()
        if metric_names(rule["expr"]) - exposed
    }

    assert all(metric_names(rule["expr"]) for rule in load_rules())
    assert missing == {}
