"""A referral's clinical payload reaches the people who act on it and no one else: the referrer,
the call handlers of the case's locality and the team holding it see it (each showing audited);
another team, another locality's handlers, routing, teams and webhook subscribers never do,
and no log line carries it (this directory's log scan)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from services.spa.audit import AuditEvent
from services.spa.webhooks.models import WebhookEvent
from tests import factories
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}
# What of the payload would give it away anywhere it must not go.
SECRETS = ("Quillfeather", "2079460321", "1134960555", "Corn Exchange", "Found on the floor")


class Recording(httpx.AsyncBaseTransport):
    """Passes requests on, keeping each body: what spa told the service behind it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.bodies: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append((await request.aread()).decode())
        return await self.inner.handle_async_request(request)


def _record(stack: Stack, service: str) -> Recording:
    switchable = stack.transports[service]
    recording = Recording(switchable._transport)
    switchable._transport = recording  # type: ignore[assignment]
    return recording


def _payload(stack: Stack) -> dict[str, Any]:
    return factories.clinical((stack.clock() - timedelta(minutes=20)).isoformat())


async def _routed(stack: Stack) -> dict[str, Any]:
    """A GP's referral with a clinical payload, on PLMDT North 1's caseload."""
    body = factories.referral(needs=["ltc_management"], clinical=_payload(stack))
    async with stack.client("spa", "gp-system") as gp:
        made = await gp.post("/v1/referrals", json=body, headers=WAIT)
    assert made.status_code == 201, made.text
    referral: dict[str, Any] = made.json()
    assert referral["status"] == "routed", referral
    return referral


async def _read(stack: Stack, client_id: str, referral_id: str) -> httpx.Response:
    async with stack.client("spa", client_id) as spa:
        return await spa.get(f"/v1/referrals/{referral_id}")


async def _clinical_reads(stack: Stack, referral_id: str) -> list[str]:
    async with stack.apps["spa"].state.sessionmaker() as session:
        found = await session.scalars(
            select(AuditEvent.client_id)
            .where(
                AuditEvent.resource_id == referral_id,
                AuditEvent.action == "referral.clinical.read",
            )
            .order_by(AuditEvent.id)
        )
        return list(found)


async def test_the_referrer_and_the_holding_team_see_it_and_each_showing_is_audited(
    stack: Stack,
) -> None:
    referral = await _routed(stack)
    before = await _clinical_reads(stack, referral["id"])
    referrer = await _read(stack, "gp-system", referral["id"])
    holder = await _read(stack, "team-app", referral["id"])

    assert referral["clinical"]["clinician"]["name"] == "Robin Quillfeather"
    for read in (referrer, holder):
        assert read.status_code == 200, read.text
        clinical = read.json()["clinical"]
        assert clinical["clinician"]["call_back"] == "+442079460321"
        assert clinical["clinician"]["registration"] == {"regulator": "hcpc", "number": "PA123456"}
        assert clinical["patient_contact"]["phones"] == [{"number": "+441134960555", "use": "home"}]
        assert clinical["incident_location"]["address"]["postcode"] == "XW1 3ZZ"
        assert clinical["observations"][0]["score"] == 3
        assert clinical["snomed_codes"] == [{"code": "1912002", "display": "Fall"}]
    # The answer to the POST showed it to the referrer too: three showings, three records.
    assert before == ["gp-system"]
    assert await _clinical_reads(stack, referral["id"]) == ["gp-system", "gp-system", "team-app"]


async def test_another_team_and_another_referrer_do_not_see_it(stack: Stack) -> None:
    referral = await _routed(stack)

    assert (await _read(stack, "lit-north-app", referral["id"])).status_code == 404
    assert (await _read(stack, "other-gp-system", referral["id"])).status_code == 404
    assert await _clinical_reads(stack, referral["id"]) == ["gp-system"]


async def test_a_team_that_declined_the_case_sees_the_referral_without_it(stack: Stack) -> None:
    referral = await _routed(stack)
    care = next(a for a in referral["assignments"] if a["kind"] == "care")
    async with stack.client("teams", "team-app") as team:
        declined = await team.post(
            f"/v1/assignments/{care['assignment_id']}/decline", json={"reason": "wrong_team"}
        )
    assert declined.status_code == 200, declined.text

    async def declined_in_spa() -> dict[str, Any] | None:
        read = (await _read(stack, "gp-system", referral["id"])).json()
        statuses = {a["assignment_id"]: a["status"] for a in read["assignments"]}
        return read if statuses.get(care["assignment_id"]) == "declined" else None

    await stack.wait_for(declined_in_spa)
    seen_by_decliner = await _read(stack, "team-app", referral["id"])

    # Declined, the case waits for the locality's call handlers: no team holds it.
    assert seen_by_decliner.status_code == 200
    assert seen_by_decliner.json()["status"] == "declined"
    assert seen_by_decliner.json()["patient"]["family_name"] == "Testperson"
    assert seen_by_decliner.json()["clinical"] is None
    assert "Quillfeather" not in seen_by_decliner.text
    # The referrer's reads while it waited were showings; the decliner's read was none.
    assert set(await _clinical_reads(stack, referral["id"])) == {"gp-system"}


async def test_the_call_handlers_of_its_locality_see_it_and_others_do_not(stack: Stack) -> None:
    body = factories.referral(
        channel="county_contact",
        contact={"outcome": "contact_assessment_needed"},
        practice="M91001",
        clinical=_payload(stack),
    )
    async with stack.client("spa", "county-contact") as county:
        made = await county.post("/v1/referrals", json=body, headers=WAIT)
    assert made.json()["status"] == "awaiting_assessment", made.text
    referral_id = made.json()["id"]

    north = await _read(stack, "north-call-handlers", referral_id)
    county_wide = await _read(stack, "county-call-handlers", referral_id)
    south = await _read(stack, "south-call-handlers", referral_id)

    assert north.status_code == 200
    assert north.json()["clinical"]["summary"].startswith("Found on the floor")
    assert county_wide.json()["clinical"] is not None
    assert south.status_code == 404
    reads = await _clinical_reads(stack, referral_id)
    assert reads == ["county-contact", "north-call-handlers", "county-call-handlers"]


async def test_routing_and_teams_are_never_told_it(stack: Stack) -> None:
    routing, teams = _record(stack, "routing"), _record(stack, "teams")
    with_payload = await _routed(stack)
    without = factories.referral(needs=["ltc_management"])
    async with stack.client("spa", "gp-system") as gp:
        plain = (await gp.post("/v1/referrals", json=without, headers=WAIT)).json()

    told = "\n".join(routing.bodies + teams.bodies)
    assert with_payload["id"] in told
    for secret in SECRETS:
        assert secret not in told
    assert "clinical" not in told
    # What routing is asked is the same with a payload as without.
    decisions = [json.loads(b) for b in routing.bodies if '"referral_id"' in b]

    def keys(referral_id: str) -> set[str]:
        found = [json.dumps(d) for d in decisions if referral_id in json.dumps(d)]
        assert found, referral_id
        return set(json.loads(found[0]).keys())

    assert keys(with_payload["id"]) == keys(plain["id"])


async def test_no_timeline_event_or_webhook_event_carries_it(stack: Stack) -> None:
    referral = await _routed(stack)
    async with stack.client("spa", "gp-system") as gp:
        timeline = await gp.get(f"/v1/referrals/{referral['id']}/timeline")
    async with stack.apps["spa"].state.sessionmaker() as session:
        events = list(
            await session.scalars(
                select(WebhookEvent.data).where(WebhookEvent.referral_id == referral["id"])
            )
        )
    carried = timeline.text + json.dumps(events)
    assert events
    for secret in SECRETS:
        assert secret not in carried
