"""spa can run as API processes without background workers beside worker processes of their
own: a referral taken by an API-only process is routed by a worker elsewhere."""

from __future__ import annotations

import uuid

import httpx
from asgi_lifespan import LifespanManager

from services.spa.main import create_app as create_spa
from tests import factories
from tests.stack import Stack


async def test_an_api_only_process_takes_referrals_that_a_worker_elsewhere_routes(
    stack: Stack,
) -> None:
    worker_process = stack.apps["spa"]
    settings = worker_process.state.settings.model_copy(update={"background_workers": False})
    api_only = create_spa(settings, mounts=stack.mounts, clock=stack.clock)
    token = await stack.token("gp-system")

    async with LifespanManager(api_only):
        transport = httpx.ASGITransport(app=api_only)
        async with httpx.AsyncClient(transport=transport, base_url="http://spa") as spa:
            spa.headers["Authorization"] = f"Bearer {token}"
            answer = await spa.post(
                "/v1/referrals",
                json=factories.referral(urgency="crisis", needs=["fall"]),
                headers={"Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=10"},
            )

        assert not hasattr(api_only.state, "worker")
        assert not hasattr(api_only.state, "webhook_dispatcher")

    assert answer.status_code == 201, answer.text
    referral = answer.json()
    assert referral["status"] == "routed"
    assert referral["assignments"][0]["team"]["code"]
