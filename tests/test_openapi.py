"""The committed OpenAPI documents are what the apps serve; `make openapi` refreshes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openapi.generate import apps, render

OPENAPI = Path(__file__).resolve().parents[1] / "openapi"


@pytest.mark.parametrize("service", ["spa", "routing", "teams"])
def test_committed_document_matches_the_app(service: str) -> None:
    generated = render(apps()[service].openapi())
    committed = (OPENAPI / f"{service}.json").read_text(encoding="utf-8")

    assert committed == generated, f"openapi/{service}.json is out of date: run `make openapi`"


@pytest.mark.parametrize("service", ["spa", "routing", "teams"])
def test_every_operation_but_the_open_ones_is_secured_and_documents_problems(service: str) -> None:
    document = json.loads((OPENAPI / f"{service}.json").read_text(encoding="utf-8"))
    open_paths = {"/healthz", "/readyz", "/oauth/token", "/.well-known/jwks.json"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in open_paths:
                continue
            assert operation.get("security"), f"{method.upper()} {path} has no security"
            # The FHIR door answers every error as an OperationOutcome instead.
            fhir = path.startswith("/FHIR/R4/")
            media = "application/fhir+json" if fhir else "application/problem+json"
            for status in ("401", "403"):
                content = operation["responses"][status]["content"]
                assert media in content, f"{method.upper()} {path} {status}"
