"""The report's and the result's pieces on values computed by hand: monthly returns from month-end
equity, prices at the instrument's tick, times as session dates."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from components.backtest import report, results

DAY_NS = 86_400 * 1_000_000_000


def _ts(year: int, month: int, day: int) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def test_monthly_returns_when_two_years_then_each_from_the_previous_month_end() -> None:
    equity = [
        (_ts(2023, 11, 15), 105.0),
        (_ts(2023, 11, 30), 110.0),  # November: 110 / 100 (the initial equity) - 1
        (_ts(2023, 12, 29), 99.0),  # December: 99 / 110 - 1
        (_ts(2024, 2, 1), 108.9),  # January has no point; February: 108.9 / 99 - 1
    ]
    rows = report.monthly_returns(equity, 100.0)
    assert list(rows) == [2023, 2024]
    assert math.isclose(rows[2023][10], 0.1) and math.isclose(rows[2023][11], -0.1)
    assert math.isclose(rows[2023][12], -0.01)  # the year: 99 / 100 - 1
    assert rows[2024][0] is None and math.isclose(rows[2024][1], 0.1)
    assert math.isclose(rows[2024][12], 0.1)  # 108.9 / 99 - 1


def test_at_tick_when_price_on_the_tick_then_its_decimals_else_every_digit() -> None:
    assert results.at_tick(Decimal("169.0200000"), Decimal("0.01")) == "169.02"
    assert results.at_tick(Decimal("100"), Decimal("0.01")) == "100.00"
    assert results.at_tick(Decimal("169.025"), Decimal("0.01")) == "169.025"  # a mid
    assert results.at_tick(Decimal("5.0"), Decimal("1")) == "5"


def test_moment_when_session_start_or_end_then_its_date_alone() -> None:
    friday = _ts(2013, 3, 1)
    assert results.moment(friday) == results.moment(friday + DAY_NS - 1) == "2013-03-01"
    assert results.moment(friday + 34_200 * 10**9) == "2013-03-01 09:30:00"
