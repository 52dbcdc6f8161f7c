"""TWAP and VWAP: a large approved order (the parent) worked as child orders over time.

A parent's quantity is split into `slices` children sent `duration_s / slices` apart: equal
parts (TWAP), or parts along a volume curve (VWAP; by default the U shape of a trading day).
Whole-share quantities stay whole: what rounding leaves goes to the largest slices first.

Each child is a new signal (`algo:<parent id>:<k>`) checked by the risk manager like any other,
so the limits see every child at the moment it is sent; an approved child comes back as an
`Order` and takes the engine's one idempotent path. The risk manager remembers signal ids, so a
child re-requested after a restart is the same order, never a second one. The parent itself is
closed at once towards the risk manager (its reservation is released: the children carry their
own), and its progress is kept in the order log (`SliceSent`).
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

import msgspec

from components.core.config import AlgoConfig
from components.core.events import Order, Signal

CHILD_PREFIX = "algo:"


class Slice(msgspec.Struct, frozen=True):
    index: int
    due_ns: int
    quantity: Decimal


def is_child(order: Order) -> bool:
    return order.signal_id.startswith(CHILD_PREFIX)


def works(config: AlgoConfig, order: Order) -> bool:
    """Whether `order` is worked as a parent rather than sent as it is."""
    return config.kind != "none" and not is_child(order) and order.quantity >= config.min_quantity


def u_curve(count: int) -> list[float]:
    """Relative volume across a session: high at the open and the close, low at midday."""
    return [1.0 + 1.5 * (2 * (i + 0.5) / count - 1) ** 2 for i in range(count)]


def split(quantity: Decimal, weights: list[float]) -> list[Decimal]:
    """`quantity` in parts proportional to `weights`, whole shares if it is whole; the parts
    add up to `quantity` exactly."""
    total = sum(weights)
    step = Decimal(1) if quantity == quantity.to_integral_value() else Decimal("0.000001")
    raw = [quantity * Decimal(repr(w / total)) for w in weights]
    parts = [r.quantize(step, rounding=ROUND_DOWN) for r in raw]
    left = quantity - sum(parts)
    # Largest remainders first (ties to the earlier slice), one step each.
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - parts[i]), i))
    i = 0
    while left >= step:
        parts[order[i % len(order)]] += step
        left -= step
        i += 1
    parts[order[0]] += left  # below a step: nothing for whole shares
    return parts


def schedule(config: AlgoConfig, quantity: Decimal, start_ns: int) -> list[Slice]:
    """The children of a parent of `quantity` arriving at `start_ns` (empty slices left out)."""
    if config.kind == "vwap":
        weights = list(config.volume_curve) or u_curve(config.slices)
    else:
        weights = [1.0] * config.slices
    interval_ns = math.floor(config.duration_s * 1e9 / config.slices)
    return [
        Slice(k, start_ns + k * interval_ns, part)
        for k, part in enumerate(split(quantity, weights))
        if part > 0
    ]


def child_signal(parent: Order, part: Slice, kind: str, now_ns: int) -> Signal:
    return Signal(
        signal_id=f"{CHILD_PREFIX}{parent.client_order_id}:{part.index}",
        strategy=f"execution.{kind}",
        symbol=parent.symbol,
        side=parent.side,
        quantity=part.quantity,
        ts_event_ns=now_ns,
        ts_origin_ns=parent.ts_origin_ns,
        order_type=parent.order_type,
        limit_price=parent.limit_price,
        reason=f"{kind} slice {part.index} of {parent.client_order_id}",
        stop_price=parent.stop_price,
        time_in_force=parent.time_in_force,
    )
