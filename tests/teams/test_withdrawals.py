"""Taking a case back from a team's caseload is for spa alone, and bad requests are refused."""

from __future__ import annotations

from tests import factories
from tests.e2e.test_caseload_lifecycle import care_assignment, routed_referral
from tests.stack import Stack

MISSING = "00000000-0000-4000-8000-000000000000"


async def test_bad_withdrawals_are_refused_with_problems(stack: Stack) -> None:
    referral = await routed_referral(stack)
    assignment = care_assignment(referral)
    async with stack.client("teams", "spa-service") as spa:
        bad_reason = await spa.post(
            f"/v1/assignments/{assignment}/withdrawal", json={"reason": "Not A Code!"}
        )
        unknown = await spa.post(f"/v1/assignments/{MISSING}/withdrawal", json={"reason": "x"})
        bad_referral = await spa.post(
            "/v1/assignments/withdrawals", json={"referral_id": "nope", "reason": "other"}
        )
        withdrawn = await spa.post(
            f"/v1/assignments/{assignment}/withdrawal", json={"reason": "acceptance_window_lapsed"}
        )
        again = await spa.post(
            f"/v1/assignments/{assignment}/withdrawal", json={"reason": "acceptance_window_lapsed"}
        )
    async with stack.client("teams", "team-app") as team:
        not_spa = await team.post(f"/v1/assignments/{assignment}/withdrawal", json={"reason": "x"})

    for response, status in (
        (bad_reason, 422),
        (unknown, 404),
        (bad_referral, 422),
        (not_spa, 403),
    ):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert withdrawn.json()["status"] == again.json()["status"] == "withdrawn"


async def test_an_accepted_case_is_not_taken_back(stack: Stack) -> None:
    referral = await routed_referral(stack)
    assignment = care_assignment(referral)
    planned = stack.clock().isoformat()
    async with stack.client("teams", "team-app") as team:
        await team.post(
            f"/v1/assignments/{assignment}/accept", json={"planned_first_contact_at": planned}
        )
    async with stack.client("teams", "spa-service") as spa:
        refused = await spa.post(
            f"/v1/assignments/{assignment}/withdrawal", json={"reason": "acceptance_window_lapsed"}
        )

    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:spa-platform:problem:assignment-state-conflict"


async def test_bad_queue_requests_are_refused_with_problems(stack: Stack) -> None:
    body = factories.referral(
        channel="county_contact", contact={"outcome": "contact_assessment_needed"}
    )
    async with stack.client("spa", "county-contact") as county:
        referral = (
            await county.post("/v1/referrals", json=body, headers={"Prefer": "wait=10"})
        ).json()
    async with stack.client("spa", "north-call-handlers") as handlers:
        responses = [
            await handlers.post(
                f"/v1/queue/{referral['id']}/claim", json={"handler": "a name with spaces"}
            ),
            await handlers.post(f"/v1/queue/{referral['id']}/claim", json={}),
            await handlers.get("/v1/queue", params={"locality": "no/slashes"}),
            await handlers.get("/v1/queue/escalations", params={"limit": 0}),
            await handlers.post(
                f"/v1/queue/{referral['id']}/assessment",
                json={"claim_id": MISSING, "urgency": "soon", "needs": ["fall"]},
            ),
        ]

    for response in responses:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "a name with spaces" not in response.text
