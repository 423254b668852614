"""A retried POST never makes a second referral: the same Idempotency-Key and body get the
first answer again; the same key with another body is refused."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from services.spa.referrals.models import IdempotencyRecord, Referral
from tests import factories
from tests.stack import Stack


async def test_a_referral_without_an_idempotency_key_is_refused(stack: Stack) -> None:
    async with stack.client("spa", "gp-system", idempotency_keys=False) as spa:
        missing = await spa.post("/v1/referrals", json=factories.referral())
        blank = await spa.post(
            "/v1/referrals", json=factories.referral(), headers={"Idempotency-Key": " "}
        )

    for response in (missing, blank):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:spa-platform:problem:idempotency-key-required"
    assert await stack.count_rows("spa", Referral) == 0


async def test_a_retry_with_the_same_key_gets_the_first_answer(stack: Stack) -> None:
    body = factories.referral()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    async with stack.client("spa", "gp-system") as spa:
        first = await spa.post("/v1/referrals", json=body, headers=key)
        # The same request, its JSON laid out differently.
        again = await spa.post(
            "/v1/referrals",
            content=json.dumps(body, indent=2, sort_keys=True),
            headers={**key, "Content-Type": "application/json"},
        )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await stack.count_rows("spa", Referral) == 1


async def test_the_same_key_with_a_different_body_is_refused(stack: Stack) -> None:
    key = {"Idempotency-Key": "gp-ref-000123"}
    async with stack.client("spa", "gp-system") as spa:
        first = await spa.post("/v1/referrals", json=factories.referral(), headers=key)
        other = await spa.post(
            "/v1/referrals", json=factories.referral(urgency="urgent"), headers=key
        )

    assert first.status_code == 201
    assert other.status_code == 422
    assert other.json()["type"] == "urn:spa-platform:problem:idempotency-key-reused"
    assert await stack.count_rows("spa", Referral) == 1


async def test_keys_belong_to_the_client_that_sent_them(stack: Stack) -> None:
    key = {"Idempotency-Key": "shared-looking-key"}
    async with (
        stack.client("spa", "gp-system") as gp,
        stack.client("spa", "other-gp-system") as other,
    ):
        mine = await gp.post("/v1/referrals", json=factories.referral(), headers=key)
        theirs = await other.post("/v1/referrals", json=factories.referral(), headers=key)

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_twenty_concurrent_posts_with_one_key_make_one_referral(any_stack: Stack) -> None:
    body = factories.referral(channel="ambulance", urgency="crisis", needs=["fall"])
    key = {"Idempotency-Key": str(uuid.uuid4())}
    async with any_stack.client("spa", "ambulance-cad") as spa:
        responses = await asyncio.gather(
            *(spa.post("/v1/referrals", json=body, headers=key) for _ in range(20))
        )

    assert {response.status_code for response in responses} == {201}, [
        r.text for r in responses if r.status_code != 201
    ]
    assert len({response.json()["id"] for response in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert await any_stack.count_rows("spa", Referral) == 1
    assert await any_stack.count_rows("spa", IdempotencyRecord) == 1


async def test_an_expired_key_can_be_used_again(stack: Stack) -> None:
    key = {"Idempotency-Key": "reused-next-week"}
    async with stack.client("spa", "gp-system") as spa:
        first = await spa.post("/v1/referrals", json=factories.referral(), headers=key)
        retention = stack.apps["spa"].state.settings.idempotency_retention_hours
        stack.clock.now += timedelta(hours=retention, seconds=1)
        later = await spa.post("/v1/referrals", json=factories.referral(), headers=key)

    assert first.status_code == later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
