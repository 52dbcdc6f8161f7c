"""Trading sessions: the day that daily P&L and a daily-loss trip belong to, in exchange time.

A session starts at a local wall-clock time in the exchange's time zone (09:30 in New York by
default), so its start in UTC moves with daylight saving time and is never UTC midnight. A
session is named by the local date it starts on: `2024-03-11`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from components.core.config import SessionConfig


class SessionCalendar:
    """Maps an instant (ns since the epoch) to the session it belongs to."""

    def __init__(self, config: SessionConfig) -> None:
        self.zone = zoneinfo.ZoneInfo(config.timezone)
        hours, minutes = config.start.split(":")
        self.start = dt.time(int(hours), int(minutes))

    def session_of(self, ts_ns: int) -> str:
        """The session holding `ts_ns`: before the local start time it is the previous day's."""
        local = dt.datetime.fromtimestamp(ts_ns / 1e9, self.zone)
        day = local.date()
        if local.time() < self.start:
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
        start = dt.datetime.combine(day, self.start, self.zone)
        return int(start.timestamp()) * 1_000_000_000
