"""People's journeys through the console in a real browser, on cases that arrive through spa's
API as they do in production. Every page a journey sees is screenshotted and checked against
WCAG 2.2 AA (``look``); a page with a failed script or a missing file fails its test."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from tests.console.browsing import LiveConsole, Looker
from tests.console.cases import (
    NORTH_PRACTICE,
    SOUTH_PRACTICE,
    assessed_county_case,
    county_case,
    read_referral,
    referral_reaching,
    safeguarding_referral,
)
from tests.stack import DEMO_PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page


async def sign_in(page: Page, look: Looker, username: str) -> None:
    """The demo sign-in, as a person uses it: choose the account, enter the password."""
    await page.goto("/console")
    await page.wait_for_url("**/console/sign-in?next=/console")
    await look(page, "sign-in")
    await page.select_option("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("button:text-is('Sign in')")
    await page.wait_for_url("**/console")
    await page.wait_for_selector("h1:has-text('Hello')")
    await look(page, "home")


async def sign_out(page: Page, look: Looker) -> None:
    await page.click("button:text-is('Sign out')")
    await page.wait_for_url("**/console/sign-out")
    await look(page, "signed-out")


async def test_a_call_handler_claims_and_assesses_a_case_and_sees_it_routed(
    page: Page, console: LiveConsole, look: Looker
) -> None:
    case = await county_case(console.stack, urgency="urgent", practice=NORTH_PRACTICE)
    await sign_in(page, look, "north.handler")

    await page.click("a.nhsuk-header__navigation-link[href='/console/queue']")
    await page.wait_for_url("**/console/queue")
    opening = page.locator(f"a[href='/console/referrals/{case['id']}']")
    await opening.wait_for()
    await look(page, "queue")
    await opening.click()
    await page.wait_for_selector("text=Nobody holds it.")
    await look(page, "case")

    await page.click("button:text-is('Claim this case')")
    await page.wait_for_selector("text=You hold it until")
    await look(page, "case-claimed")
    await page.click("a:text-is('Assess')")
    await page.wait_for_url(f"**/console/referrals/{case['id']}/assessment")
    await look(page, "assessment")

    # The form starts from what the referrer sent; with no need left, it is sent back.
    await page.uncheck("#needs-mobility_assessment")
    await page.click("button:text-is('Submit the assessment')")
    await page.wait_for_selector(".nhsuk-error-summary")
    await look(page, "assessment-errors")
    await page.check("#urgency-crisis")
    await page.check("#needs-fall")
    await page.check("#needs-reduced_function")
    await page.fill("#note", "Fell twice today; lives alone.")
    await page.click("button:text-is('Submit the assessment')")
    await page.wait_for_url(f"**/console/referrals/{case['id']}")

    referral = await referral_reaching(console.stack, case["id"], "routed")
    await page.reload()
    team = page.locator("#routed-team")
    await team.wait_for()
    await look(page, "case-routed")
    assert referral["team"]["code"] == "lit-north"
    assert await team.inner_text() == referral["team"]["name"]
    assert await page.locator("#why-this-team li").count() > 0
    await page.goto("/console/queue")
    await page.wait_for_selector("text=No cases are waiting.")


async def test_a_handler_of_one_locality_cannot_see_another_localitys_case(
    page: Page, console: LiveConsole, look: Looker
) -> None:
    north = await county_case(console.stack, practice=NORTH_PRACTICE)
    south = await county_case(console.stack, practice=SOUTH_PRACTICE)
    await sign_in(page, look, "north.handler")

    await page.goto("/console/queue")
    await page.locator(f"a[href='/console/referrals/{north['id']}']").wait_for()
    await look(page, "queue")
    assert await page.locator(f"a[href='/console/referrals/{south['id']}']").count() == 0

    response = await page.goto(f"/console/referrals/{south['id']}")
    assert response is not None
    assert response.status == 404
    await look(page, "other-locality-case")
    body = await page.inner_text("main")
    assert south["patient"]["family_name"] not in body
    assert south["patient"]["nhs_number"] not in body.replace(" ", "")


async def test_a_team_member_cannot_open_another_teams_caseload_or_case(
    page: Page, console: LiveConsole, look: Looker
) -> None:
    south = await assessed_county_case(console.stack, practice=SOUTH_PRACTICE)
    assert south["team"]["code"] == "lit-south"
    await sign_in(page, look, "lit.north")

    caseload = await page.goto("/console/teams/lit-south")
    assert caseload is not None
    assert caseload.status == 404
    await look(page, "other-teams-caseload")
    case = await page.goto(f"/console/referrals/{south['id']}")
    assert case is not None
    assert case.status == 404
    await look(page, "other-teams-case")
    assert south["patient"]["family_name"] not in await page.inner_text("main")


async def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    page: Page, console: LiveConsole, look: Looker
) -> None:
    case = await county_case(console.stack, practice=NORTH_PRACTICE)
    await sign_in(page, look, "north.handler")
    await page.goto(f"/console/referrals/{case['id']}")
    await page.wait_for_selector("button:text-is('Claim this case')")
    await look(page, "case")

    # The same claim the page's button sends, with the person's session cookie but not the
    # page's token: what another site's page could make the browser send.
    forged = await page.request.post(
        f"/console/referrals/{case['id']}/claim", form={}, max_redirects=0
    )
    token = await page.locator("input[name='csrf_token']").first.get_attribute("value")
    wrong = await page.request.post(
        f"/console/referrals/{case['id']}/claim",
        form={"csrf_token": f"{token}x"},
        max_redirects=0,
    )

    assert forged.status == 403
    assert wrong.status == 403
    assert "text/html" in forged.headers["content-type"]
    assert re.search(r"not accepted|did not come from this console", await forged.text())
    await page.set_content(await forged.text())
    referral = await read_referral(console.stack, case["id"])
    assert referral["status"] == "awaiting_assessment"
    await page.reload()
    await page.wait_for_selector("text=Nobody holds it.")


async def test_a_team_accepts_a_case_records_first_contact_and_the_commissioner_counts_it(
    page: Page, console: LiveConsole, look: Looker
) -> None:
    case = await assessed_county_case(console.stack)
    assert case["team"]["code"] == "lit-north"
    await sign_in(page, look, "lit.north")

    await page.click("a.nhsuk-header__navigation-link[href='/console/teams']")
    await page.wait_for_url("**/console/teams")
    await look(page, "teams")
    await page.click("a[href='/console/teams/lit-north']")
    await page.wait_for_url("**/console/teams/lit-north")
    card = page.locator(
        ".nhsuk-card", has=page.locator(f"a[href='/console/referrals/{case['id']}']")
    )
    await card.locator("button:has-text('Accept')").wait_for()
    await look(page, "caseload")
    await card.locator("button:has-text('Accept')").click()
    record = card.locator("button:text-is('Record first contact')")
    await record.wait_for()
    await look(page, "caseload-accepted")
    await record.click()
    await card.locator("dt:text-is('First contact')").wait_for()
    await look(page, "caseload-first-contact")
    reached = await referral_reaching(console.stack, case["id"], "accepted")
    assert reached["assignments"][0]["first_contact_at"] is not None
    await sign_out(page, look)

    await sign_in(page, look, "commissioner")
    await page.goto("/console/commissioner")
    # The week of the stack's clock (Tuesday 24 November 2026).
    await page.fill("#period-from", "2026-11-23")
    await page.fill("#period-to", "2026-11-29")
    await page.click("button:text-is('Show this period')")
    await page.wait_for_url("**/console/commissioner?from=2026-11-23&to=2026-11-29")
    weekly = page.locator(
        "table", has=page.locator("caption:has-text('reached within two hours, by week')")
    )
    total = weekly.locator("tr", has=page.locator("th:text-is('All weeks')"))
    await total.wait_for()
    await look(page, "dashboard")
    assert (await total.locator("td").first.inner_text()).strip() == "1"
    chart = page.locator("svg#urgent-response-chart text")
    labels = [text.strip() for text in await chart.all_text_contents()]
    # The week's bar is labelled with its share, beside the axis's own 100%.
    assert "w/c 23 Nov" in labels
    assert labels.count("100%") == 2, labels


# Every page each demo person reaches from their menu.
TOURS = {
    "county.handler": ["/console/queue"],
    "cru.officer": ["/console/cru"],
    "north.coordinator": ["/console/escalations"],
    "lit.north": [
        "/console/teams",
        "/console/teams/plmdt-north-1",
        "/console/teams/plmdt-north-1/worklist",
        "/console/teams/lit-north/capacity",
    ],
    "commissioner": ["/console/commissioner"],
    "admin": [
        "/console/admin",
        "/console/admin/clients",
        "/console/admin/subscriptions",
        "/console/admin/rule-sets",
        "/console/admin/directory",
    ],
}


@pytest.mark.parametrize("username", sorted(TOURS))
async def test_every_page_a_person_reaches_is_accessible(
    page: Page, console: LiveConsole, look: Looker, username: str
) -> None:
    if username != "admin":
        # Something on the queue, the caseload and the dashboard rather than empty pages.
        await assessed_county_case(console.stack)
        await county_case(console.stack, practice=SOUTH_PRACTICE, urgency="crisis", needs=["fall"])
        await safeguarding_referral(console.stack)
    if username == "north.coordinator":
        # Most of the two-hour response gone: the north's crisis cases are at risk.
        console.stack.clock.now += timedelta(minutes=100)
    await sign_in(page, look, username)

    for path in TOURS[username]:
        response = await page.goto(path)
        assert response is not None
        assert response.status == 200, path
        await look(page, path.removeprefix("/console/").replace("/", "-"))
