"""The order log: known ids and open orders survive a reopen; a torn tail is cut off; a damaged
middle line is an error naming it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from components.core.errors import CorruptLogError
from components.core.events import Order, OrderStatus, OrderUpdate, Side
from components.execution import orderlog

D = Decimal


def order(client_order_id: str) -> Order:
    return Order(
        client_order_id=client_order_id,
        signal_id="s",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(1),
        ts_event_ns=1,
        ts_origin_ns=1,
    )


def update(client_order_id: str, status: OrderStatus) -> OrderUpdate:
    return OrderUpdate(
        client_order_id=client_order_id,
        venue_order_id="v",
        symbol="AAPL",
        status=status,
        filled_quantity=D(1),
        avg_fill_price=D(10),
        ts_event_ns=1,
    )


def write(path: Path) -> None:
    log, _ = orderlog.OrderLog.restore(path)
    for client_order_id in ("c1", "c2"):
        log.append(
            orderlog.OrderReceived(ts_logged_ns=1, order=order(client_order_id), trace_id="t")
        )
    log.append(orderlog.OrderUpdated(ts_logged_ns=2, update=update("c1", OrderStatus.FILLED)))
    log.close()


def test_open_when_log_written_then_known_ids_and_open_orders_restored(tmp_path: Path) -> None:
    path = tmp_path / orderlog.ORDER_LOG_NAME
    write(path)
    log, orders = orderlog.OrderLog.restore(path)
    log.close()
    assert orders.known == {"c1", "c2"}
    assert list(orders.open) == ["c2"]
    assert orders.torn_lines == 0


def test_open_when_last_line_torn_then_skipped_and_cut_off(tmp_path: Path) -> None:
    path = tmp_path / orderlog.ORDER_LOG_NAME
    write(path)
    size = path.stat().st_size
    with path.open("ab") as file:
        file.write(b'0badc0de {"record":"order_rec')
    log, orders = orderlog.OrderLog.restore(path)
    log.close()
    assert orders.torn_lines == 1 and orders.known == {"c1", "c2"}
    assert path.stat().st_size == size


def test_read_when_middle_line_corrupt_then_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / orderlog.ORDER_LOG_NAME
    write(path)
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0][:-5] + b"xxxxx"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptLogError, match="line 1 is corrupt"):
        orderlog.read(path)
