"""The feed connection's state machine (allowed and refused moves, reconnect count, time down) and
the reconnect backoff (doubling from 1 s to 30 s, jitter within bounds, floor, reset)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.marketdata.connection import (
    Backoff,
    Connection,
    ConnectionState,
    InvalidTransitionError,
)

S = ConnectionState


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_move_when_full_cycle_then_states_listeners_and_reconnects() -> None:
    clock = FakeClock()
    connection = Connection("alpaca-iex", clock)
    seen: list[tuple[S, S]] = []
    connection.on_change(lambda old, new: seen.append((old, new)))
    for state in (S.CONNECTING, S.CONNECTED, S.SUBSCRIBED, S.RECONNECTING, S.CONNECTING):
        connection.move(state)
    assert seen[1:] == [
        (S.DISCONNECTED, S.CONNECTING),
        (S.CONNECTING, S.CONNECTED),
        (S.CONNECTED, S.SUBSCRIBED),
        (S.SUBSCRIBED, S.RECONNECTING),
        (S.RECONNECTING, S.CONNECTING),
    ]
    assert connection.reconnects == 1


@pytest.mark.parametrize(
    ("start", "target"),
    [(S.DISCONNECTED, S.SUBSCRIBED), (S.DISCONNECTED, S.CONNECTED), (S.FAILED, S.CONNECTING)],
)
def test_move_when_not_a_transition_then_raises(start: S, target: S) -> None:
    connection = Connection("x")
    if start is S.FAILED:
        connection.move(S.FAILED, "auth failed")
    with pytest.raises(InvalidTransitionError, match=f"{start} -> {target}"):
        connection.move(target)


def test_down_for_s_when_not_subscribed_then_time_since_last_move() -> None:
    clock = FakeClock()
    connection = Connection("x", clock)
    connection.move(S.CONNECTING)
    connection.move(S.CONNECTED)
    connection.move(S.SUBSCRIBED)
    clock.now += 50
    assert connection.down_for_s() == 0
    connection.move(S.RECONNECTING)
    clock.now += 7
    connection.move(S.CONNECTING)  # attempts do not restart the count
    connection.move(S.RECONNECTING)
    clock.now += 1
    assert connection.down_for_s() == 8


def test_next_s_when_no_jitter_then_doubles_to_cap_and_reset_restarts() -> None:
    backoff = Backoff(1, 30, jitter=0)
    assert [backoff.next_s() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next_s() == 1
    assert backoff.next_s(at_least_s=60) == 60


@settings(max_examples=200, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32), attempts=st.integers(1, 80), floor=st.floats(0, 600))
def test_next_s_when_jittered_then_within_bounds_and_never_below_the_floor(
    seed: int, attempts: int, floor: float
) -> None:
    """Jitter shortens the doubling delay by up to 20 %, but a floor (`long_backoff_s` after a
    406 or 429) is the least wait the provider asked for: jitter only ever lengthens it."""
    backoff = Backoff(1, 30, jitter=0.2, rng=random.Random(seed))
    for attempt in range(attempts):
        nominal = min(30.0, 2.0**attempt)
        delay = backoff.next_s(at_least_s=floor)
        assert delay >= floor
        assert delay >= 0.8 * nominal
        assert delay <= max(nominal, 1.2 * floor)


def test_backoff_when_bad_parameters_then_value_error() -> None:
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(0, 30)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(1, 30, jitter=1)
