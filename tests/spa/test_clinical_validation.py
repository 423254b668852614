"""The clinical payload is checked field by field: a bad value gets a 422 problem naming the
field and the rule (never the value), and nothing is stored; a good one is kept normalised."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from services.spa.referrals.clinical_schemas import News2Components, verhoeff_valid
from services.spa.referrals.models import Referral, ReferralClinical
from tests import factories
from tests.stack import MORNING, Stack

TAKEN = (MORNING - timedelta(minutes=30)).isoformat()


def _with(path: str, value: Any) -> dict[str, Any]:
    """A referral whose clinical payload has the dotted ``path`` set to ``value``."""
    clinical: dict[str, Any] = json.loads(json.dumps(factories.clinical(TAKEN)))
    *parents, last = path.split(".")
    target: Any = clinical
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = value
    return factories.referral(clinical=clinical)


BAD_FIELDS = [
    ("clinician.call_back", "020 7946 032", "UK telephone"),
    ("clinician.call_back", "+33 1 23 45 67 89", "UK telephone"),
    ("clinician.call_back", "999", "UK telephone"),
    ("clinician.name", "", "at least 1"),
    ("clinician.registration", {"regulator": "gmc", "number": "123456"}, "7 digits"),
    ("clinician.registration", {"regulator": "nmc", "number": "12345678"}, "NMC PIN"),
    ("clinician.registration", {"regulator": "hcpc", "number": "ZZ123456"}, "HCPC"),
    ("clinician.registration", {"regulator": "gphc", "number": "20123"}, "GPhC"),
    ("clinician.registration", {"regulator": "swe", "number": "123456"}, "Social Work England"),
    ("clinician.registration", {"regulator": "gdc", "number": "123456"}, "gmc"),
    ("patient_contact.phones", [{"number": "01632 96000"}], "UK telephone"),
    ("patient_contact.address", {"lines": [], "town": "Wealdmoor"}, "a line or a postcode"),
    ("patient_contact.address", {"lines": ["1 Row"], "postcode": "NOTACODE"}, "postcode"),
    ("patient_contact.communication", {"interpreter_language": "Polish!"}, "pattern"),
    ("patient_contact.communication", {"adjustments": ["telepathy"]}, "hearing_loop"),
    ("incident_location", {}, "an address or a description"),
    (
        "incident_location",
        {"address": {"lines": ["1 fictional row"], "postcode": "XW1 2ZZ"}},
        "not the home",
    ),
    ("summary", "s" * 8001, "8000"),
    ("snomed_codes", [{"code": "1912003"}], "Verhoeff"),
    ("snomed_codes", [{"code": "01912002"}], "not starting with 0"),
    ("snomed_codes", [{"code": "12345"}], "at least 6"),
    # A description id (partition 01): not a concept.
    ("snomed_codes", [{"code": "1234011"}], "partition"),
    ("observations", [{"kind": "news2", "score": 21, "taken_at": TAKEN}], "20"),
    (
        "observations",
        [{"kind": "news2", "score": 3, "taken_at": "2026-11-24T09:00:00"}],
        "timezone",
    ),
    ("observations", [{"kind": "sofa", "score": 3, "taken_at": TAKEN}], "news2"),
    (
        "observations",
        [
            {
                "kind": "news2",
                "score": 2,
                "taken_at": TAKEN,
                "components": {
                    "respiration_rate": 22,
                    "oxygen_saturation": 93,
                    "supplemental_oxygen": False,
                    "systolic_bp": 105,
                    "pulse": 115,
                    "consciousness": "alert",
                    "temperature": 38.5,
                },
            }
        ],
        "add up",
    ),
    ("unexpected", "surprise-value", "not permitted"),
]


@pytest.mark.parametrize(
    ("path", "value", "reason_fragment"), BAD_FIELDS, ids=[f"{p}:{r}" for p, _, r in BAD_FIELDS]
)
async def test_an_invalid_clinical_field_is_refused_with_a_problem_naming_it(
    stack: Stack, path: str, value: Any, reason_fragment: str
) -> None:
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=_with(path, value))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:spa-platform:problem:validation-failed"
    fields = {error["field"]: error["reason"] for error in problem["errors"]}
    full = f"clinical.{path}"
    named = [field for field in fields if field == full or field.startswith(full + ".")]
    assert named, f"{full} not named in {list(fields)}"
    assert any(reason_fragment.lower() in fields[field].lower() for field in named), fields
    for secret in (json.dumps(value), "Quillfeather", "7946"):
        if len(secret) > 5:
            assert secret not in response.text
    assert await stack.count_rows("spa", Referral) == 0


@pytest.mark.parametrize(
    ("ahead", "accepted"), [(timedelta(minutes=1), True), (timedelta(minutes=5), False)]
)
async def test_an_observation_from_the_future_is_refused_beyond_the_clock_skew(
    stack: Stack, ahead: timedelta, accepted: bool
) -> None:
    taken_at = (stack.clock() + ahead).isoformat()
    body = factories.referral(clinical=factories.clinical(taken_at))
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=body)

    if accepted:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors == [
        {
            "in": "body",
            "field": "clinical.observations.0.taken_at",
            "reason": "an observation cannot be taken in the future",
        }
    ]
    assert await stack.count_rows("spa", ReferralClinical) == 0


async def test_a_valid_payload_is_kept_normalised(stack: Stack) -> None:
    clinical = factories.clinical(TAKEN)
    clinical["clinician"]["registration"] = {"regulator": "nmc", "number": "12a 3456e"}
    clinical["observations"][0]["components"] = {
        "respiration_rate": 22,
        "oxygen_saturation": 93,
        "supplemental_oxygen": False,
        "systolic_bp": 105,
        "pulse": 115,
        "consciousness": "alert",
        "temperature": 38.5,
    }
    clinical["observations"][0]["score"] = 8
    async with stack.client("spa", "gp-system") as spa:
        response = await spa.post("/v1/referrals", json=factories.referral(clinical=clinical))

    assert response.status_code == 201, response.text
    kept = response.json()["clinical"]
    assert kept["clinician"]["registration"] == {"regulator": "nmc", "number": "12A3456E"}
    assert kept["clinician"]["call_back"] == "+442079460321"
    assert kept["observations"][0]["score"] == 8
    assert await stack.count_rows("spa", ReferralClinical) == 1


async def test_a_referral_without_a_payload_reads_without_one(stack: Stack) -> None:
    async with stack.client("spa", "gp-system") as spa:
        made = await spa.post("/v1/referrals", json=factories.referral())
        read = await spa.get(f"/v1/referrals/{made.json()['id']}")

    assert read.json()["clinical"] is None
    assert await stack.count_rows("spa", ReferralClinical) == 0


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("1912002", True),  # Fall (event)
        ("1104051000000101", True),  # NEWS2 total score, UK extension namespace
        ("29857009", True),
        ("29857008", False),
        ("1104051000000102", False),
    ],
)
def test_the_verhoeff_check(code: str, valid: bool) -> None:
    assert verhoeff_valid(code) is valid


@pytest.mark.parametrize(
    ("components", "score"),
    [
        # All normal: 0.
        ({"respiration_rate": 16, "oxygen_saturation": 97, "supplemental_oxygen": False,
          "systolic_bp": 125, "pulse": 72, "consciousness": "alert", "temperature": 37.0}, 0),
        # Every parameter at its worst: 20.
        ({"respiration_rate": 30, "oxygen_saturation": 85, "supplemental_oxygen": True,
          "systolic_bp": 85, "pulse": 140, "consciousness": "unresponsive", "temperature": 34.5}, 20),
        # Scale 2 on oxygen at 95%: 2 for saturation, 2 for the oxygen.
        ({"respiration_rate": 16, "spo2_scale": 2, "oxygen_saturation": 95, "supplemental_oxygen": True,
          "systolic_bp": 125, "pulse": 72, "consciousness": "alert", "temperature": 37.0}, 4),
        # Scale 2 on air at 95%: no score for saturation.
        ({"respiration_rate": 16, "spo2_scale": 2, "oxygen_saturation": 95, "supplemental_oxygen": False,
          "systolic_bp": 125, "pulse": 72, "consciousness": "alert", "temperature": 37.0}, 0),
        # A part missing: no total to check against.
        ({"respiration_rate": 16, "pulse": 72}, None),
    ],
)  # fmt: skip
def test_news2_adds_up_by_the_royal_college_of_physicians_chart(
    components: dict[str, Any], score: int | None
) -> None:
    assert News2Components.model_validate(components).total() == score
