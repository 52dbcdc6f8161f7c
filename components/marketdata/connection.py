"""A network feed's connection: its state machine and the backoff between reconnects.

    DISCONNECTED ──> CONNECTING ──> CONNECTED ──> SUBSCRIBED
         ^              │   ^           │             │
         │              v   │           v             v
         └──────────  RECONNECTING <────┴─────────────┘
                        │
    any state ─────> FAILED   (retrying will not help: bad credentials, a plan without this feed)

`ConnectionState` is the data; `TRANSITIONS` lists every allowed move, so an impossible one (say,
SUBSCRIBED without CONNECTED) is a bug that raises instead of a metric that lies. Only SUBSCRIBED
means data can flow; `/ready` and the failover read it. Each move carries a short `reason` code
(`silence`, `closed`, `error_frame`, ...), the label of the disconnect metric.

SUBSCRIBED is not enough to be up: a socket can subscribe and then deliver nothing while it
answers every ping. A session that ended silent (`went_silent`) leaves the connection *silent*: it
counts as down from the last data frame it saw, across reconnects that subscribe again and stay
mute, until a data frame arrives (`data_received`). The failover reads `down_for_s` and
`delivering`, so a mute primary is failed over and not handed back to before it speaks again.

`Backoff` spaces reconnects: 1 s doubling to 30 s, each delay shortened by up to `jitter` of itself
at random so that many clients cut off together do not come back together. A floor (the
provider's "come back later", `long_backoff_s`) is the least wait, never shortened: jitter spreads
such waits upwards instead, by up to `jitter` of the floor. It is reset only after
a session stayed healthy for a while, so a server that accepts and at once drops us is retried at
the backoff's pace, never in a tight loop.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ConnectionState(enum.StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SUBSCRIBED = "subscribed"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


_S = ConnectionState
TRANSITIONS: frozenset[tuple[ConnectionState, ConnectionState]] = frozenset(
    {
        (_S.DISCONNECTED, _S.CONNECTING),
        (_S.CONNECTING, _S.CONNECTED),
        (_S.CONNECTING, _S.RECONNECTING),  # refused, timed out, or an error frame at once
        (_S.CONNECTED, _S.SUBSCRIBED),
        (_S.CONNECTED, _S.RECONNECTING),  # dropped or refused during auth / subscribe
        (_S.SUBSCRIBED, _S.RECONNECTING),  # dropped, silent, or an error frame
        (_S.RECONNECTING, _S.CONNECTING),
        (_S.CONNECTING, _S.DISCONNECTED),  # stopped on purpose
        (_S.CONNECTED, _S.DISCONNECTED),
        (_S.SUBSCRIBED, _S.DISCONNECTED),
        (_S.RECONNECTING, _S.DISCONNECTED),
        *((state, _S.FAILED) for state in _S if state is not _S.FAILED),
    }
)


class InvalidTransitionError(RuntimeError):
    """A connection was asked to move between two states that are not linked: a bug."""


Listener = Callable[[ConnectionState, ConnectionState], None]


class Connection:
    """The state of one feed's connection, the moves it made, and who wants to know.

    `clock` gives monotonic seconds (injectable so that tests need not wait)."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.state = ConnectionState.DISCONNECTED
        self.since_s = clock()
        self.reconnects = 0
        self.failure = ""
        self.reason = ""  # code of the last move's cause, e.g. "silence"
        self.silent = False  # the last session ended with no data though data was expected
        self._clock = clock
        self._down_since_s: float | None = self.since_s
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)
        listener(self.state, self.state)

    def move(self, new: ConnectionState, why: str = "", *, reason: str = "") -> None:
        old = self.state
        if old is new:
            return
        if (old, new) not in TRANSITIONS:
            raise InvalidTransitionError(f"feed {self.name}: no transition {old} -> {new}")
        self.state, self.since_s = new, self._clock()
        self.reason = reason
        if new is ConnectionState.SUBSCRIBED and not self.silent:
            self._down_since_s = None
        elif old is ConnectionState.SUBSCRIBED and self._down_since_s is None:
            self._down_since_s = self.since_s
        if new is ConnectionState.RECONNECTING:
            self.reconnects += 1
        if new is ConnectionState.FAILED:
            self.failure = why
        level = logging.WARNING if new in (_S.RECONNECTING, _S.FAILED) else logging.INFO
        because = f" ({reason})" if reason else ""
        log.log(
            level, "Feed %s is %s%s%s.", self.name, new.value, because, f": {why}" if why else ""
        )
        for listener in self._listeners:
            listener(old, new)

    def went_silent(self, last_data_s: float) -> None:
        """No data since `last_data_s` though data was expected: down since then, and until a
        data frame arrives (a reconnect that subscribes and stays mute does not count as up)."""
        self.silent = True
        if self._down_since_s is None or last_data_s < self._down_since_s:
            self._down_since_s = last_data_s

    def data_received(self) -> None:
        """A data frame arrived (called per frame: cheap unless the connection was silent)."""
        if self.silent:
            self.silent = False
            if self.state is ConnectionState.SUBSCRIBED:
                self._down_since_s = None
                log.info("Feed %s delivers data again.", self.name)

    @property
    def subscribed(self) -> bool:
        return self.state is ConnectionState.SUBSCRIBED

    @property
    def delivering(self) -> bool:
        """Subscribed, and not mute since its last silence."""
        return self.state is ConnectionState.SUBSCRIBED and not self.silent

    def down_for_s(self) -> float:
        """How long since the feed was last subscribed and delivering, or since it was created
        (0 while it is): reconnect attempts in between, and mute subscriptions after a silence,
        do not restart the count."""
        return 0.0 if self._down_since_s is None else self._clock() - self._down_since_s


class Backoff:
    """Delays between reconnects: `initial_s` doubling to `max_s`, minus up to `jitter` of each;
    never below a floor given to `next_s`, plus up to `jitter` of it."""

    def __init__(
        self,
        initial_s: float = 1.0,
        max_s: float = 30.0,
        *,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s (were {initial_s}, {max_s})")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1) (was {jitter})")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def nominal_s(self) -> float:
        """The next delay before jitter."""
        return min(self.max_s, self.initial_s * 2 ** min(self.attempts, 63))

    def next_s(self, at_least_s: float = 0.0) -> float:
        """The delay before the next attempt (never below `at_least_s`); counts the attempt."""
        nominal = self.nominal_s()
        self.attempts += 1
        delay = nominal * (1 - self.jitter * self._rng.random())
        if delay >= at_least_s:
            return delay
        # The floor is what the provider asked for: spread above it, never below.
        return at_least_s * (1 + self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0
