"""The Kubernetes manifests of deploy/kubernetes as ``kubectl apply -k`` would send them: the
files that kustomization.yaml lists, with its namespace, labels and image applied (the only
transformations it uses; a field it does not support here fails the render)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATION = ROOT / "deploy" / "kubernetes" / "kustomization.yaml"
SUPPORTED = {"apiVersion", "kind", "namespace", "labels", "images", "resources"}
CLUSTER_SCOPED = {"Namespace"}

Manifest = dict[str, Any]


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(KUSTOMIZATION.read_text("utf-8"))
    return loaded


def render() -> list[Manifest]:
    spec = kustomization()
    unsupported = set(spec) - SUPPORTED
    if unsupported:
        raise ValueError(f"the renderer does not apply {sorted(unsupported)}")
    manifests = []
    for resource in spec["resources"]:
        text = (KUSTOMIZATION.parent / resource).read_text("utf-8")
        manifests += [doc for doc in yaml.safe_load_all(text) if doc is not None]
    return [_transform(copy.deepcopy(manifest), spec) for manifest in manifests]


def _transform(manifest: Manifest, spec: dict[str, Any]) -> Manifest:
    metadata = manifest.setdefault("metadata", {})
    if manifest["kind"] not in CLUSTER_SCOPED:
        metadata["namespace"] = spec["namespace"]
    for label_set in spec.get("labels", []):
        metadata.setdefault("labels", {}).update(label_set["pairs"])
    images = {image["name"]: image for image in spec.get("images", [])}
    for container in containers(manifest):
        image = images.get(container["image"])
        if image is not None:
            container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return manifest


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    if manifest["kind"] in ("Deployment", "Job"):
        spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
        return spec
    if manifest["kind"] == "CronJob":
        scheduled: dict[str, Any] = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return scheduled
    return None


def containers(manifest: Manifest, *, init: bool = True) -> list[dict[str, Any]]:
    spec = pod_spec(manifest)
    if spec is None:
        return []
    found: list[dict[str, Any]] = list(spec["containers"])
    return found + list(spec.get("initContainers", [])) if init else found


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
