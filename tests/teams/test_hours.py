"""Service hours as a clock: when a team next opens, and when it has been open for so long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.teams.directory.hours import local_description, next_opening, open_time_ends

OFFICE = {day: ["08:30-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
NIGHT = {
    day: ["00:00-08:00", "20:00-24:00"]
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "bank_holidays")
}
FRIDAY_7PM = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
MONDAY_8_30AM = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


def test_a_clock_started_on_friday_evening_runs_from_monday_morning() -> None:
    assert next_opening(OFFICE, FRIDAY_7PM) == MONDAY_8_30AM
    assert open_time_ends(OFFICE, FRIDAY_7PM, timedelta(hours=8)) == (
        datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    )


def test_a_clock_stops_at_closing_time_and_resumes_next_open_day() -> None:
    monday_3pm = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)

    # Two hours on Monday, the other six from Tuesday's opening.
    assert open_time_ends(OFFICE, monday_3pm, timedelta(hours=8)) == (
        datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    )


def test_a_team_open_now_opens_now() -> None:
    assert next_opening(OFFICE, MONDAY_8_30AM + timedelta(hours=1)) == (
        MONDAY_8_30AM + timedelta(hours=1)
    )


def test_bank_holidays_without_hours_are_skipped() -> None:
    christmas_eve_4pm = datetime(2026, 12, 24, 16, 0, tzinfo=UTC)

    # Christmas Day (Friday) and Boxing Day's substitute (Monday 28th) are closed.
    assert open_time_ends(OFFICE, christmas_eve_4pm, timedelta(hours=2)) == (
        datetime(2026, 12, 29, 9, 30, tzinfo=UTC)
    )


def test_a_night_service_is_open_across_midnight() -> None:
    tuesday_11pm = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)

    assert open_time_ends(NIGHT, tuesday_11pm, timedelta(hours=3)) == (
        datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    )


def test_hours_are_counted_in_uk_local_time_across_the_change_to_summer_time() -> None:
    # Friday 27 March 2026 17:00 GMT; the clocks go forward on Sunday 29th.
    friday_close = datetime(2026, 3, 27, 17, 0, tzinfo=UTC)

    # Monday 08:30 BST is 07:30 UTC; one hour later is 08:30 UTC.
    assert open_time_ends(OFFICE, friday_close, timedelta(hours=1)) == (
        datetime(2026, 3, 30, 8, 30, tzinfo=UTC)
    )


def test_a_team_without_hours_counts_every_hour() -> None:
    assert open_time_ends(None, FRIDAY_7PM, timedelta(days=1)) == FRIDAY_7PM + timedelta(days=1)


def test_a_moment_reads_in_uk_local_time() -> None:
    assert local_description(datetime(2026, 7, 6, 7, 30, tzinfo=UTC)) == "Monday 6 July at 08:30"
