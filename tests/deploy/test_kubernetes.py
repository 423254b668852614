"""The Kubernetes manifests are valid for the Kubernetes API and keep our own rules: probes,
limits and a locked-down container everywhere, settings the services really read, and the
migration of each release before its pods start."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
from pydantic_settings import BaseSettings

from services.routing.settings import RoutingSettings
from services.shared.health import router as health_router
from services.spa.settings import SpaSettings
from services.teams.settings import TeamsSettings
from tests.deploy.manifests import Manifest, containers, kustomization, of_kind, pod_spec, render

KUBERNETES_VERSION = "1.30.0"
API_SERVICES = ("spa", "routing", "teams")
SETTINGS: dict[str, type[BaseSettings]] = {
    "SPA_": SpaSettings,
    "ROUTING_": RoutingSettings,
    "TEAMS_": TeamsSettings,
}
MANIFESTS = render()


def _name(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=_name)
def test_each_manifest_is_valid_for_the_kubernetes_api(manifest: Manifest) -> None:
    # Strict: a misspelt or misplaced field is an error, not silently dropped by the server.
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_misspelt_field() -> None:
    deployment = json.loads(json.dumps(of_kind(MANIFESTS, "Deployment")["spa"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_renderer_applied_the_namespace_and_the_release_image() -> None:
    tag = kustomization()["images"][0]["newTag"]
    deployment = of_kind(MANIFESTS, "Deployment")["spa"]
    assert deployment["metadata"]["namespace"] == "spa-platform"
    assert all(c["image"].endswith(f":{tag}") for c in containers(deployment))


WORKLOADS = [m for m in MANIFESTS if pod_spec(m) is not None]


@pytest.mark.parametrize("manifest", WORKLOADS, ids=_name)
def test_every_container_is_locked_down_and_bounded(manifest: Manifest) -> None:
    spec = pod_spec(manifest)
    assert spec is not None
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    for container in containers(manifest):
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True, container["name"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, container["name"]
        # The one writable place: a Python process may need a temporary file.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], container["name"]  # noqa: S108


DEPLOYMENTS = of_kind(MANIFESTS, "Deployment")
HEALTH_PATHS = {route.path for route in health_router.routes}  # type: ignore[attr-defined]


@pytest.mark.parametrize("deployment", DEPLOYMENTS.values(), ids=_name)
def test_every_server_has_its_probes_and_waits_for_its_schema(deployment: Manifest) -> None:
    for container in containers(deployment, init=False):
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        readiness = container["readinessProbe"]["httpGet"]["path"]
        # Only the workers' own probe asks after the workers: no Service selects their pods.
        worker = deployment["metadata"]["name"] == "spa-worker"
        expected = "/readyz?workers=1" if worker else "/readyz"
        assert readiness == expected
        assert {"/healthz", "/readyz"} <= HEALTH_PATHS
        assert container["args"][0] == "serve"
    (wait,) = pod_spec(deployment)["initContainers"]  # type: ignore[index]
    assert wait["args"][0] == "wait-for-schema"
    assert wait["command"] == containers(deployment, init=False)[0]["command"]


def test_each_api_service_has_a_service_an_autoscaler_and_a_disruption_budget() -> None:
    services = of_kind(MANIFESTS, "Service")
    autoscalers = of_kind(MANIFESTS, "HorizontalPodAutoscaler")
    budgets = of_kind(MANIFESTS, "PodDisruptionBudget")
    for name in API_SERVICES:
        labels = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert autoscalers[name]["spec"]["scaleTargetRef"]["name"] == name
        assert autoscalers[name]["spec"]["minReplicas"] >= 2
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The workers take no requests: no Service selects them.
    worker_labels = DEPLOYMENTS["spa-worker"]["spec"]["template"]["metadata"]["labels"]
    assert not any(
        s["spec"]["selector"].items() <= worker_labels.items() for s in services.values()
    )
    env = {e["name"]: e["value"] for e in containers(DEPLOYMENTS["spa-worker"])[0]["env"]}
    assert env["SPA_BACKGROUND_WORKERS"] == "true"


def test_only_spa_is_reached_from_outside() -> None:
    backends = {
        path["backend"]["service"]["name"]
        for ingress in of_kind(MANIFESTS, "Ingress").values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"spa"}
    policies = of_kind(MANIFESTS, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    for name in ("routing", "teams"):
        policy = policies[f"{name}-ingress"]["spec"]
        assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        # Only pods of this namespace: no other namespace, no address range.
        sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
        assert sources
        assert all(set(peer) == {"podSelector"} for peer in sources)


def _settings_read(prefix: str) -> set[str]:
    fields = SETTINGS[prefix].model_fields
    # <PREFIX>_SECRETS_DIR is read before the settings, to find their files.
    return {prefix + name.upper() for name in fields} | {f"{prefix}SECRETS_DIR"}


def _configured(manifest: Manifest) -> set[str]:
    names = set()
    for container in containers(manifest):
        names |= {variable["name"] for variable in container.get("env", [])}
    return names


@pytest.mark.parametrize("config_map", of_kind(MANIFESTS, "ConfigMap").values(), ids=_name)
def test_every_setting_configured_is_one_the_service_reads(config_map: Manifest) -> None:
    prefix = config_map["metadata"]["name"].removesuffix("-config").upper() + "_"
    assert set(config_map["data"]) <= _settings_read(prefix)
    for workload in WORKLOADS:
        for variable in _configured(workload):
            assert variable in _settings_read(variable.split("_")[0] + "_"), variable


def _mounts_of_secrets(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    return {
        m["mountPath"]: secrets[m["name"]]
        for m in container["volumeMounts"]
        if m["name"] in secrets
    }


@pytest.mark.parametrize("manifest", WORKLOADS, ids=_name)
def test_credentials_come_from_mounted_secrets(manifest: Manifest) -> None:
    spec = pod_spec(manifest)
    assert spec is not None
    config_maps = of_kind(MANIFESTS, "ConfigMap")
    for container in containers(manifest):
        (source,) = container["envFrom"]
        data = config_maps[source["configMapRef"]["name"]]["data"]
        prefix = next(iter(data)).split("_")[0]
        mounted = _mounts_of_secrets(spec, container)
        # The service's Secret is where its SECRETS_DIR points, and holds no one else's.
        assert mounted[data[f"{prefix}_SECRETS_DIR"]] == f"{prefix.lower()}-secrets"
        assert not any(key.endswith(("_DATABASE_URL", "_SECRET")) for key in data)
        if prefix == "SPA" and manifest["kind"] == "Deployment":
            for key_file in json.loads(data["SPA_ISSUER_KEY_FILES"]):
                directory = str(PurePosixPath(key_file).parent)
                assert mounted[directory] == "spa-issuer-keys"


def test_the_migration_job_is_named_for_the_release_it_migrates() -> None:
    # A Job cannot be changed once created: each release's migration is a Job of its own.
    tag = kustomization()["images"][0]["newTag"]
    (job,) = of_kind(MANIFESTS, "Job").values()
    assert job["metadata"]["name"] == "migrate-" + tag.replace(".", "-")
    migrated = {c["command"][-1] for c in containers(job)}
    assert migrated == {f"services.{name}" for name in API_SERVICES}
    assert all(c["args"] == ["migrate"] for c in containers(job))
