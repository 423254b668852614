"""The scan that guards the logs finds what it must, so a clean result means something."""

from __future__ import annotations

import json

import pytest

from tests import factories
from tests.log_scan import findings

CLEAN = {
    "event": "request_completed",
    "path": "/v1/referrals/{referral_id}",
    "status": 201,
    "request_id": "0f4c2a7d9b1e4f6a8c3d5e7f9a1b3c5d",
    "timestamp": "2026-11-23T03:54:46.971652Z",
    "referral_id": "776149d4-21c7-4794-ac20-03bbf2dfdb1d",
    "duration_ms": 12.5,
}


def test_a_clean_line_is_clean() -> None:
    assert findings(json.dumps(CLEAN)) == []


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("nhs_number", factories.nhs_number(), "nhs_number"),
        ("detail", f"patient {factories.nhs_number()[:3]} {factories.nhs_number()[3:6]}", None),
        ("who", "Ada Testperson", "name:Testperson"),
        ("born", "1941-03-14", "date"),
        ("where", "XW1 2ZZ", "postcode"),
        ("note", "Fictional test referral.", "free_text:Fictional test referral"),
        ("call_back", "+442079460321", "phone"),
        ("phone", "0113 496 0555", "phone"),
        ("clinician", "Robin Quillfeather", "name:Quillfeather"),
        ("summary", "Found on the floor by a neighbour", "free_text:Found on the floor"),
        ("registration", "PA123456", "free_text:PA123456"),
    ],
)
def test_each_kind_of_identifier_is_found(field: str, value: str, kind: str | None) -> None:
    found = findings(json.dumps({**CLEAN, field: value}))
    if kind is None:
        assert "nhs_number" not in found  # nine digits are not an NHS number
    else:
        assert kind in found


def test_a_spaced_nhs_number_and_a_plain_text_line_are_found() -> None:
    number = factories.nhs_number()
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    assert "nhs_number" in findings(json.dumps({**CLEAN, "error": spaced}))
    assert "nhs_number" in findings(f"Traceback: value {number} rejected")


def test_digits_inside_an_id_are_not_an_nhs_number() -> None:
    # "2039612467" passes the Modulus 11 check, but here it is part of a UUID's last group.
    line = '{"referral_id": "79a629aa-a5d9-4435-86b0-2039612467aa", "event": "referral_job_done"}'

    assert findings(line) == []
    assert findings('{"referral_id": "x", "note": "2039612467"}') == ["nhs_number"]


def test_numbers_of_ours_are_not_telephone_numbers() -> None:
    line = json.dumps({**CLEAN, "duration_ms": 0.0123456789, "seq": 12345678901, "port": 8080})
    assert "phone" not in findings(line)
