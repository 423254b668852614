"""Synthetic test data: fictional people, NHS numbers valid by Modulus 11."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from typing import Any

from services.shared.identifiers import nhs_number_check_digit

_random = random.Random(20261122)


def nhs_number(rng: random.Random = _random) -> str:
    """A random NHS number that passes the Modulus 11 check (from the 999 test range)."""
    while True:
        first_nine = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            return first_nine + str(check)


def nhs_numbers(block: int) -> Iterator[str]:
    """NHS numbers valid by Modulus 11 from the 999 range, each once: block N (0-9) counts up
    from 999N00000, so no two referrals of a run are the same patient (a repeat would be held as
    a possible duplicate, not routed)."""
    for serial in range(block * 100_000, (block + 1) * 100_000):
        first_nine = f"999{serial:06d}"
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            yield first_nine + str(check)


def invalid_nhs_number() -> str:
    valid = nhs_number()
    return valid[:9] + str((int(valid[9]) + 1) % 10)


def referral(
    *,
    channel: str = "gp",
    urgency: str = "routine",
    needs: list[str] | None = None,
    red_flags: list[str] | None = None,
    practice: str | None = "M91001",
    postcode: str | None = "XW1 2ZZ",
    born: date = date(1941, 3, 14),
    safeguarding: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": channel,
        "urgency": urgency,
        "patient": {
            "nhs_number": nhs_number(),
            "given_name": "Ada",
            "family_name": "Testperson",
            "date_of_birth": born.isoformat(),
            "postcode": postcode,
            "registered_practice": practice,
        },
        "needs": ["mobility_assessment"] if needs is None else needs,
        "red_flags": red_flags or [],
        "consent": {"basis": "direct_care_implied"},
        "reason": "Fictional test referral.",
    }
    if safeguarding is not None:
        body["safeguarding"] = safeguarding
    body.update(overrides)
    return body


def clinical(taken_at: str, **overrides: Any) -> dict[str, Any]:
    """A referral's clinical payload with every part filled (fictional clinician and places;
    telephone numbers from Ofcom's ranges for drama, which the UK numbering plan holds valid).
    Its values are ones the log scan looks for (tests/log_scan.py)."""
    body: dict[str, Any] = {
        "clinician": {
            "name": "Robin Quillfeather",
            "role": "Paramedic",
            "registration": {"regulator": "hcpc", "number": "PA 123456"},
            "call_back": "020 7946 0321",
        },
        "patient_contact": {
            "phones": [{"number": "0113 496 0555", "use": "home"}],
            "address": {"lines": ["1 Fictional Row"], "town": "Wealdmoor", "postcode": "XW1 2ZZ"},
            "communication": {
                "interpreter_language": "pl",
                "adjustments": ["large_print"],
                "note": "Prefers morning calls.",
            },
        },
        "incident_location": {
            "address": {"lines": ["Outside the Corn Exchange"], "postcode": "XW1 3ZZ"},
            "description": "Bus stop by the market.",
        },
        "summary": "Found on the floor by a neighbour; no head injury.",
        "snomed_codes": [{"code": "1912002", "display": "Fall"}],
        "observations": [{"kind": "news2", "score": 3, "taken_at": taken_at}],
    }
    body.update(overrides)
    return body
