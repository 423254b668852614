"""deploy/compose.yaml is a valid Compose file and runs the platform as the Kubernetes manifests
do: the migration first, every service from our image, locked down, its credentials in files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.test_kubernetes import _settings_read

HERE = Path(__file__).resolve().parent
COMPOSE_FILE = HERE.parents[1] / "deploy" / "compose.yaml"
SCHEMA = json.loads((HERE / "compose-spec.json").read_text("utf-8"))
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
OURS = ("migrate", "spa", "spa-worker", "routing", "teams")


def test_the_compose_file_meets_the_compose_specification() -> None:
    jsonschema.Draft201909Validator(SCHEMA).validate(COMPOSE)


def test_the_schema_refuses_a_misspelt_key() -> None:
    broken = {"services": {"spa": {"image": "x", "read-only": True}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(SCHEMA).validate(broken)


@pytest.mark.parametrize("name", OURS)
def test_each_of_our_services_runs_our_image_locked_down(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["build"]["dockerfile"] == "Dockerfile"
    assert (COMPOSE_FILE.parent / service["build"]["context"] / "Dockerfile").is_file()
    assert service["user"] == "10001:10001"
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp"]  # noqa: S108
    assert service["cap_drop"] == ["ALL"]
    for variable in service["environment"]:
        assert variable in _settings_read(variable.split("_")[0] + "_"), variable
    # Credentials are files in <PREFIX>_SECRETS_DIR, never the environment.
    assert not any(v.endswith(("_DATABASE_URL", "_SECRET")) for v in service["environment"])
    targets = {secret["target"] for secret in service["secrets"]}
    assert {"SPA_DATABASE_URL", "ROUTING_DATABASE_URL", "TEAMS_DATABASE_URL"} <= targets


@pytest.mark.parametrize("name", ["spa", "spa-worker", "routing", "teams"])
def test_servers_start_after_the_migration_has_finished(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert service["command"][:2] == [f"services.{name.removesuffix('-worker')}", "serve"]


def test_the_migration_migrates_every_service_once_the_database_is_healthy() -> None:
    migrate = COMPOSE["services"]["migrate"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    (script,) = migrate["command"]
    for name in ("spa", "routing", "teams"):
        assert f"python -m services.{name} migrate" in script


def test_only_spa_is_published_and_its_workers_run_apart() -> None:
    published = {name for name, s in COMPOSE["services"].items() if "ports" in s}
    assert published == {"spa"}
    assert COMPOSE["services"]["spa"]["environment"]["SPA_BACKGROUND_WORKERS"] == "false"
    worker = COMPOSE["services"]["spa-worker"]
    assert worker["environment"]["SPA_BACKGROUND_WORKERS"] == "true"
    assert worker["cpu_shares"] < 1024
