"""NHS and UK identifiers: NHS number (Modulus 11), ODS code, postcode."""

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_ODS_CODE = re.compile(r"^[A-Z0-9]{1,9}$")
_GP_PRACTICE_CODE = re.compile(r"^[A-Z][0-9]{5}$")
# Outward code, optional single space, inward code. Pseudo-postcodes such as ZZ99 3VZ (no fixed
# abode) follow the same shape and must be accepted.
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")

UNKNOWN_PRACTICE = "V81999"


def nhs_number_check_digit(first_nine: str) -> int | None:
    """Return the Modulus 11 check digit for nine digits, or None when no valid digit exists."""
    total = sum(
        int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True)
    )
    check = 11 - (total % 11)
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(value: str) -> bool:
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    return nhs_number_check_digit(value[:9]) == int(value[9])


def normalise_nhs_number(value: str) -> str:
    """Strip the spaces and hyphens of the 3-3-4 display form."""
    return value.replace(" ", "").replace("-", "")


def format_nhs_number(value: str) -> str:
    return f"{value[:3]} {value[3:6]} {value[6:]}"


def normalise_ods_code(value: str) -> str:
    return value.strip().upper()


def is_valid_ods_code(value: str) -> bool:
    return bool(_ODS_CODE.match(value))


def is_gp_practice_code(value: str) -> bool:
    return bool(_GP_PRACTICE_CODE.match(value))


def normalise_postcode(value: str) -> str | None:
    """Return the postcode upper-cased with its single space, or None when it is not one."""
    match = _POSTCODE.match(value.strip().upper())
    if match is None:
        return None
    return f"{match.group(1)} {match.group(2)}"


def postcode_district(postcode: str) -> str:
    """The outward code of a normalised postcode (``ME14 1XX`` -> ``ME14``)."""
    return postcode.split(" ", 1)[0]


def _ods_code(value: str) -> str:
    code = normalise_ods_code(value)
    if not is_valid_ods_code(code):
        raise ValueError("an ODS code is 1 to 9 letters and digits")
    return code


def _postcode(value: str) -> str:
    postcode = normalise_postcode(value)
    if postcode is None:
        raise ValueError("not a UK postcode (pseudo-postcodes such as ZZ99 3VZ are accepted)")
    return postcode


def _nhs_number(value: str) -> str:
    number = normalise_nhs_number(value)
    if not is_valid_nhs_number(number):
        raise ValueError("an NHS number is 10 digits whose last digit passes the Modulus 11 check")
    return number


OdsCode = Annotated[str, Field(min_length=1, max_length=12), AfterValidator(_ods_code)]
Postcode = Annotated[str, Field(min_length=5, max_length=10), AfterValidator(_postcode)]
PostcodeDistrict = Annotated[str, Field(pattern=r"^[A-Z]{1,2}[0-9][A-Z0-9]?$", max_length=4)]
NhsNumber = Annotated[str, Field(min_length=10, max_length=12), AfterValidator(_nhs_number)]
