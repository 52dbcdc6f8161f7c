"""Sessions start at a local time in the exchange's zone, so their UTC start follows daylight
saving time; before the start, an instant belongs to the previous day's session."""

from __future__ import annotations

import datetime as dt

import pytest

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
