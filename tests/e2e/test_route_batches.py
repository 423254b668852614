"""spa's routing worker routes the new referrals of a claimed batch together: one decision
request to routing and one assignment request to teams for the batch, with the same outcome
for each case as when it is routed alone; a case the batch cannot finish is routed alone, and a
batch whose call fails is done one job at a time, each case still assigned exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.spa.referrals.models import OutboxJob, ReferralAssignment, ReferralTimer
from tests import factories
from tests.stack import Stack

SAFEGUARDING = {
    "concern": True,
    "categories": ["financial"],
    "adult_aware": True,
    "adult_consents": True,
}


class Calls:
    """The requests a service's in-process transport was sent, by path (and lost answers)."""

    def __init__(
        self,
        stack: Stack,
        service: str,
        lose_answer_to: str | None = None,
        before_answering: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.paths: list[str] = []
        self.items: list[int] = []
        self._lose_answer_to = lose_answer_to
        # Run once, after the service acted on its first batch and before it answers.
        self._before_answering = before_answering
        transport = stack.transports[service]
        self._handle = transport.handle_async_request
        transport.handle_async_request = self._record  # type: ignore[method-assign]

    async def _record(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/batch"):
            self.items.append(len(httpx.Response(200, content=request.content).json()["items"]))
        response = await self._handle(request)
        if self._before_answering is not None and request.url.path.endswith("/batch"):
            act, self._before_answering = self._before_answering, None
            await act()
        if request.url.path == self._lose_answer_to:
            self._lose_answer_to = None
            await response.aclose()
            raise httpx.ReadTimeout("the answer did not arrive in time", request=request)
        return response

    def count(self, path: str) -> int:
        return self.paths.count(path)


async def _paused(stack: Stack) -> None:
    """Stop the background worker, so the test decides when the jobs run (as one batch)."""
    stack.worker.stop()
    await stack.worker.stopped()


async def _post(
    stack: Stack, client_id: str, body: dict[str, Any], request_id: str | None = None
) -> str:
    headers = {"X-Request-Id": request_id} if request_id else {}
    async with stack.client("spa", client_id) as spa:
        response = await spa.post("/v1/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _timers(stack: Stack) -> dict[str, list[str]]:
    """Each referral's timers by kind, sorted."""
    async with stack.apps["spa"].state.sessionmaker() as session:
        rows = await session.execute(select(ReferralTimer.referral_id, ReferralTimer.kind))
    found: dict[str, list[str]] = {}
    for referral_id, kind in rows:
        found.setdefault(str(referral_id), []).append(kind)
    return {referral_id: sorted(kinds) for referral_id, kinds in found.items()}


async def _drain(stack: Stack) -> None:
    for _ in range(10):
        if not await stack.worker.run_once():
            return
    raise AssertionError("the outbox did not drain")


async def _referral(stack: Stack, referral_id: str, client_id: str = "gp-system") -> dict[str, Any]:
    """The referral as the client that made it (or a call handler) sees it, with the types of
    the events on its timeline."""
    async with stack.client("spa", client_id) as spa:
        response = await spa.get(f"/v1/referrals/{referral_id}")
        assert response.status_code == 200, response.text
        timeline = await spa.get(f"/v1/referrals/{referral_id}/timeline")
        assert timeline.status_code == 200, timeline.text
    body: dict[str, Any] = response.json()
    body["event_types"] = [event["event_type"] for event in timeline.json()["events"]]
    body["event_request_ids"] = {
        event["event_type"]: event["request_id"] for event in timeline.json()["events"]
    }
    return body


async def _caseload_ids(stack: Stack, team_code: str) -> list[str]:
    async with stack.client("teams", "team-app") as teams:
        caseload = (await teams.get(f"/v1/teams/{team_code}/caseload")).json()
    return [item["referral_id"] for item in caseload["items"]]


async def test_a_batch_of_new_referrals_is_routed_with_one_call_to_each_service(
    stack: Stack,
) -> None:
    await _paused(stack)
    routing, teams = Calls(stack, "routing"), Calls(stack, "teams")
    request_ids = [uuid.uuid4().hex for _ in range(4)]
    gp = [
        await _post(
            stack,
            "gp-system",
            factories.referral(needs=["ltc_management"], practice=practice),
            request_id,
        )
        for practice, request_id in zip(("M91004", "M91004", "M92004"), request_ids, strict=False)
    ]
    crisis = await _post(
        stack,
        "ambulance-cad",
        factories.referral(
            channel="ambulance", urgency="crisis", needs=["fall"], safeguarding=SAFEGUARDING
        ),
        request_ids[3],
    )

    assert await stack.worker.run_once()

    assert routing.count("/v1/decisions/batch") == 1
    assert routing.items == [4]
    assert teams.count("/v1/assignments/batch") == 1
    # Three care teams and, for the crisis, the CRU too.
    assert teams.items == [5]
    routed = {referral_id: await _referral(stack, referral_id) for referral_id in gp}
    routed[crisis] = await _referral(stack, crisis, "ambulance-cad")
    assert {referral["status"] for referral in routed.values()} == {"routed"}
    assert [routed[referral_id]["team"]["code"] for referral_id in gp] == [
        "plmdt-north-2",
        "plmdt-north-2",
        "int-east-2",
    ]
    assert routed[crisis]["team"]["code"] == "lit-north"
    assert routed[crisis]["routing"]["pathway"] == "rapid_response"
    for referral_id, referral in routed.items():
        assert await _caseload_ids(stack, referral["team"]["code"]) == [
            other
            for other in [*gp, crisis]
            if routed[other]["team"]["id"] == referral["team"]["id"]
        ]
        events = referral["event_types"]
        assert events.count("triaged") == 1, referral_id
        assert events.count("routed") == 1, referral_id
    assert "safeguarding_escalated" in routed[crisis]["event_types"]
    # Each case's events carry the request that made it, as when it is routed alone.
    for referral_id, request_id in zip([*gp, crisis], request_ids, strict=True):
        recorded = routed[referral_id]["event_request_ids"]
        assert recorded["triaged"] == recorded["routed"] == request_id
    assert routed[crisis]["event_request_ids"]["safeguarding_escalated"] == request_ids[3]
    # Each case: its care assignment, the crisis's CRU assignment too; and their clocks: the
    # team's acceptance window, the response clock (at risk, breach), the CRU's acknowledgement.
    assert await stack.count_rows("spa", ReferralAssignment) == 5
    clocks = ["acceptance_window", "at_risk", "breach"]
    assert await _timers(stack) == {
        **dict.fromkeys(gp, clocks),
        crisis: sorted([*clocks, "safeguarding_ack"]),
    }
    assert not await stack.worker.run_once()


async def test_a_case_the_batch_cannot_finish_is_routed_alone_and_the_rest_together(
    stack: Stack,
) -> None:
    await _paused(stack)
    routing = Calls(stack, "routing")
    plain = await _post(stack, "gp-system", factories.referral(needs=["ltc_management"]))
    # A child: the rules hold the case for a call handler (a step the batch leaves alone).
    child = await _post(stack, "gp-system", factories.referral(born=date(2019, 6, 1)))
    # Nowhere the directory knows: no team and no locality, so the county's handlers.
    nowhere = await _post(
        stack, "gp-system", factories.referral(practice=None, postcode="ZZ99 9ZZ")
    )

    await _drain(stack)

    assert routing.items[0] == 3
    assert (await _referral(stack, plain))["status"] == "routed"
    held = await _referral(stack, child, "county-call-handlers")
    assert held["status"] == "awaiting_assessment"
    assert held["queue_reason"] == "under_18"
    unplaced = await _referral(stack, nowhere, "county-call-handlers")
    assert unplaced["status"] == "awaiting_assessment"
    assert unplaced["queue_reason"] == "no_locality"
    for referral in (held, unplaced):
        events = referral["event_types"]
        assert events.count("awaiting_assessment") == 1, events


@pytest.mark.parametrize("lost", ["/v1/decisions/batch", "/v1/assignments/batch"])
async def test_a_batch_whose_answer_is_lost_is_done_one_job_at_a_time_exactly_once(
    stack: Stack, lost: str
) -> None:
    """The service acted but its answer never came back: each job is then done alone, and the
    repeat finds what the lost call made, so every case is triaged and assigned once."""
    await _paused(stack)
    Calls(stack, "routing" if "decisions" in lost else "teams", lose_answer_to=lost)
    ids = [
        await _post(stack, "gp-system", factories.referral(needs=["ltc_management"], practice=p))
        for p in ("M91004", "M92004", "M91001")
    ]

    await _drain(stack)

    for referral_id in ids:
        referral = await _referral(stack, referral_id)
        assert referral["status"] == "routed"
        events = referral["event_types"]
        assert events.count("triaged") == 1
        assert events.count("routed") == 1
        assert await _caseload_ids(stack, referral["team"]["code"]) == [referral_id]
    assert await stack.count_rows("spa", ReferralAssignment) == 3
    assert await stack.count_rows("spa", OutboxJob) == 3


async def test_a_case_cancelled_while_teams_assigns_the_batch_is_withdrawn_from_its_team(
    stack: Stack,
) -> None:
    """The referrer cancels while teams is making the batch's assignments: the assignment is
    still recorded (a case a team holds is never unknown to spa), and the cancellation takes it
    back from the team, on the timeline; the rest of the batch is routed."""
    await _paused(stack)
    kept, cancelled = [
        await _post(stack, "gp-system", factories.referral(needs=["ltc_management"], practice=p))
        for p in ("M91004", "M92004")
    ]

    async def cancel() -> None:
        async with stack.client("spa", "gp-system") as spa:
            response = await spa.post(
                f"/v1/referrals/{cancelled}/cancellation", json={"reason": "patient_admitted"}
            )
        assert response.status_code == 200, response.text

    Calls(stack, "teams", before_answering=cancel)

    await _drain(stack)

    assert (await _referral(stack, kept))["status"] == "routed"
    gone = await _referral(stack, cancelled)
    assert gone["status"] == "cancelled"
    assert [(a["kind"], a["status"]) for a in gone["assignments"]] == [("care", "withdrawn")]
    assert gone["event_types"][-1] == "assignment_withdrawn"
    async with stack.client("teams", "team-app") as teams:
        caseload = await teams.get(f"/v1/teams/{gone['assignments'][0]['team']['code']}/caseload")
    assert [(item["referral_id"], item["status"]) for item in caseload.json()["items"]] == [
        (cancelled, "withdrawn")
    ]
