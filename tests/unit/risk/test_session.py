"""Sessions start at a local time in the exchange's zone, so their UTC start follows daylight
saving time; before the start, an instant belongs to the previous day's session."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.core.config import SessionConfig, parse_spec
from components.core.errors import ConfigError
from components.risk.session import SessionCalendar


def ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 1_000_000_000


NEW_YORK = SessionCalendar(SessionConfig(timezone="America/New_York", start="09:30"))


@pytest.mark.parametrize(
    ("instant", "session"),
    [
        ("2024-03-08T14:29:59+00:00", "2024-03-07"),  # 09:29:59 EST
        ("2024-03-08T14:30:00+00:00", "2024-03-08"),  # 09:30 EST
        ("2024-03-11T13:30:00+00:00", "2024-03-11"),  # 09:30 EDT, after the switch
        ("2024-03-11T14:00:00+00:00", "2024-03-11"),
        ("2024-03-11T04:00:00+00:00", "2024-03-10"),  # UTC midnight is no boundary
    ],
)
def test_session_of_when_instant_around_local_start_then_session_by_local_day(
    instant: str, session: str
) -> None:
    assert NEW_YORK.session_of(ns(instant)) == session


def test_end_ns_when_daylight_saving_starts_then_session_lasts_23_hours() -> None:
    start, end = NEW_YORK.start_ns("2024-03-09"), NEW_YORK.end_ns("2024-03-09")
    assert start == ns("2024-03-09T14:30:00+00:00")
    assert (end - start) // 3_600_000_000_000 == 23


def test_config_when_time_zone_unknown_then_config_error_names_the_field() -> None:
    problem = r"risk\.session\.timezone: unknown time zone 'Mars/Base'"
    with pytest.raises(ConfigError, match=problem):
        parse_spec({"symbols": ["AAPL"], "risk": {"session": {"timezone": "Mars/Base"}}})


# --- exact instants and clock changes ---------------------------------------------------------

NS = 1_000_000_000


def test_session_of_when_nanoseconds_before_the_start_then_previous_session() -> None:
    """Float seconds would round 640 ns before 09:30 up to 09:30 and open the new session."""
    start = NEW_YORK.start_ns("2024-03-08")
    assert NEW_YORK.session_of(start - 640) == "2024-03-07"
    assert NEW_YORK.session_of(start - 1) == "2024-03-07"
    assert NEW_YORK.session_of(start) == "2024-03-08"


def test_session_of_when_start_is_in_the_repeated_hour_then_first_occurrence_opens_it() -> None:
    """On 2024-11-03 New York's clocks go from 01:59 EDT back to 01:00 EST: a session that starts
    at 01:30 starts at the first 01:30 (05:30 UTC), and 01:15 EST (06:15 UTC) is already in it."""
    calendar = SessionCalendar(SessionConfig(timezone="America/New_York", start="01:30"))
    assert calendar.start_ns("2024-11-03") == ns("2024-11-03T05:30:00+00:00")
    assert calendar.session_of(ns("2024-11-03T06:15:00+00:00")) == "2024-11-03"
    assert calendar.session_of(ns("2024-11-03T05:29:59+00:00")) == "2024-11-02"


def test_start_ns_when_start_is_skipped_by_the_clock_then_session_opens_at_the_jump() -> None:
    """On 2024-03-10 New York's clocks jump from 02:00 EST to 03:00 EDT (07:00 UTC): 02:30 does
    not exist, and the first instant at or after it on the wall clock is the jump itself."""
    calendar = SessionCalendar(SessionConfig(timezone="America/New_York", start="02:30"))
    assert calendar.start_ns("2024-03-10") == ns("2024-03-10T07:00:00+00:00")
    assert calendar.session_of(ns("2024-03-10T06:59:59+00:00")) == "2024-03-09"
    assert calendar.session_of(ns("2024-03-10T07:00:00+00:00")) == "2024-03-10"


CALENDARS = [
    SessionCalendar(SessionConfig(timezone=zone, start=start))
    for zone in ("America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC")
    for start in ("00:00", "01:30", "02:30", "09:30", "23:59")
]


@given(
    st.sampled_from(CALENDARS),
    # 2020-01-01 .. 2030-01-01, to the nanosecond
    st.integers(min_value=1_577_836_800 * NS, max_value=1_893_456_000 * NS),
)
def test_session_of_when_any_instant_then_it_lies_inside_its_session(
    calendar: SessionCalendar, ts_ns: int
) -> None:
    session = calendar.session_of(ts_ns)
    assert calendar.start_ns(session) <= ts_ns < calendar.end_ns(session)
