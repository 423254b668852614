"""Response clocks on a clock the test controls: a lapsed acceptance window or a decline sends
the case to the next team; at-risk and breach fire once, on one replica, across a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from services.shared.calendar import add_working_days
from services.shared.http import ServiceClient
from services.shared.outbox import OutboxWorker, RetryLater
from services.spa.main import create_app as create_spa
from services.spa.referrals.clients import TeamsClient
from services.spa.referrals.clock_keeper import ClockKeeper, timer_jobs
from services.spa.referrals.clocks import ClockPolicy
from services.spa.referrals.models import ReferralEvent, ReferralTimer
from tests import factories
from tests.e2e.test_caseload_lifecycle import care_assignment, timeline, wait_for_status
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}


# A practice whose team has a backup open at the same hours (int-east-1, then int-east-2), for
# the tests of a case moving on; in the north at 10:00 the out-of-hours service is closed, so a
# case lit-north lets go has no team left and goes to the call handlers.
EAST_PRACTICE = "M92001"


async def _crisis(stack: Stack, **overrides: Any) -> dict[str, Any]:
    """A crisis fall: rapid response, lit-north, two-hour target, 15-minute acceptance window."""
    body = factories.referral(urgency="crisis", needs=["fall"], **overrides)
    async with stack.client("spa", "gp-system") as gp:
        referral: dict[str, Any] = (await gp.post("/v1/referrals", json=body, headers=WAIT)).json()
    assert referral["status"] == "routed", referral
    return referral


async def _tick(stack: Stack, by: timedelta) -> None:
    """Move the clock on and let the timers that are now due fire."""
    stack.clock.now += by
    await stack.apps["spa"].state.timers.run_once()


async def _team(stack: Stack, path: str, body: dict[str, Any]) -> Any:
    async with stack.client("teams", "team-app") as team:
        return await team.post(path, json=body)


async def _accept(stack: Stack, referral: dict[str, Any]) -> str:
    assignment = care_assignment(referral)
    planned = (stack.clock() + timedelta(minutes=45)).isoformat()
    accepted = await _team(
        stack, f"/v1/assignments/{assignment}/accept", {"planned_first_contact_at": planned}
    )
    assert accepted.status_code == 200, accepted.text
    await wait_for_status(stack, referral["id"], "accepted")
    return assignment


async def _events(stack: Stack, referral_id: str, event_type: str) -> list[dict[str, Any]]:
    return [e for e in await timeline(stack, referral_id) if e["event_type"] == event_type]


async def _caseload_status(stack: Stack, team_code: str, referral_id: str) -> str:
    async with stack.client("teams", "team-app") as team:
        items = (await team.get(f"/v1/teams/{team_code}/caseload")).json()["items"]
    return str(next(item["status"] for item in items if item["referral_id"] == referral_id))


async def test_a_lapsed_acceptance_window_sends_the_case_to_the_next_team(stack: Stack) -> None:
    referral = await _crisis(stack, practice=EAST_PRACTICE)
    first_team = referral["team"]

    await _tick(stack, timedelta(minutes=14))
    still = await wait_for_status(stack, referral["id"], "routed")
    await _tick(stack, timedelta(minutes=2))
    moved = await wait_for_status(stack, referral["id"], "rerouted")

    assert still["team"]["code"] == "int-east-1"
    assert moved["team"]["code"] not in ("int-east-1", None)
    by_team = {a["team"]["code"]: a["status"] for a in moved["assignments"]}
    assert by_team["int-east-1"] == "withdrawn"
    # The first team is told: the case is withdrawn from its caseload.
    assert await _caseload_status(stack, first_team["code"], referral["id"]) == "withdrawn"
    rerouted = (await _events(stack, referral["id"], "rerouted"))[0]
    assert rerouted["detail"]["reason"] == "acceptance_window_lapsed"
    # The next team's own window is running.
    next_team = moved["team"]
    async with stack.apps["spa"].state.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(ReferralTimer)
            .where(ReferralTimer.kind == "acceptance_window", ReferralTimer.status == "pending")
        )
    assert pending == 1
    assert next_team["id"] != first_team["id"]


async def _at(stack: Stack, moment: datetime) -> None:
    """Set the clock to ``moment`` and let the timers that are now due fire."""
    stack.clock.now = moment
    await stack.apps["spa"].state.timers.run_once()


async def test_a_routine_case_given_on_friday_evening_waits_for_monday(stack: Stack) -> None:
    stack.clock.now = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)  # Friday, the PLMDT has closed
    async with stack.client("spa", "gp-system") as gp:
        body = factories.referral()  # a routine mobility assessment, practice M91001
        referral = (await gp.post("/v1/referrals", json=body, headers=WAIT)).json()
    assert referral["status"] == "routed", referral
    assert referral["team"]["code"] == "plmdt-north-1"  # open 08:30-17:00 on weekdays

    await _at(stack, datetime(2026, 11, 29, 12, 0, tzinfo=UTC))  # Sunday noon
    sunday = await _read(stack, referral["id"])
    # Monday's eight service hours end at 16:30.
    await _at(stack, datetime(2026, 11, 30, 16, 20, tzinfo=UTC))
    monday_afternoon = await _read(stack, referral["id"])
    await _at(stack, datetime(2026, 11, 30, 16, 40, tzinfo=UTC))
    moved = await wait_for_status(stack, referral["id"], "rerouted")

    assert (sunday["status"], sunday["team"]["code"]) == ("routed", "plmdt-north-1")
    assert (monday_afternoon["status"], monday_afternoon["team"]["code"]) == (
        "routed",
        "plmdt-north-1",
    )
    assert moved["team"]["code"] == "lit-north"
    rerouted = (await _events(stack, referral["id"], "rerouted"))[0]
    assert rerouted["detail"]["reason"] == "acceptance_window_lapsed"


async def test_crisis_work_given_just_before_closing_keeps_its_short_window(
    stack: Stack,
) -> None:
    stack.clock.now = datetime(2026, 11, 24, 19, 50, tzinfo=UTC)  # lit-north closes at 20:00
    referral = await _crisis(stack)
    assert referral["team"]["code"] == "lit-north"

    await _tick(stack, timedelta(minutes=16))
    moved = await wait_for_status(stack, referral["id"], "rerouted")

    assert moved["team"]["code"] == "ooh-county"


async def test_a_decline_sends_the_case_on_at_once(stack: Stack) -> None:
    referral = await _crisis(stack, practice=EAST_PRACTICE)
    declined = await _team(
        stack,
        f"/v1/assignments/{care_assignment(referral)}/decline",
        {"reason": "capacity_full"},
    )
    await wait_for_status(stack, referral["id"], "declined")
    await _tick(stack, timedelta(seconds=1))
    moved = await wait_for_status(stack, referral["id"], "rerouted")

    assert declined.status_code == 200
    assert moved["team"]["code"] != "int-east-1"
    rerouted = (await _events(stack, referral["id"], "rerouted"))[0]
    assert rerouted["detail"]["reason"] == "declined"


async def test_an_acceptance_that_beats_the_window_keeps_the_case(stack: Stack) -> None:
    referral = await _crisis(stack)
    # The team accepts, but spa is unreachable, so spa has not heard when the window lapses.
    stack.transports["spa"].down = True
    planned = (stack.clock() + timedelta(minutes=45)).isoformat()
    accepted = await _team(
        stack,
        f"/v1/assignments/{care_assignment(referral)}/accept",
        {"planned_first_contact_at": planned},
    )
    await _tick(stack, timedelta(minutes=16))
    stack.transports["spa"].down = False
    # Past the reporter's backoff, however many tries it made while spa was down (the jump
    # above can lapse the lease of a try in flight, and a second claim adds a try).
    stack.clock.now += timedelta(minutes=6)
    final = await wait_for_status(stack, referral["id"], "accepted")

    assert accepted.status_code == 200
    assert final["team"]["code"] == "lit-north"
    assert await _events(stack, referral["id"], "rerouted") == []


async def test_at_risk_and_breach_fire_once_and_the_breach_is_escalated(stack: Stack) -> None:
    referral = await _crisis(stack)
    await _accept(stack, referral)

    await _tick(stack, timedelta(minutes=89))
    assert await _events(stack, referral["id"], "sla_at_risk") == []
    await _tick(stack, timedelta(minutes=2))
    await _tick(stack, timedelta(minutes=1))
    at_risk = await _events(stack, referral["id"], "sla_at_risk")
    await _tick(stack, timedelta(minutes=30))
    await _tick(stack, timedelta(minutes=30))
    breached = await _events(stack, referral["id"], "sla_breached")
    async with stack.client("spa", "north-call-handlers") as coordinator:
        escalations = (await coordinator.get("/v1/queue/escalations")).json()["items"]
    async with stack.client("spa", "south-call-handlers") as elsewhere:
        not_theirs = (await elsewhere.get("/v1/queue/escalations")).json()["items"]

    assert len(at_risk) == 1
    assert len(breached) == 1
    assert breached[0]["detail"] == {"clock": "response", "locality_code": "north"}
    assert [item["referral_id"] for item in escalations] == [referral["id"]]
    assert escalations[0]["queue_reason"] == "deadline_passed"
    assert not_theirs == []


async def test_first_contact_stops_the_response_clock(stack: Stack) -> None:
    referral = await _crisis(stack)
    assignment = await _accept(stack, referral)
    stack.clock.now += timedelta(minutes=40)
    contact = await _team(
        stack, f"/v1/assignments/{assignment}/first-contact", {"at": stack.clock().isoformat()}
    )
    await stack.wait_for(
        lambda: _first_contact_recorded(stack, referral["id"]),
    )
    await _tick(stack, timedelta(hours=3))

    assert contact.status_code == 200
    assert await _events(stack, referral["id"], "sla_at_risk") == []
    assert await _events(stack, referral["id"], "sla_breached") == []


async def _first_contact_recorded(stack: Stack, referral_id: str) -> bool:
    return bool(await _events(stack, referral_id, "team_first_contact"))


async def test_two_timer_workers_fire_each_timer_once(any_stack: Stack) -> None:
    referrals = [await _crisis(any_stack) for _ in range(4)]
    for referral in referrals:
        await _accept(any_stack, referral)
    app = any_stack.apps["spa"]
    app.state.timers.stop()
    await app.state.timers.stopped()
    replicas = [
        OutboxWorker(
            app.state.sessionmaker,
            ReferralTimer,
            timer_jobs(
                app.state.sessionmaker,
                ClockKeeper(
                    TeamsClient(
                        ServiceClient(app.state.http, app.state.settings.teams_url, "teams")
                    ),
                    app.state.clock_policy,
                    any_stack.clock,
                ),
            ),
            service="spa",
            clock=any_stack.clock,
        )
        for _ in range(2)
    ]
    any_stack.clock.now += timedelta(minutes=95)
    await asyncio.gather(*(replica.run_once() for replica in replicas))
    await asyncio.gather(*(replica.run_once() for replica in replicas))

    async with app.state.sessionmaker() as session:
        fired = await session.scalar(
            select(func.count())
            .select_from(ReferralEvent)
            .where(ReferralEvent.event_type == "sla_at_risk")
        )
    assert fired == len(referrals)


async def test_a_restart_mid_window_still_fires(stack: Stack) -> None:
    referral = await _crisis(stack, practice=EAST_PRACTICE)
    old = stack.apps["spa"]
    old.state.timers.stop()
    await old.state.timers.stopped()
    stack.clock.now += timedelta(minutes=20)
    # A new spa process: nothing of the first one's memory, only the database.
    fresh = create_spa(old.state.settings, mounts=stack.mounts, clock=stack.clock)
    async with LifespanManager(fresh):
        await fresh.state.timers.run_once()
        moved = await wait_for_status(stack, referral["id"], "rerouted")
        fresh.state.worker.stop()
        fresh.state.timers.stop()

    assert moved["team"]["code"] != "int-east-1"


async def test_an_unacknowledged_safeguarding_concern_is_escalated_after_a_working_day(
    stack: Stack,
) -> None:
    concern = {"concern": True, "categories": ["neglect"], "adult_consents": True}
    referral = await _crisis(stack, safeguarding=concern)
    await _accept(stack, referral)

    await _tick(stack, timedelta(hours=23, minutes=50))
    before = await _events(stack, referral["id"], "sla_breached")
    await _tick(stack, timedelta(minutes=20))
    breached = await _events(stack, referral["id"], "sla_breached")

    assert [e["detail"]["clock"] for e in before] == ["response"]
    assert [e["detail"]["clock"] for e in breached] == ["response", "safeguarding_acknowledgement"]


def test_working_days_skip_weekends_and_englands_bank_holidays() -> None:
    christmas_eve = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
    # Christmas is a Friday; Boxing Day falls on Saturday, so Monday 28th is its substitute.
    assert add_working_days(christmas_eve, 1) == datetime(2026, 12, 29, 10, 0, tzinfo=UTC)
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert add_working_days(friday, 1) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    # Across the change to summer time the local hour is kept.
    before_bst = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
    assert add_working_days(before_bst, 1) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_the_clock_policy_is_data() -> None:
    policy = ClockPolicy.model_validate(
        {"acceptance_windows": {"rapid_response": "PT10M"}, "at_risk_fraction": 0.5}
    )
    assert policy.acceptance_window("rapid_response") == timedelta(minutes=10)
    assert policy.acceptance_window("equipment") is None


async def test_a_change_the_assignment_cannot_take_is_refused_and_moves_no_clock(
    stack: Stack,
) -> None:
    referral = await _crisis(stack, practice=EAST_PRACTICE)
    assignment = care_assignment(referral)
    team_id = referral["team"]["id"]
    base = {"assignment_id": assignment, "team_id": team_id, "kind": "care"}
    at = stack.clock().isoformat()

    async def pending_timers() -> list[str]:
        async with stack.apps["spa"].state.sessionmaker() as session:
            return list(
                await session.scalars(
                    select(ReferralTimer.kind).where(ReferralTimer.status == "pending")
                )
            )

    before = await pending_timers()
    async with stack.client("spa", "teams-service") as teams:
        contact_first = await teams.post(
            f"/v1/referrals/{referral['id']}/assignment-updates",
            json={**base, "change": "first_contact", "at": at, "seq": 1},
        )
        gap = await teams.post(
            f"/v1/referrals/{referral['id']}/assignment-updates",
            json={**base, "change": "accepted", "at": at, "seq": 2},
        )
    await _tick(stack, timedelta(minutes=16))  # the window lapses: the case moves on
    await wait_for_status(stack, referral["id"], "rerouted")
    after_reroute = await pending_timers()
    async with stack.client("spa", "teams-service") as teams:
        late_accept = await teams.post(
            f"/v1/referrals/{referral['id']}/assignment-updates",
            json={**base, "change": "accepted", "at": at, "seq": 1},
        )

    assert contact_first.status_code == 422
    assert contact_first.json()["type"] == (
        "urn:spa-platform:problem:assignment-change-not-applicable"
    )
    assert gap.status_code == 409
    assert sorted(before) == ["acceptance_window", "at_risk", "breach"]
    assert late_accept.status_code == 422
    assert await pending_timers() == after_reroute
    final = await wait_for_status(stack, referral["id"], "rerouted")
    assert final["team"]["code"] != "int-east-1"


async def test_response_times_report_counts_shares_and_percentiles(stack: Stack) -> None:
    start = stack.clock()
    made = [await _crisis(stack) for _ in range(3)]
    for referral in made:
        await _accept(stack, referral)
    # Seen at 90 minutes, at 150 minutes, and not at all by the time the report is read.
    for referral, minutes in ((made[0], 90), (made[1], 150)):
        at = (start + timedelta(minutes=minutes)).isoformat()
        stack.clock.now = start + timedelta(minutes=minutes)
        response = await _team(
            stack, f"/v1/assignments/{care_assignment(referral)}/first-contact", {"at": at}
        )
        assert response.status_code == 200, response.text
        await stack.wait_for(partial(_first_contact_recorded, stack, referral["id"]))
    stack.clock.now = start + timedelta(hours=3)
    query = {
        "from": (start - timedelta(hours=1)).isoformat(),
        "to": (start + timedelta(days=1)).isoformat(),
        "pathway": "rapid_response",
    }
    async with stack.client("spa", "county-reports") as reports:
        summary = await reports.get("/v1/reports/response-times", params=query)
        csv_text = await reports.get(
            "/v1/reports/response-times", params={**query, "format": "csv"}
        )
        backwards = await reports.get(
            "/v1/reports/response-times", params={**query, "to": query["from"]}
        )
    async with stack.client("spa", "gp-system") as gp:
        refused = await gp.get("/v1/reports/response-times", params=query)

    assert summary.status_code == 200, summary.text
    report = summary.json()
    assert report["referrals"] == 3
    assert report["accepted"] == 3
    assert report["first_contacts"] == 2
    assert (report["outcome_known"], report["within_target"]) == (3, 1)
    assert report["share_within_target"] == round(1 / 3, 4)
    assert report["ucr_target_share"] == 0.7
    # Measured from each referral's receipt, a moment after ``start`` on the running clock.
    assert report["time_to_first_contact"]["median_seconds"] == pytest.approx(120 * 60, abs=60)
    assert report["time_to_acceptance"]["count"] == 3
    lines = csv_text.text.strip().splitlines()
    assert lines[0].startswith("referral_id,channel,pathway")
    assert len(lines) == 4
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert "Testperson" not in csv_text.text
    assert backwards.status_code == 422
    assert refused.status_code == 403


async def _read(stack: Stack, referral_id: str) -> dict[str, Any]:
    async with stack.client("spa", "gp-system") as gp:
        read: dict[str, Any] = (await gp.get(f"/v1/referrals/{referral_id}")).json()
    return read


def _failing_once(stack: Stack, name: str, before: Any = None) -> dict[str, int]:
    """Make the clock keeper's next call to teams' ``name`` fail once (a network blip, or
    ``before`` run first), then reach the real service again."""
    teams = stack.apps["spa"].state.clock_keeper._teams
    real = getattr(teams, name)
    calls = {"count": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        if calls["count"] == 1:
            if before is None:
                raise RetryLater("teams")
            await before()
        return await real(*args, **kwargs)

    setattr(teams, name, flaky)
    return calls


async def test_a_reroute_cut_short_by_a_failure_is_finished_on_retry(stack: Stack) -> None:
    referral = await _crisis(stack, practice=EAST_PRACTICE)
    calls = _failing_once(stack, "resolve_pathway")
    await _tick(stack, timedelta(minutes=16))
    await _tick(stack, timedelta(minutes=10))  # past the backoff: the retry
    moved = await wait_for_status(stack, referral["id"], "rerouted")

    assert calls["count"] == 2
    assert moved["team"]["code"] != "int-east-1"
    assert {a["team"]["code"]: a["status"] for a in moved["assignments"]}["int-east-1"] == (
        "withdrawn"
    )


async def test_a_cancellation_during_a_reroute_leaves_no_team_holding_the_case(
    stack: Stack,
) -> None:
    referral = await _crisis(stack, practice=EAST_PRACTICE)

    async def cancel() -> None:
        async with stack.client("spa", "gp-system") as gp:
            await gp.post(
                f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "patient_admitted"}
            )
        await stack.worker.run_once()

    _failing_once(stack, "resolve_pathway", before=cancel)
    await _tick(stack, timedelta(minutes=16))
    final = await wait_for_status(stack, referral["id"], "cancelled")

    care = [a for a in final["assignments"] if a["kind"] == "care"]
    assert len(care) == 2
    assert {a["status"] for a in care} == {"withdrawn"}
    for assignment in care:
        status = await _caseload_status(stack, assignment["team"]["code"], referral["id"])
        assert status == "withdrawn"


async def test_when_every_team_lets_the_case_go_the_clock_still_breaches(stack: Stack) -> None:
    referral = await _crisis(stack)
    for _ in range(6):
        await _tick(stack, timedelta(minutes=16))
    fallen = await _read(stack, referral["id"])
    for _ in range(2):
        await _tick(stack, timedelta(minutes=30))
    events = [e["event_type"] for e in await timeline(stack, referral["id"])]

    assert fallen["status"] == "awaiting_assessment"
    assert events.count("sla_at_risk") == 1
    assert events.count("sla_breached") == 1


async def test_an_assessed_case_is_not_sent_back_to_a_team_that_let_it_go(stack: Stack) -> None:
    referral = await _crisis(stack)
    for _ in range(6):
        await _tick(stack, timedelta(minutes=16))
    fallen = await _read(stack, referral["id"])
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim = (
            await handlers.post(f"/v1/queue/{referral['id']}/claim", json={"handler": "h-1"})
        ).json()
        await handlers.post(
            f"/v1/queue/{referral['id']}/assessment",
            json={"claim_id": claim["claim_id"], "urgency": "crisis", "needs": ["fall"]},
        )

        async def back_in_queue() -> list[Any] | None:
            items = (await handlers.get("/v1/queue")).json()["items"]
            return items or None

        queue = await stack.wait_for(back_in_queue)
    final = await _read(stack, referral["id"])
    events = [e["event_type"] for e in await timeline(stack, referral["id"])]

    # Every team that could take it has let it go: it comes back to the handlers, rather
    # than to a team that no longer holds it.
    assert fallen["status"] == "awaiting_assessment"
    assert final["status"] == "awaiting_assessment"
    assert final["team"] is None
    assert queue[0]["queue_reason"] == "no_team"
    assert {a["status"] for a in final["assignments"]} == {"withdrawn"}
    assert events.count("routed") == 1


async def test_the_cru_acknowledgement_runs_from_when_the_concern_reached_it(
    stack: Stack,
) -> None:
    from tests.spa.test_queue import _claim, _queued

    referral = await _queued(stack)
    stack.clock.now += timedelta(days=1, hours=2)  # a handler transfers it on Wednesday
    transferred = stack.clock()
    concern = {"concern": True, "categories": ["neglect"], "adult_consents": True}
    async with stack.client("spa", "north-call-handlers") as handlers:
        claim_id = await _claim(handlers, referral["id"])
        await handlers.post(
            f"/v1/queue/{referral['id']}/cru-transfer",
            json={"claim_id": claim_id, "safeguarding": concern},
        )
    async with stack.apps["spa"].state.sessionmaker() as session:

        async def scheduled() -> datetime | None:
            due: datetime | None = await session.scalar(
                select(ReferralTimer.due_at).where(ReferralTimer.kind == "safeguarding_ack")
            )
            await session.commit()
            return due

        due = await stack.wait_for(scheduled)

    assert add_working_days(transferred, 1) <= due <= add_working_days(stack.clock(), 1)
