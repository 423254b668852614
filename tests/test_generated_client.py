"""A Python client generated from openapi/spa.json during the run (openapi-python-client) takes
one referral through intake and routing on the running stack. The client only knows what the
document says: a required header left undocumented, a status not listed, a body whose schema
does not match what is sent, and this test fails."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests import factories
from tests.stack import SPA, Stack

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "generated_spa_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Generates the client and puts it on the import path; its generator's warnings."""
    where = tmp_path_factory.mktemp("client")
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")  # no formatter run on the output
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(ROOT / "openapi" / "spa.json"),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        yield result.stdout + result.stderr
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generator_understands_every_operation(generated: str) -> None:
    # The FHIR door's OperationOutcome is described to the generator too; a Bundle is an object
    # it passes through as it is.
    warnings = [line for line in generated.splitlines() if line.startswith("WARNING parsing")]
    assert warnings == []


async def test_a_referral_made_and_followed_with_the_generated_client(
    stack: Stack, generated: str
) -> None:
    client_module, models = _module("client"), _module("models")
    create_referral = _module("api.referrals.create_referral")
    get_referral = _module("api.referrals.get_referral")
    get_timeline = _module("api.referrals.get_referral_timeline")
    token = await stack.token("gp-system")
    client: Any = client_module.AuthenticatedClient(
        base_url=SPA,
        token=token,
        raise_on_unexpected_status=True,
        httpx_args={"transport": httpx.ASGITransport(app=stack.apps["spa"])},
    )
    body = models.ReferralCreate.from_dict(
        factories.referral(needs=["ltc_management"], practice="M91004")
    )

    async with client:
        created = await create_referral.asyncio_detailed(
            client=client, body=body, idempotency_key=str(uuid.uuid4()), prefer="wait=10"
        )
        assert created.status_code in (201, 202), created.content
        referral = created.parsed
        assert isinstance(referral, models.ReferralRead)
        assert created.headers["location"] == f"/v1/referrals/{referral.id}"
        assert created.headers["preference-applied"] == "wait=10"

        async def routed() -> Any:
            read = await get_referral.asyncio(client=client, referral_id=referral.id)
            assert isinstance(read, models.ReferralRead)
            return read if str(read.status) not in ("received", "triaged") else None

        settled = await stack.wait_for(routed, within=15)
        timeline = await get_timeline.asyncio(client=client, referral_id=referral.id)
        missing = await get_referral.asyncio_detailed(client=client, referral_id=uuid.uuid4())

    assert str(settled.status) == "routed"
    assert str(settled.routing.pathway) == "case_management"
    assert settled.team.code == "plmdt-north-2"
    assert isinstance(timeline, models.Timeline)
    assert str(timeline.events[-1].to_status) == "routed"
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.ProblemDetails)
    assert missing.parsed.type_.endswith("referral-not-found")
