"""When a feed's symbols are expected to trade, so that a feed that delivers nothing is a fault.

Outside those hours a quiet socket is the market, not a failure: no reconnect, no failover.
Hours are local to a time zone, Monday to Friday; exchange holidays are not known here (on one, a
silent feed reconnects every `silence_timeout_s`, which costs a connection and nothing more).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo


class TradingHours:
    """`HH:MM-HH:MM` on weekdays in `timezone`; None: always (a 24/7 or test stream)."""

    def __init__(self, hours: str | None, timezone: str) -> None:
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.window: tuple[dt.time, dt.time] | None = None
        if hours is not None:
            start, _, end = hours.partition("-")
            self.window = (dt.time.fromisoformat(start), dt.time.fromisoformat(end))

    def open_at(self, wall_s: float) -> bool:
        """Whether data is expected at `wall_s` (seconds since the epoch)."""
        if self.window is None:
            return True
        local = dt.datetime.fromtimestamp(wall_s, self.zone)
        start, end = self.window
        return local.weekday() < 5 and start <= local.time() < end
