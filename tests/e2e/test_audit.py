"""The audit trail: every access to patient data in each service, refusals included; sealed
into a hash chain that shows an edited, deleted or inserted record; readable with audit:read."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update

from services.routing import cli as routing_cli
from services.routing.audit import AuditEvent as RoutingAudit
from services.shared import audit
from services.spa.audit import AuditEvent, AuditHead
from services.teams.audit import AuditEvent as TeamsAudit
from tests import factories
from tests.e2e.test_flow import post_and_wait_routed
from tests.stack import Stack


def _last_line(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The command's report: the last line it printed (log lines come before it)."""
    report: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return report


async def _sealed(stack: Stack, service: str) -> None:
    await stack.apps[service].state.audit_sealer.seal_now()


async def _verify(stack: Stack, model: type[Any] = AuditEvent) -> audit.Verification:
    head = AuditHead if model is AuditEvent else model.metadata.tables["audit_head"]
    async with stack.apps["spa"].state.sessionmaker() as session:
        return await audit.verify(session, model, head)


async def _spa_records(stack: Stack) -> list[AuditEvent]:
    async with stack.apps["spa"].state.sessionmaker() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def _three_records(stack: Stack) -> str:
    referral_id = await _three_accesses(stack)
    await _sealed(stack, "spa")
    return referral_id


async def _three_accesses(stack: Stack) -> str:
    """Create, read and read the timeline of a referral: at least three audit records."""
    async with stack.client("spa", "gp-system") as gp:
        referral_id = str((await gp.post("/v1/referrals", json=factories.referral())).json()["id"])
        await gp.get(f"/v1/referrals/{referral_id}")
        await gp.get(f"/v1/referrals/{referral_id}/timeline")
    return referral_id


async def test_the_chain_is_intact_until_a_record_is_edited(any_stack: Stack) -> None:
    await _three_records(any_stack)
    before = await _verify(any_stack)
    records = await _spa_records(any_stack)
    async with any_stack.apps["spa"].state.sessionmaker() as session, session.begin():
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.seq == 2)
            .values(client_id="someone-else")
            .execution_options(synchronize_session=False)
        )
    after = await _verify(any_stack)

    assert before.intact
    assert before.checked == len(records) >= 3
    assert [record.seq for record in records] == list(range(1, len(records) + 1))
    assert records[0].prev_hash == audit.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(records))
    assert not after.intact
    assert (after.broken_at, after.reason) == (2, "the record was changed")


async def test_a_deleted_or_forged_record_breaks_the_chain(any_stack: Stack) -> None:
    stack = any_stack
    await _three_records(stack)
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        await session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    deleted = await _verify(stack)
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        # A forger who recomputes the removed record's hash still cannot mend the link after.
        forged = AuditEvent(
            client_id="gp-system", action="referral.read", resource_type="referral",
            resource_id="x", outcome="allowed", purpose=audit.DIRECT_CARE,
            at=(await _spa_records(stack))[0].at, seq=2, prev_hash=None,
        )  # fmt: skip
        first = (await _spa_records(stack))[0]
        forged.prev_hash = first.hash
        forged.hash = audit.digest(forged, 2, first.hash or "")
        session.add(forged)
    mended = await _verify(stack)

    assert (deleted.broken_at, deleted.reason) == (2, "a record is missing")
    assert (mended.broken_at, mended.reason) == (3, "the link to the record before is broken")


async def test_the_command_verifies_the_chain_and_fails_on_a_change(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    await _three_records(stack)
    url = stack.apps["spa"].state.settings.database_url
    intact = await audit.verify_database(url, AuditEvent, AuditHead, stack.clock)
    intact_report = _last_line(capsys)
    async with stack.apps["spa"].state.engine.begin() as connection:
        await connection.execute(text("UPDATE audit_events SET outcome = 'refused' WHERE seq = 1"))
    broken = await audit.verify_database(url, AuditEvent, AuditHead, stack.clock)
    broken_report = _last_line(capsys)

    assert intact == 0
    assert intact_report["intact"] is True
    assert intact_report["checked"] >= 3
    assert broken == 1
    assert broken_report["broken_at"] == 1


async def test_every_service_audits_access_to_a_case_including_refusals(
    any_stack: Stack,
) -> None:
    stack = any_stack
    referral = await post_and_wait_routed(stack, factories.referral(needs=["fall"]))
    team_code = referral["team"]["code"]
    async with stack.client("teams", "team-app") as team:
        caseload = (await team.get(f"/v1/teams/{team_code}/caseload")).json()
    assignment_id = next(
        item["id"] for item in caseload["items"] if item["referral_id"] == referral["id"]
    )
    async with stack.client("teams", "lit-north-app") as other_team:
        # Another team's case is answered exactly as one that does not exist.
        refused = await other_team.post(f"/v1/assignments/{assignment_id}/decline", json={
            "reason": "capacity_full"})  # fmt: skip
        missing = await other_team.post(f"/v1/assignments/{uuid.uuid4()}/decline", json={
            "reason": "capacity_full"})  # fmt: skip
    async with stack.client("routing", "team-app") as routing:
        decision = await routing.get(f"/v1/decisions/{referral['routing']['decision_id']}")

    async with stack.apps["teams"].state.sessionmaker() as session:
        teams_rows = list(await session.scalars(select(TeamsAudit)))
    async with stack.apps["routing"].state.sessionmaker() as session:
        routing_rows = list(await session.scalars(select(RoutingAudit)))

    assert refused.status_code == missing.status_code == 404
    assert refused.json()["title"] == missing.json()["title"]
    assert decision.status_code == 200
    teams_actions = {(row.client_id, row.action, row.outcome) for row in teams_rows}
    assert ("spa-service", "assignment.create", "allowed") in teams_actions
    assert ("team-app", "caseload.read", "allowed") in teams_actions
    assert ("lit-north-app", "assignment.decline", "denied") in teams_actions
    routing_actions = {(row.client_id, row.action) for row in routing_rows}
    assert routing_actions >= {("spa-service", "decision.create"), ("team-app", "decision.read")}
    # Ids we minted only: nothing that names the person.
    for row in [*teams_rows, *routing_rows]:
        assert uuid.UUID(row.resource_id)


async def test_the_trail_is_read_with_audit_read_and_reading_it_is_audited(stack: Stack) -> None:
    referral_id = await _three_records(stack)
    async with stack.client("spa", "ig-auditor") as auditor:
        page = await auditor.get("/v1/audit", params={"resource_id": referral_id, "limit": 2})
        rest = await auditor.get(
            "/v1/audit", params={"resource_id": referral_id, "cursor": page.json()["next_cursor"]}
        )
        bad = await auditor.get("/v1/audit", params={"from": "yesterday"})
    async with stack.client("spa", "gp-system") as gp:
        denied = await gp.get("/v1/audit")
    async with stack.client("teams", "ig-auditor") as auditor:
        teams_page = await auditor.get("/v1/audit")

    assert page.status_code == 200
    items = page.json()["items"] + rest.json()["items"]
    assert [item["action"] for item in items][:1] == ["referral.create"]
    care = [item for item in items if item["client_id"] == "gp-system"]
    assert len(care) == 3
    assert all(item["purpose"] == "direct_care" for item in care)
    # The auditor's first look at this referral's trail is itself on it, by the second page.
    assert [(item["client_id"], item["action"], item["purpose"]) for item in items[3:]] == [
        ("ig-auditor", "audit.read", "audit")
    ]
    assert rest.json()["next_cursor"] is None
    assert bad.status_code == 422
    assert denied.status_code == 403
    assert teams_page.status_code == 200
    records = await _spa_records(stack)
    assert any(r.action == "audit.read" and r.client_id == "ig-auditor" for r in records)


async def test_a_record_numbered_outside_the_chain_is_a_break(stack: Stack) -> None:
    await _three_records(stack)
    first = (await _spa_records(stack))[0]
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        stray = audit.entry(
            AuditEvent, client_id="gp-system", action="referral.read", resource_type="referral",
            resource_id=uuid.uuid4(),
        )  # fmt: skip
        stray.seq, stray.prev_hash, stray.hash = 0, audit.GENESIS, first.hash
        session.add(stray)
    result = await _verify(stack)

    assert not result.intact
    assert (result.broken_at, result.reason) == (0, "a record is numbered outside the chain")


async def test_records_sealed_during_a_walk_do_not_break_it(stack: Stack) -> None:
    """The walk stops at the head it read first; records sealed meanwhile wait for the next."""
    await _three_records(stack)
    sessionmaker = stack.apps["spa"].state.sessionmaker
    async with sessionmaker() as reader:
        head = await reader.get(AuditHead, 1)
        assert head is not None
        async with stack.client("spa", "gp-system") as gp:
            await gp.post("/v1/referrals", json=factories.referral())
        await _sealed(stack, "spa")
        result = await audit.verify(reader, AuditEvent, AuditHead)

    assert result.intact
    assert result.checked == result.head_seq


def _logged(capsys: pytest.CaptureFixture[str], event: str) -> list[dict[str, Any]]:
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [record for record in records if record.get("event") == event]


async def _forge_past_the_head(stack: Stack) -> int:
    """A record inserted with the number the next sealed record would take, its link and hash
    computed as the sealer would: the seq it holds."""
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        head = await session.get(AuditHead, 1)
        assert head is not None
        forged = audit.entry(
            AuditEvent, client_id="gp-system", action="referral.read", resource_type="referral",
            resource_id=uuid.uuid4(),
        )  # fmt: skip
        forged.at = stack.clock()
        forged.seq, forged.prev_hash = head.seq + 1, head.hash
        forged.hash = audit.digest(forged, forged.seq, head.hash)
        session.add(forged)
    return int(forged.seq)


async def test_a_record_forged_past_the_head_is_a_break_and_the_sealer_stops_there(
    any_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = any_stack
    await _three_records(stack)
    forged_seq = await _forge_past_the_head(stack)
    detected = await _verify(stack)
    # Later access is recorded but waits unsealed: the sealer would reuse the forged number.
    await _three_accesses(stack)
    await asyncio.sleep(2.5)  # the sealer's turns, one a second
    reported = _logged(capsys, "audit_chain_broken")
    failures = _logged(capsys, "audit_seal_failed")
    url = stack.apps["spa"].state.settings.database_url
    status = await audit.verify_database(url, AuditEvent, AuditHead, stack.clock)
    verdict = _last_line(capsys)

    assert (detected.broken_at, detected.reason) == (forged_seq, audit.PAST_THE_HEAD)
    assert [(line["broken_at"], line["reason"]) for line in reported] == [
        (forged_seq, audit.PAST_THE_HEAD)
    ]
    assert failures == []
    assert stack.apps["spa"].state.audit_sealer.broken.at == forged_seq
    assert status == 1
    assert (verdict["intact"], verdict["broken_at"]) == (False, forged_seq)
    assert verdict["reason"] == audit.PAST_THE_HEAD
    assert verdict["unsealed"] >= 3


async def test_sealing_resumes_once_the_forged_record_is_removed(stack: Stack) -> None:
    await _three_records(stack)
    forged_seq = await _forge_past_the_head(stack)
    sealer = stack.apps["spa"].state.audit_sealer
    with pytest.raises(audit.ChainBroken):
        await sealer.seal_now()
    async with stack.apps["spa"].state.sessionmaker() as session, session.begin():
        await session.execute(delete(AuditEvent).where(AuditEvent.seq == forged_seq))
    await sealer.seal_now()
    result = await _verify(stack)

    assert result.intact
    assert result.unsealed == 0


async def test_numbers_swapped_between_two_records_break_the_chain(any_stack: Stack) -> None:
    stack = any_stack
    await _three_records(stack)
    async with stack.apps["spa"].state.engine.begin() as connection:
        for old, new in ((2, -2), (3, 2), (-2, 3)):
            await connection.execute(
                text("UPDATE audit_events SET seq = :new WHERE seq = :old"),
                {"old": old, "new": new},
            )
    result = await _verify(stack)

    assert (result.broken_at, result.reason) == (2, "the link to the record before is broken")


async def test_the_command_gives_a_verdict_when_the_trail_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTING_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere")

    status = await asyncio.to_thread(routing_cli.main, ["audit-verify"])
    verdict = _last_line(capsys)

    assert status == 2
    assert verdict["intact"] is None
    assert verdict["error"] == "the audit trail could not be read"


async def test_a_refused_access_to_a_referral_is_audited_though_the_request_fails(
    stack: Stack,
) -> None:
    async with stack.client("spa", "gp-system") as gp:
        referral = (await gp.post("/v1/referrals", json=factories.referral())).json()
    async with stack.client("spa", "other-gp-system") as other:
        read = await other.get(f"/v1/referrals/{referral['id']}")
        cancel = await other.post(
            f"/v1/referrals/{referral['id']}/cancellation", json={"reason": "other"}
        )

    async with stack.apps["spa"].state.sessionmaker() as session:
        rows = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.resource_id == referral["id"])
            )
        )

    assert read.status_code == cancel.status_code == 404
    outcomes = {(row.client_id, row.action, row.outcome) for row in rows}
    assert ("other-gp-system", "referral.cancel", "denied") in outcomes
    assert ("other-gp-system", "referral.read", "denied") in outcomes
    assert ("gp-system", "referral.create", "allowed") in outcomes
