"""A malformed or invalid referral gets a 422 problem naming the field, never echoing patient
data, and nothing is stored."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from services.spa.referrals.models import Referral
from tests import factories
from tests.stack import MORNING, Stack


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set to ``value`` (or removed for ...)."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return copy


BAD_FIELDS = [
    ("patient.nhs_number", factories.invalid_nhs_number(), "Modulus 11"),
    ("patient.nhs_number", "12345", "10"),
    ("patient.date_of_birth", (MORNING.date() + timedelta(days=3)).isoformat(), "future"),
    ("patient.date_of_birth", "14/03/1941", "date"),
    ("patient.date_of_birth", ..., "required"),
    ("patient.postcode", "NOTACODE", "postcode"),
    ("patient.postcode", "XW1 2ZZ TOO LONG", "at most"),
    ("patient.registered_practice", "K8-1003!", "ODS"),
    ("patient.nhs_number_verification", "01x", "01"),
    ("channel", "carrier_pigeon", "nhs111"),
    ("urgency", "whenever", "crisis"),
    ("needs", ["fall", "time_travel"], "fall"),
    ("red_flags", ["dragon_bite"], "chest_pain"),
    ("consent", {"basis": "safeguarding_override"}, "override_reason"),
    ("reason", "x" * 4001, "4000"),
    ("patient.given_name", "y" * 101, "100"),
    ("unexpected", "surprise-value", "not permitted"),
    ("nhs111", {"dx_code": "Dx05"}, "only given on the nhs111 channel"),
    ("contact", {"outcome": "contact_assessment_needed"}, "only given on the county channels"),
    ("safeguarding", {"concern": True, "categories": ["gossip"]}, "physical"),
    ("safeguarding", {"concern": False, "categories": ["neglect"]}, "concern is false"),
    ("risk", {"clinical_frailty_scale": 10}, "9"),
    ("referrer", {"reference": "has spaces in it"}, "pattern"),
    ("needs", ["fall"] * 33, "32"),
    ("safeguarding", {"concern": True, "immediate_actions": "z" * 1001}, "1000"),
]


@pytest.mark.parametrize(
    ("path", "value", "reason_fragment"), BAD_FIELDS, ids=[f"{p}:{r}" for p, _, r in BAD_FIELDS]
)
async def test_invalid_field_is_refused_with_a_problem_naming_it(
    stack: Stack, path: str, value: Any, reason_fragment: str
) -> None:
    body = _with(factories.referral(), path, value)
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:spa-platform:problem:validation-failed"
    fields = {error["field"]: error["reason"] for error in problem["errors"]}
    named = [field for field in fields if field == path or field.startswith(path + ".")]
    assert named, f"{path} not named in {list(fields)}"
    assert any(reason_fragment.lower() in fields[field].lower() for field in named)
    # The submitted value is never echoed back.
    if isinstance(value, str) and len(value) > 3:
        assert value not in response.text
    assert await stack.count_rows("spa", Referral) == 0


COUNTY_BAD_FIELDS = [
    ("contact", ..., "required on the county channels"),
    ("contact", {"outcome": "advice_given"}, "advice"),
    ("contact", {"outcome": "signposted_elsewhere"}, "advice_given"),
    ("contact.advice", {"topics": []}, "at least 1"),
    ("contact.advice", {"topics": ["astrology"]}, "self_care"),
    ("nhs111", {"dx_code": "Dx05"}, "only given on the nhs111 channel"),
]


@pytest.mark.parametrize(
    ("path", "value", "reason_fragment"),
    COUNTY_BAD_FIELDS,
    ids=[f"{p}:{r}" for p, _, r in COUNTY_BAD_FIELDS],
)
async def test_invalid_county_contact_is_refused_with_a_problem_naming_it(
    stack: Stack, path: str, value: Any, reason_fragment: str
) -> None:
    advice = {"topics": ["community_services"], "note": "Told of the lunch club."}
    body = factories.referral(channel="self", contact={"outcome": "advice_given", "advice": advice})
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=_with(body, path, value))

    assert response.status_code == 422
    fields = {error["field"]: error["reason"] for error in response.json()["errors"]}
    named = [field for field in fields if field == path or field.startswith(path + ".")]
    assert named, f"{path} not named in {list(fields)}"
    assert any(reason_fragment.lower() in fields[field].lower() for field in named)
    assert await stack.count_rows("spa", Referral) == 0


@pytest.mark.parametrize(
    ("path", "value", "reason_fragment"),
    [
        ("nhs111", {"dx_code": "DX-05"}, "pattern"),
        ("nhs111", {"dos_service_id": "abc"}, "pattern"),
    ],
)
async def test_invalid_nhs111_details_are_refused(
    stack: Stack, path: str, value: Any, reason_fragment: str
) -> None:
    body = factories.referral(channel="nhs111", nhs111={"dx_code": "Dx05"})
    async with stack.client("spa", "nhs111-system") as spa:
        response = await spa.post("/v1/referrals", json=_with(body, path, value))

    assert response.status_code == 422
    fields = {error["field"]: error["reason"] for error in response.json()["errors"]}
    assert any(f.startswith(path) and reason_fragment in r.lower() for f, r in fields.items())


async def test_advice_alone_cannot_close_a_contact_with_red_flags(stack: Stack) -> None:
    advice = {"outcome": "advice_given", "advice": {"topics": ["self_care"]}}
    body = factories.referral(channel="carer", red_flags=["chest_pain"], contact=advice)
    async with stack.client("spa", "county-contact") as spa:
        response = await spa.post("/v1/referrals", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "contact"
    assert "red flags" in response.json()["errors"][0]["reason"]


async def test_patient_identifiers_are_not_echoed_in_any_error(stack: Stack) -> None:
    body = factories.referral()
    body["patient"]["postcode"] = "QQ QQQ QQ"
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=body)

    assert response.status_code == 422
    for value in (body["patient"]["nhs_number"], "Testperson", "1941-03-14", "QQ QQQ QQ"):
        assert value not in response.text


async def test_referral_needs_a_need_or_a_red_flag(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=factories.referral(needs=[]))

    assert response.status_code == 422
    assert "at least one need, red flag or unmapped code" in response.json()["errors"][0]["reason"]


async def test_safeguarding_without_consent_needs_a_reason(stack: Stack) -> None:
    safeguarding = {"concern": True, "adult_consents": False, "categories": ["neglect"]}
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            "/v1/referrals", json=factories.referral(safeguarding=safeguarding)
        )

    assert response.status_code == 422
    assert "proceed_without_consent_reason" in response.text


async def test_number_status_must_fit_whether_a_number_is_given(stack: Stack) -> None:
    body = factories.referral()
    body["patient"]["nhs_number"] = None
    body["patient"]["nhs_number_verification"] = "01"
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "patient"


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"{not json", 422), (b"", 422), (b"[]", 422), (b'"a string"', 422), (b"\xff\xfe", 400)],
    ids=["broken", "empty", "array", "string", "not-utf8"],
)
async def test_malformed_body_is_a_problem_not_a_crash(
    stack: Stack, content: bytes, status: int
) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post(
            "/v1/referrals", content=content, headers={"content-type": "application/json"}
        )

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert await stack.count_rows("spa", Referral) == 0


async def test_missing_nhs_number_is_accepted_with_a_verification_status(stack: Stack) -> None:
    body = factories.referral()
    body["patient"]["nhs_number"] = None
    body["patient"]["nhs_number_verification"] = "04"
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=body)

    assert response.status_code == 201
    assert response.json()["patient"]["nhs_number"] is None
    assert response.json()["patient"]["nhs_number_verification"] == "04"


@pytest.mark.parametrize("postcode", ["ZZ99 3VZ", "xw1 2zz", "XW12ZZ"])
async def test_pseudo_and_unspaced_postcodes_are_accepted(stack: Stack, postcode: str) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=factories.referral(postcode=postcode))

    assert response.status_code == 201
    assert response.json()["patient"]["postcode"] in ("ZZ99 3VZ", "XW1 2ZZ")
