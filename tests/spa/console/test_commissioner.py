"""The commissioner's dashboard in the console: the charts with their tables for a period, the
CSV downloads, a wrong period answered beside the form, and no one else let in."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from services.spa.audit import AuditEvent
from tests import factories
from tests.spa.console.helpers import signed_in
from tests.stack import Stack

WAIT = {"Prefer": "wait=10"}


async def _routed_crisis(stack: Stack) -> None:
    body = factories.referral(urgency="crisis", needs=["fall"])
    async with stack.client("spa", "gp-engine") as spa:
        response = await spa.post("/v1/referrals", json=body, headers=WAIT)
    assert response.json()["routing"]["pathway"] == "rapid_response", response.text


async def test_the_commissioner_sees_each_chart_beside_its_table(stack: Stack) -> None:
    await _routed_crisis(stack)
    browser = await signed_in(stack, "commissioner")

    page = await browser.get("/console/commissioner")

    assert page.status_code == 200, page.text
    assert page.text.count('role="img"') == 4
    assert "National standard 70%" in page.text
    assert page.text.count('<caption class="nhsuk-table__caption">') == 5
    assert "/console/commissioner/urgent-response.csv?from=" in page.text
    assert "GP practice" in page.text
    async with stack.apps["spa"].state.sessionmaker() as session:
        audited = list(
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.client_id == "person:commissioner",
                    AuditEvent.resource_type == "report",
                )
            )
        )
    assert audited == ["console.commissioner"]


async def test_each_table_downloads_as_csv(stack: Stack) -> None:
    await _routed_crisis(stack)
    browser = await signed_in(stack, "commissioner")

    download = await browser.get("/console/commissioner/channels.csv?from=2026-11-01&to=2026-11-30")

    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == (
        'attachment; filename="channels_2026-11-01_2026-11-30.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows == [{"channel": "gp", "pathway": "rapid_response", "referrals": "1"}]
    for chart in ("urgent-response", "reablement", "response-times"):
        answer = await browser.get(f"/console/commissioner/{chart}.csv")
        assert answer.status_code == 200
        assert answer.text.splitlines()[0].count(",") >= 2
    missing = await browser.get("/console/commissioner/patients.csv")
    assert missing.status_code == 404


async def test_a_wrong_period_is_shown_beside_the_form(stack: Stack) -> None:
    browser = await signed_in(stack, "commissioner")

    not_a_date = await browser.get("/console/commissioner?from=2026-13-01&to=2026-11-30")
    backwards = await browser.get("/console/commissioner?from=2026-11-30&to=2026-11-01")
    too_long = await browser.get("/console/commissioner?from=2024-01-01&to=2026-11-30")

    assert not_a_date.status_code == 422
    assert "There is a problem" in not_a_date.text
    assert 'href="#period-from"' in not_a_date.text
    assert 'value="2026-13-01"' in not_a_date.text
    assert 'href="#period-to"' in backwards.text
    assert "at most 366 days" in too_long.text
    assert 'role="img"' not in not_a_date.text


async def test_a_team_member_may_not_see_the_dashboard(stack: Stack) -> None:
    browser = await signed_in(stack, "lit.north")

    page = await browser.get("/console/commissioner")
    download = await browser.get("/console/commissioner/channels.csv")

    assert page.status_code == 403
    assert download.status_code == 403
    assert "text/csv" not in download.headers["content-type"]
