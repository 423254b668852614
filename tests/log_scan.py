"""What must never be in a log line: NHS numbers, names, dates of birth, postcodes, free text,
telephone numbers and the rest of a referral's clinical payload.

The test data is synthetic, so the scan knows what to look for: every NHS number valid by
Modulus 11 (any ten digits, spaced or not), the factories' names and free text (the clinical
payload's too: ``factories.clinical``), any ISO date outside a timestamp field, any UK-shaped
postcode and any UK-shaped telephone number.
"""

from __future__ import annotations

import json
import re

from services.shared.identifiers import nhs_number_check_digit

NAMES = ("Testperson", "Ada", "Quillfeather", "Edith", "BLAKE")
FREE_TEXT = (
    "Fictional test referral",
    "Lives alone",
    "fell at home",
    "daughter",
    # The clinical payload of factories.clinical and of the BaRS test messages.
    "Fictional Row",
    "Corn Exchange",
    "Bus stop by the market",
    "Found on the floor",
    "Prefers morning calls",
    "PA123456",
    "PA 123456",
    "CONSULTATION SUMMARY",
    "Headrow",
)
# Ten digits standing alone: a run of digits inside an id (a UUID's "86b0-2039612467aa") is the
# id's, and passes the check digit one time in eleven.
_TEN_DIGITS = re.compile(r"(?<![0-9A-Za-z])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![0-9A-Za-z])")
_DATE = re.compile(r"(?<![\dT:.-])(19|20)\d\d-[01]\d-[0-3]\d(?![\dT])")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")
# A UK telephone number, national (0...) or international (+44...), spaced or not.
_PHONE = re.compile(r"(?<![0-9A-Za-z.])(?:\+44 ?|0)\d{2,4} ?\d{3,4} ?\d{3,4}(?![0-9A-Za-z])")
# Fields whose values are ours, not a person's: times, ids, event and path names.
_OURS = {"timestamp", "request_id", "event", "path", "level", "service", "method"}


def _valid_nhs_number(digits: str) -> bool:
    return nhs_number_check_digit(digits[:9]) == int(digits[9]) if digits.isdigit() else False


def findings(line: str) -> list[str]:
    """What in this log line identifies a person, by kind; empty when it is clean."""
    try:
        record = json.loads(line)
    except ValueError:
        record = {"text": line}
    if not isinstance(record, dict):
        record = {"text": line}
    text = json.dumps({k: v for k, v in record.items() if k not in _OURS}, sort_keys=True)
    found = []
    for match in _TEN_DIGITS.finditer(text):
        if _valid_nhs_number("".join(match.groups())):
            found.append("nhs_number")
    found += [f"name:{name}" for name in NAMES if re.search(rf"\b{name}\b", text)]
    found += [f"free_text:{phrase}" for phrase in FREE_TEXT if phrase.lower() in text.lower()]
    if _DATE.search(text):
        found.append("date")
    if _POSTCODE.search(text):
        found.append("postcode")
    if _PHONE.search(text):
        found.append("phone")
    return found
