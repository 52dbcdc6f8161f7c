"""Trading sessions: the day that daily P&L and a daily-loss trip belong to, in exchange time.

A session starts at a local wall-clock time in the exchange's time zone (09:30 in New York by
default), so its start in UTC moves with daylight saving time and is never UTC midnight. A
session is named by the local date it starts on: `2024-03-11`.

Time is integer nanoseconds throughout (a float of seconds since 1970 cannot tell instants
less than about 250 ns apart). A session starts at the first instant whose local wall-clock
time is at or after the start time on its date: the first of two occurrences when the clocks go
back, the jump itself when they go forward over it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from components.core.config import SessionConfig

NS = 1_000_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


class SessionCalendar:
    """Maps an instant (ns since the epoch) to the session it belongs to."""

    def __init__(self, config: SessionConfig) -> None:
        self.zone = zoneinfo.ZoneInfo(config.timezone)
        hours, minutes = config.start.split(":")
        self.start = dt.time(int(hours), int(minutes))
        self._starts: dict[dt.date, int] = {}

    def session_of(self, ts_ns: int) -> str:
        """The session holding `ts_ns`: before its local date's start it is the previous day's."""
        day = _wall(ts_ns // NS, self.zone).date()  # floor: the whole second holding ts_ns
        if ts_ns < self._start_ns(day):
            day -= dt.timedelta(days=1)
        return day.isoformat()

    def start_ns(self, session: str) -> int:
        """When `session` starts, in ns since the epoch."""
        return self._start_ns(dt.date.fromisoformat(session))

    def end_ns(self, session: str) -> int:
        """When the session after `session` starts (a day later in local time: 23 or 25 hours
        later across a change of daylight saving time)."""
        return self._start_ns(dt.date.fromisoformat(session) + dt.timedelta(days=1))

    def _start_ns(self, day: dt.date) -> int:
        start = self._starts.get(day)
        if start is None:
            wall = dt.datetime.combine(day, self.start)
            start = self._starts[day] = _first_at_or_after(wall, self.zone) * NS
        return start


def _seconds(moment: dt.datetime) -> int:
    return (moment - EPOCH) // SECOND


def _first_at_or_after(wall: dt.datetime, zone: zoneinfo.ZoneInfo) -> int:
    """The first instant (whole seconds since the epoch) whose wall-clock time in `zone` is at
    or after the naive `wall`. Clock changes fall on whole seconds, so seconds suffice."""
    first = _seconds(wall.replace(tzinfo=zone, fold=0))  # the earlier reading of a repeated time
    if _wall(first - 1, zone) < wall:
        return first  # the wall clock reaches `wall` exactly here
    # `wall` was skipped: the clocks jumped over it. fold=1 reads it with the offset of before
    # the jump, an instant before it; search between there and `first` for the jump.
    low, high = _seconds(wall.replace(tzinfo=zone, fold=1)), first
    low = min(low, high)
    while low < high:
        middle = (low + high) // 2
        if _wall(middle, zone) >= wall:
            high = middle
        else:
            low = middle + 1
    return low


def _wall(seconds: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return (EPOCH + dt.timedelta(seconds=seconds)).astimezone(zone).replace(tzinfo=None)
