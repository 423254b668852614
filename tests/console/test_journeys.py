"""People's journeys through the console in a real browser, on cases that arrive through spa's
API as they do in production. Every page a journey sees is screenshotted and checked against
WCAG 2.2 AA (``look``); a page with a failed script or a missing file fails its test."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.console.browsing import LiveConsole, Looker
from tests.console.cases import NORTH_PRACTICE, SOUTH_PRACTICE, county_case, read_referral
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


async def routed(console: LiveConsole, referral_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any] | None:
        referral = await read_referral(console.stack, referral_id)
        return referral if referral["status"] == "routed" else None

    result: dict[str, Any] = await console.stack.wait_for(read, within=10)
    return result


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

    referral = await routed(console, case["id"])
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
