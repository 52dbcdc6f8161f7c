"""Trading hours: when silence on a feed counts (weekdays, inside the local window, time zone and
daylight saving applied), and always when no hours are set."""

from __future__ import annotations

import datetime as dt

import pytest

from components.marketdata.hours import TradingHours

NEW_YORK = dt.timezone(dt.timedelta(hours=-4))  # EDT, as on the dates below


def _at(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).timestamp()


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (_at(2024, 3, 11, 9, 29), False),  # Monday, before the open
        (_at(2024, 3, 11, 9, 30), True),
        (_at(2024, 3, 11, 15, 59), True),
        (_at(2024, 3, 11, 16, 0), False),  # the close is outside
        (_at(2024, 3, 16, 12, 0), False),  # Saturday
    ],
)
def test_open_at_when_regular_hours_then_weekdays_inside_the_window(
    when: float, expected: bool
) -> None:
    assert TradingHours("09:30-16:00", "America/New_York").open_at(when) is expected


def test_open_at_when_no_hours_then_always() -> None:
    assert TradingHours(None, "America/New_York").open_at(_at(2024, 3, 16, 3, 0)) is True
