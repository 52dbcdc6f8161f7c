"""`tradingsystem state DATA_DIR`: what the state logs on a volume say, read offline, never written.

DATA_DIR is a run's data directory (`var/`, holding `risk/` and `execution/`) or a component's own
(a mounted PVC holding `state.log` or `orders.log`). The risk manager's log gives positions,
cash, P&L, each position's trailing-stop peak (as last logged), the session, the breaker and its
history, open approvals and the last sequence applied;
the execution engine's order log gives its open orders and the fills the risk manager has not
confirmed yet. Quotes are not logged, so positions are valued at cost: equity here is cash plus
cost, and unrealized P&L is not known offline.

A torn last line (no newline) is reported, not cut off: that is the owner's job when it restarts.
A damaged complete line is reported with its file, line and byte offset, the other journal still
shown, and the exit code is 1: the owner refuses to start on it, and so does `tradingsystem run`.

`--repair` is the one thing here that writes, and only when asked: in each damaged journal it
moves the first damaged line and everything after it (and, for the risk manager, every later
segment: records after a hole would replay wrong) to a side file `<file>.damaged-<UTC time>`
next to it, says what those lines held, and checks that the journals load again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from components.core.errors import CorruptLineError, CorruptLogError
from components.execution import orderlog
from components.risk import statelog
from components.runtime import journal

ZERO = Decimal(0)


@dataclasses.dataclass
class Found:
    risk_dir: Path | None
    order_log: Path | None


def locate(data_dir: Path) -> Found:
    """Where the risk manager's and the execution engine's logs are under `data_dir`."""
    risk_dir = None
    for candidate in (data_dir / "risk", data_dir):
        if (candidate / statelog.STATE_LOG_NAME).exists() or any(candidate.glob("snapshot-*.snap")):
            risk_dir = candidate
            break
    order_log = None
    for candidate in (data_dir / "execution", data_dir):
        if (candidate / orderlog.ORDER_LOG_NAME).exists():
            order_log = candidate / orderlog.ORDER_LOG_NAME
            break
    return Found(risk_dir, order_log)


def report(data_dir: Path) -> dict[str, Any]:
    """Everything the logs under `data_dir` say, as JSON-ready values (money as strings); a
    damaged journal as its `damage` (file, line, offset, problem) and `error` instead."""
    found = locate(data_dir)
    result: dict[str, Any] = {"data_dir": str(data_dir), "risk": None, "execution": None}
    if found.risk_dir is not None:
        result["risk"] = _read(_risk, found.risk_dir, "directory")
    if found.order_log is not None:
        result["execution"] = _read(_execution, found.order_log, "order_log")
    return result


def _read(reader: Any, where: Path, key: str) -> dict[str, Any]:
    try:
        section: dict[str, Any] = reader(where)
    except CorruptLogError as exc:
        return {key: str(where), "damage": _damage(exc), "error": str(exc)}
    return {**section, "damage": None, "error": None}


def _damage(exc: CorruptLogError) -> dict[str, Any] | None:
    if not isinstance(exc, CorruptLineError):
        return None  # records missing (a sequence gap): no one line to point at
    return {"file": str(exc.path), "line": exc.line, "offset": exc.offset, "problem": exc.problem}


def damage(data_dir: Path) -> list[CorruptLogError]:
    """Every journal under `data_dir` that its owner would refuse to start on (read-only)."""
    found, problems = locate(data_dir), []
    if found.risk_dir is not None:
        try:
            statelog.load(found.risk_dir, ZERO)
        except CorruptLogError as exc:
            problems.append(exc)
    if found.order_log is not None:
        try:
            orderlog.read(found.order_log)
        except CorruptLogError as exc:
            problems.append(exc)
    return problems


def _risk(directory: Path) -> dict[str, Any]:
    restored = statelog.load(directory, ZERO)
    state = restored.state
    book, breaker = state.book, state.breaker
    start = state.session_start_equity
    equity_at_cost = book.equity(marks={})
    return {
        "directory": str(directory),
        "last_sequence": state.seq,
        "snapshot_sequence": restored.snapshot_seq,
        "records_after_snapshot": restored.records_replayed,
        "torn_lines": restored.torn_lines,
        "bad_snapshots": restored.bad_snapshots,
        "initial_cash": str(book.initial_cash),
        "cash": str(book.cash),
        "equity_at_cost": str(equity_at_cost),
        "realized_pnl": str(book.realized_pnl),
        "fees": str(book.fees),
        "fills": book.fill_count,
        "session": state.session,
        "session_start_equity": None if start is None else str(start),
        "positions": [
            {
                "symbol": symbol,
                "quantity": str(h.quantity),
                "avg_price": str(h.avg_price),
                "cost": str(h.cost),
                "realized_pnl": str(h.realized_pnl),
                "fees": str(h.fees),
                "trailing_peak": _peak(state.stop_peaks.get(symbol)),
            }
            for symbol, h in sorted(book.holdings.items())
        ],
        "breaker": {
            "state": str(breaker.state),
            "trigger": breaker.trigger,
            "reason": breaker.reason,
            "since_ns": breaker.since_ns,
            "history": [
                {
                    "seq": h.seq,
                    "ts_ns": h.ts_logged_ns,
                    "state": str(h.state),
                    "trigger": h.trigger,
                    "reason": h.reason,
                }
                for h in breaker.history
            ],
        },
        "open_orders": [
            {
                "client_order_id": a.order.client_order_id,
                "symbol": a.order.symbol,
                "side": str(a.order.side),
                "quantity": str(a.order.quantity),
                "filled": str(a.filled_quantity),
                "acknowledged": a.acknowledged,
                "approved_ns": a.ts_approved_ns,
            }
            for a in state.approvals.values()
        ],
    }


def _peak(peak: statelog.StopPeakMoved | None) -> str | None:
    """The best price since entry the trailing stop trails from after a restart (None: from the
    entry), as logged: by steps, so it may lag the live one a little."""
    return None if peak is None else str(peak.price)


def _execution(path: Path) -> dict[str, Any]:
    # Read, not `OrderLog.restore`: that opens the log for appending and cuts a torn tail.
    replay = orderlog.read(path)
    orders = orderlog.Orders(torn_lines=replay.torn_lines)
    for record in replay:
        orders.apply(record)
    return {
        "order_log": str(path),
        "records": len(replay.records),
        "torn_lines": replay.torn_lines,
        "orders_handled": len(orders.known),
        "orders": [
            {
                "client_order_id": o.client_order_id,
                "venue_order_id": o.venue_order_id,
                "symbol": o.order.symbol,
                "side": str(o.order.side),
                "quantity": str(o.order.quantity),
                "order_type": str(o.order.order_type),
                "status": str(o.status),
                "reason": o.reason,
                "filled": str(o.filled),
                "avg_price": None if o.avg_price is None else str(o.avg_price),
                "expected_slippage_bps": o.expected_slippage_bps,
                "fills": [
                    {
                        "fill_id": f.fill_id,
                        "quantity": str(f.quantity),
                        "price": str(f.price),
                        "fee": str(f.fee),
                    }
                    for f in o.fills
                ],
            }
            for o in orders.states.values()
        ],
        "open_orders": [
            {
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": str(o.side),
                "quantity": str(o.quantity),
                "order_type": str(o.order_type),
                "limit_price": None if o.limit_price is None else str(o.limit_price),
            }
            for o in orders.open.values()
        ],
        "unconfirmed_fills": [
            {
                "fill_id": f.fill_id,
                "client_order_id": f.client_order_id,
                "symbol": f.symbol,
                "side": str(f.side),
                "quantity": str(f.quantity),
                "price": str(f.price),
            }
            for f in orders.unconfirmed.values()
        ],
    }


def _time(ns: int) -> str:
    if not ns:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(result: dict[str, Any]) -> str:
    """The report as text for a person."""
    lines = [f"State in {result['data_dir']}"]
    risk = result["risk"]
    if risk is None:
        lines.append("risk: no state log found")
    elif risk["error"]:
        lines.append(f"risk ({risk['directory']}): DAMAGED: {risk['error']}")
    else:
        b = risk["breaker"]
        lines += [
            f"risk ({risk['directory']}): last sequence {risk['last_sequence']} "
            f"(snapshot {risk['snapshot_sequence']} + {risk['records_after_snapshot']} records)",
            f"  cash {risk['cash']}  equity at cost {risk['equity_at_cost']}  "
            f"realized P&L {risk['realized_pnl']}  fees {risk['fees']}  fills {risk['fills']}",
            f"  session {risk['session'] or '-'} (started with equity "
            f"{risk['session_start_equity'] or '-'})",
            f"  breaker {b['state']}"
            + (f" since {_time(b['since_ns'])}: {b['reason']}" if b["reason"] else ""),
        ]
        if risk["torn_lines"]:
            lines.append(f"  WARNING: {risk['torn_lines']} torn last line (cut off at restart)")
        for name in risk["bad_snapshots"]:
            lines.append(f"  WARNING: unreadable snapshot {name} (an older one was used)")
        lines.append("  positions:" if risk["positions"] else "  positions: none")
        for p in risk["positions"]:
            peak = f"  trailing peak {p['trailing_peak']}" if p["trailing_peak"] else ""
            lines.append(
                f"    {p['symbol']:<8} {p['quantity']:>12} @ {p['avg_price']:<14} "
                f"realized {p['realized_pnl']}  fees {p['fees']}{peak}"
            )
        lines.append("  open orders:" if risk["open_orders"] else "  open orders: none")
        for o in risk["open_orders"]:
            ack = "acknowledged" if o["acknowledged"] else "not acknowledged"
            lines.append(
                f"    {o['client_order_id']} {o['side']} {o['quantity']} {o['symbol']} "
                f"(filled {o['filled']}, {ack})"
            )
        lines.append("  breaker history:" if b["history"] else "  breaker history: none")
        for h in b["history"]:
            lines.append(f"    {_time(h['ts_ns'])} {h['state']:<9} {h['trigger']}: {h['reason']}")
    execution = result["execution"]
    if execution is None:
        lines.append("execution: no order log found")
    elif execution["error"]:
        lines.append(f"execution ({execution['order_log']}): DAMAGED: {execution['error']}")
    else:
        lines.append(
            f"execution ({execution['order_log']}): {execution['records']} records, "
            f"{execution['orders_handled']} orders handled"
        )
        if execution["torn_lines"]:
            lines.append(f"  WARNING: {execution['torn_lines']} torn last line")
        lines.append("  open orders:" if execution["open_orders"] else "  open orders: none")
        for o in execution["open_orders"]:
            price = f" limit {o['limit_price']}" if o["limit_price"] else ""
            lines.append(
                f"    {o['client_order_id']} {o['side']} {o['quantity']} {o['symbol']} "
                f"{o['order_type']}{price}"
            )
        lines.append("  orders:" if execution["orders"] else "  orders: none")
        for o in execution["orders"]:
            average = f" @ {o['avg_price']}" if o["avg_price"] else ""
            reason = f" ({o['reason']})" if o["reason"] else ""
            lines.append(
                f"    {o['client_order_id']} {o['side']} {o['quantity']} {o['symbol']} "
                f"{o['order_type']}: {o['status']}{reason}, filled {o['filled']}{average}"
            )
            for f in o["fills"]:
                lines.append(
                    f"      fill {f['fill_id']} {f['quantity']} @ {f['price']} fee {f['fee']}"
                )
        if execution["unconfirmed_fills"]:
            lines.append("  fills not yet confirmed by the risk manager:")
            for f in execution["unconfirmed_fills"]:
                lines.append(
                    f"    {f['fill_id']} {f['side']} {f['quantity']} {f['symbol']} @ {f['price']}"
                )
    return "\n".join(lines)


# --- repair ----------------------------------------------------------------------------------


def _later_files(path: Path) -> list[Path]:
    """The state-log files a restore replays after `path`: later segments, then the active one."""
    directory, active = path.parent, path.parent / statelog.STATE_LOG_NAME
    if path == active:
        return []
    match = statelog.SEGMENT.match(path.name)
    after = int(match.group(1)) if match else -1
    numbered = [(m, p) for p in directory.iterdir() if (m := statelog.SEGMENT.match(p.name))]
    later = sorted((int(m.group(1)), p) for m, p in numbered if int(m.group(1)) > after)
    return [p for _, p in later] + ([active] if active.exists() else [])


def repair(data_dir: Path) -> tuple[list[journal.Repaired], list[CorruptLogError]]:
    """Move the damaged suffix of every damaged journal under `data_dir` aside (see the module
    docstring). Returns what was moved, and the damage left that no cut can mend (records
    missing from the middle of the state log); nothing is written for those."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    repaired: list[journal.Repaired] = []
    for problem in damage(data_dir):
        if not isinstance(problem, CorruptLineError):
            continue  # a gap in the sequence: no suffix to cut would make it whole
        path = Path(problem.path)
        is_order_log = path.name == orderlog.ORDER_LOG_NAME
        record_type: Any = orderlog.Record if is_order_log else statelog.Record
        repaired.append(
            journal.move_aside(path, problem.offset, problem.line, record_type, stamp=stamp)
        )
        if not is_order_log:
            # Records after a hole would replay onto the wrong state: they go aside too.
            for later in _later_files(path):
                repaired.append(journal.move_aside(later, 0, 1, record_type, stamp=stamp))
    return repaired, damage(data_dir)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def render_repairs(repaired: list[journal.Repaired], left: list[CorruptLogError]) -> str:
    """What `repair` moved where, and what the moved lines held, for a person."""
    if not repaired and not left:
        return "Nothing to repair: every journal loads."
    lines = []
    for r in repaired:
        first = r.lost[0] if r.lost else None
        where = f" from line {first.line} (byte {first.offset})" if first else ""
        lines.append(
            f"Repaired {r.path}: moved {_plural(len(r.lost), 'line')} ({r.lost_bytes} bytes)"
            f"{where} to {r.side_file}; it now holds {r.kept_bytes} bytes."
        )
        for lost in r.lost:
            status = lost.problem or "intact, but after the damage"
            held = lost.body if lost.body is not None else "(undecodable)"
            lines.append(f"  line {lost.line}: {status}: {held}")
    if left:
        lines += [f"Still damaged, not repairable by a cut: {error}" for error in left]
    else:
        lines.append("The journals load again; what was moved aside is in the side files above.")
    return "\n".join(lines)


def _repairs_json(repaired: list[journal.Repaired]) -> list[dict[str, Any]]:
    return [
        {
            "file": str(r.path),
            "side_file": str(r.side_file),
            "kept_bytes": r.kept_bytes,
            "lost_bytes": r.lost_bytes,
            "lost_lines": [dataclasses.asdict(lost) for lost in r.lost],
        }
        for r in repaired
    ]


def main(data_dir: Path, *, as_json: bool, repair_damage: bool = False) -> int:
    if not data_dir.is_dir():
        print(f"error: {data_dir} is not a directory", file=sys.stderr)
        return 2
    if repair_damage:
        repaired, left = repair(data_dir)
        if as_json:
            left_json = [str(error) for error in left]
            print(json.dumps({"repaired": _repairs_json(repaired), "left": left_json}, indent=2))
        else:
            print(render_repairs(repaired, left))
        for error in left:
            print(f"error: cannot repair: {error}", file=sys.stderr)
        return 1 if left else 0
    result = report(data_dir)
    print(json.dumps(result, indent=2) if as_json else render(result))
    errors = [s["error"] for s in (result["risk"], result["execution"]) if s and s["error"]]
    for error in errors:
        print(f"error: {error}. {journal.repair_hint(data_dir)}", file=sys.stderr)
    if errors:
        return 1
    return 0 if result["risk"] is not None or result["execution"] is not None else 1
