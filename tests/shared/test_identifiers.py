"""Unit tests of NHS number, postcode and ODS code handling (synthetic values only)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from services.shared.identifiers import (
    UNKNOWN_PRACTICE,
    NhsNumber,
    OdsCode,
    Postcode,
    format_nhs_number,
    is_gp_practice_code,
    is_valid_nhs_number,
    is_valid_ods_code,
    nhs_number_check_digit,
    normalise_nhs_number,
    normalise_ods_code,
    normalise_postcode,
    postcode_district,
)

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def reference_check_digit(first_nine: str) -> int | None:
    """Modulus 11 written out independently: weights 10..2, 11 -> 0, 10 -> no valid number."""
    total = 0
    for position, digit in enumerate(first_nine):
        total += int(digit) * (10 - position)
    remainder = total % 11
    check = 11 - remainder
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


@st.composite
def valid_nhs_numbers(draw: st.DrawFn) -> str:
    first_nine = draw(nine_digits.filter(lambda digits: nhs_number_check_digit(digits) is not None))
    return first_nine + str(nhs_number_check_digit(first_nine))


# --- NHS number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_nine", "check"),
    [
        # 9*10 + 9*9 + 9*8 + 1*2 = 245; 245 mod 11 = 3; 11 - 3 = 8
        pytest.param("999000001", 8, id="999000001-check-8"),
        # 9*10 + 9*9 + 9*8 + 2*2 = 247; 247 mod 11 = 5; 11 - 5 = 6
        pytest.param("999000002", 6, id="999000002-check-6"),
        # 9*10 + 9*9 + 9*8 + 5*2 = 253 = 11*23; 11 - 0 = 11, which means 0
        pytest.param("999000005", 0, id="999000005-eleven-means-0"),
        # 9*10 + 4*9 + 3*8 + 4*7 + 7*6 + 6*5 + 5*4 + 9*3 + 1*2 = 299; 299 mod 11 = 2; 11 - 2 = 9
        pytest.param("943476591", 9, id="943476591-check-9"),
    ],
)
def test_check_digit_of_hand_computed_numbers(first_nine: str, check: int) -> None:
    assert nhs_number_check_digit(first_nine) == check
    number = first_nine + str(check)
    assert is_valid_nhs_number(number)
    # Every other final digit is wrong.
    for wrong in set("0123456789") - {str(check)}:
        assert not is_valid_nhs_number(first_nine + wrong)


def test_check_digit_of_ten_means_no_valid_number_for_that_prefix() -> None:
    # 9*10 + 9*9 + 9*8 = 243; 243 mod 11 = 1; 11 - 1 = 10: no valid check digit exists.
    prefix = "999000000"
    assert nhs_number_check_digit(prefix) is None
    for last in "0123456789":
        assert not is_valid_nhs_number(prefix + last)


@PROPERTY_SETTINGS
@given(nine_digits)
def test_check_digit_agrees_with_an_independent_modulus_11(first_nine: str) -> None:
    expected = reference_check_digit(first_nine)
    assert nhs_number_check_digit(first_nine) == expected
    valid_last_digits = [last for last in "0123456789" if is_valid_nhs_number(first_nine + last)]
    assert valid_last_digits == ([] if expected is None else [str(expected)])


@PROPERTY_SETTINGS
@given(valid_nhs_numbers())
def test_any_single_digit_change_makes_a_valid_number_invalid(number: str) -> None:
    assert is_valid_nhs_number(number)
    # All 90 single-digit changes: Modulus 11 catches every one of them.
    for position in range(10):
        for digit in set("0123456789") - {number[position]}:
            changed = number[:position] + digit + number[position + 1 :]
            assert not is_valid_nhs_number(changed), changed


@PROPERTY_SETTINGS
@given(valid_nhs_numbers())
def test_spaced_and_hyphenated_display_forms_normalise_to_the_number(number: str) -> None:
    spaced = format_nhs_number(number)
    assert spaced == f"{number[:3]} {number[3:6]} {number[6:]}"
    assert normalise_nhs_number(spaced) == number
    assert normalise_nhs_number(spaced.replace(" ", "-")) == number
    assert is_valid_nhs_number(normalise_nhs_number(spaced))
    # The display form itself is not a bare number until normalised.
    assert not is_valid_nhs_number(spaced)


digit_strings = st.text(alphabet="0123456789", max_size=20)


@PROPERTY_SETTINGS
@given(
    st.one_of(
        digit_strings.filter(lambda text: len(text) != 10),
        st.text(max_size=9),
        st.text(min_size=11, max_size=20),
    )
)
def test_wrong_length_is_never_valid(text: str) -> None:
    assert len(text) != 10
    assert not is_valid_nhs_number(text)


@PROPERTY_SETTINGS
@given(
    valid_nhs_numbers(),
    st.integers(min_value=0, max_value=9),
    st.characters(exclude_categories=["Nd"]),
)
def test_a_non_digit_anywhere_is_never_valid(number: str, position: int, char: str) -> None:
    assert not is_valid_nhs_number(number[:position] + char + number[position + 1 :])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("999000001", id="nine-digits"),
        pytest.param("99900000180", id="eleven-digits"),
        pytest.param("999 000 0018", id="display-form-not-normalised"),
        pytest.param("999000001X", id="letter-check-digit"),
        pytest.param("99900000\uff118", id="non-ascii-digit"),
        pytest.param("-999000018", id="sign"),
        pytest.param("999000001.", id="punctuation"),
    ],
)
def test_malformed_nhs_numbers_are_invalid(value: str) -> None:
    assert not is_valid_nhs_number(value)


def test_nhs_number_type_normalises_and_validates() -> None:
    adapter: TypeAdapter[str] = TypeAdapter(NhsNumber)

    assert adapter.validate_python("999 000 0018") == "9990000018"
    assert adapter.validate_python("999-000-0018") == "9990000018"
    with pytest.raises(ValidationError, match="Modulus 11"):
        adapter.validate_python("9990000019")


# --- postcodes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("xw1 2ab", "XW1 2AB", id="lower-case"),
        pytest.param("XW12AB", "XW1 2AB", id="no-space"),
        pytest.param("  XW1 2AB ", "XW1 2AB", id="surrounding-blanks"),
        pytest.param("XW12 3AB", "XW12 3AB", id="two-digit-district"),
        pytest.param("ZZ99 3VZ", "ZZ99 3VZ", id="pseudo-postcode-no-fixed-abode"),
        pytest.param("zz993vz", "ZZ99 3VZ", id="pseudo-postcode-compact"),
    ],
)
def test_normalise_postcode_accepts(value: str, expected: str) -> None:
    assert normalise_postcode(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not a postcode", id="words"),
        pytest.param("12345", id="digits"),
        pytest.param("", id="empty"),
        pytest.param("XW1  2AB", id="two-spaces"),
        pytest.param("XW1 2A", id="short-inward"),
        pytest.param("XWZ1 2AB", id="three-letter-area"),
    ],
)
def test_normalise_postcode_refuses(value: str) -> None:
    assert normalise_postcode(value) is None


def test_postcode_district_is_the_outward_code() -> None:
    assert postcode_district("XW12 3AB") == "XW12"
    assert postcode_district("XW1 2AB") == "XW1"
    assert postcode_district("ZZ99 3VZ") == "ZZ99"


def test_postcode_type_normalises_and_refuses() -> None:
    adapter: TypeAdapter[str] = TypeAdapter(Postcode)

    assert adapter.validate_python("xw12ab") == "XW1 2AB"
    with pytest.raises(ValidationError):
        adapter.validate_python("not a postcode")


# --- ODS codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("M91001", True, id="gp-practice"),
        pytest.param("X", True, id="one-character"),
        pytest.param("RXW12ABC9", True, id="nine-characters"),
        pytest.param("TOO-LONG-CODE", False, id="too-long-with-hyphens"),
        pytest.param("ABCDEFGHIJ", False, id="ten-characters"),
        pytest.param("", False, id="empty"),
        pytest.param("m91001", False, id="lower-case-not-normalised"),
    ],
)
def test_is_valid_ods_code(value: str, valid: bool) -> None:
    assert is_valid_ods_code(value) is valid


@pytest.mark.parametrize(
    ("value", "is_practice"),
    [
        pytest.param("K81003", True, id="letter-and-five-digits"),
        pytest.param(UNKNOWN_PRACTICE, True, id="practice-unknown"),
        pytest.param("8KK001", False, id="starts-with-digit"),
        pytest.param("K8100", False, id="too-short"),
        pytest.param("K810033", False, id="too-long"),
        pytest.param("KK1003", False, id="two-letters"),
    ],
)
def test_is_gp_practice_code(value: str, is_practice: bool) -> None:
    assert is_gp_practice_code(value) is is_practice


def test_ods_code_type_normalises_and_refuses() -> None:
    adapter: TypeAdapter[str] = TypeAdapter(OdsCode)

    assert normalise_ods_code(" k81003 ") == "K81003"
    assert adapter.validate_python(" k81003 ") == "K81003"
    with pytest.raises(ValidationError):
        adapter.validate_python("TOO-LONG-CODE")
