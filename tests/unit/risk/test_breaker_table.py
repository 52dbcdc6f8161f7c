"""The breaker's state machine for any sequence of trips, resets and waits: only the transitions
of its table happen, a manual or venue-drift trip ends only by a reset, a daily-loss trip only in
a later session or by a reset, open never closes by itself, and every change is in the history.
Also the monitors' sliding window against a brute-force maximum and minimum."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from components.core.config import BreakerConfig
from components.core.events import BreakerState
from components.risk import breaker
from components.risk.breaker import TRANSITIONS, Trigger

S = 1_000_000_000
CONFIG = BreakerConfig(recovery_wait_s=10, half_open_test_s=10)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("trip"), st.sampled_from(sorted(breaker.TRIPS))),
        st.tuples(st.just("reset"), st.none()),
        st.tuples(st.just("wait"), st.integers(1, 30)),
        st.tuples(st.just("session"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=150)
@given(steps)
def test_breaker_when_any_sequence_then_only_table_transitions_and_holds_kept(
    script: list[tuple[str, object]],
) -> None:
    b = breaker.Breaker()
    now, day = 0, 0
    for kind, argument in script:
        before = (b.state, b.trigger, b.session)
        if kind == "trip":
            change = b.propose(Trigger(str(argument)), "test", now, f"d{day}")
        elif kind == "reset":
            change = b.propose(Trigger.MANUAL_RESET, "test", now, f"d{day}")
        else:
            if kind == "wait":
                now += int(str(argument)) * S
            else:
                day += 1
            change = b.due(CONFIG, now, f"d{day}")
        if change is None:
            continue
        state, trigger, session = before
        assert TRANSITIONS[(state, Trigger(change.trigger))] is change.state
        if state is BreakerState.OPEN and change.state is not BreakerState.OPEN:
            if trigger in (Trigger.MANUAL, Trigger.VENUE_DRIFT):
                assert change.trigger == Trigger.MANUAL_RESET
            if trigger == Trigger.DAILY_LOSS and change.trigger != Trigger.MANUAL_RESET:
                assert change.session != session  # only in a later session
            if change.state is BreakerState.CLOSED:
                assert change.trigger == Trigger.MANUAL_RESET  # open never closes by itself
        b.apply(change)
        assert b.history[-1] is change and b.since_ns == now


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 200)), min_size=1, max_size=60),
    st.integers(1, 20),
)
def test_window_extremes_when_any_samples_then_equal_brute_force(
    samples: list[tuple[int, int]], window_s: int
) -> None:
    window = breaker.WindowExtremes(window_s * S)
    seen: list[tuple[int, Decimal]] = []
    now = 0
    for gap_s, value in samples:
        now += gap_s * S
        seen.append((now, Decimal(value)))
        inside = [v for ts, v in seen if ts >= now - window_s * S]
        assert window.add(now, Decimal(value)) == (max(inside), min(inside))
