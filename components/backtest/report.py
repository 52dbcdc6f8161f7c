"""The HTML report of a backtest: stats, equity curve and drawdown plots, and the round trips.

One self-contained file: the plots are inline SVG drawn here (no script, no network, nothing to
install), and the page is a pure function of the result, so the same backtest gives the same
bytes. Curves longer than `MAX_POINTS` are drawn from every k-th point (plus the last); the stats
are computed on every point.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from typing import Any

MAX_POINTS = 2000
WIDTH, HEIGHT, PAD = 900, 260, 48
LEFT = 96  # room for the value labels, e.g. "1,234,567.89"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
th { border-bottom: 1px solid #999; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #f4f4f4; } .neg { color: #b00; } .pos { color: #070; }
svg text { font: 11px system-ui, sans-serif; fill: #555; }
"""


def _date(ts_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M") if ts_ns % 86_400_000_000_000 else f"{moment:%Y-%m-%d}"


def format_value(value: Any) -> str:
    """A stat for people: floats to 4 decimals, thousands separated, `-` for undefined."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _sample(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = -(-len(points) // MAX_POINTS)
    sampled = points[::step]
    return sampled if sampled[-1] == points[-1] else [*sampled, points[-1]]


def _plot(points: list[tuple[int, float]], title: str, fill: str, percent: bool = False) -> str:
    """A line (and area) chart of (time, value) with min/max labels and the first/last date."""
    if len(points) < 2:
        return f"<p>{html.escape(title)}: not enough points to draw.</p>"
    points = _sample(points)
    t0, t1 = points[0][0], points[-1][0]
    values = [v for _, v in points]
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1

    def x(t: int) -> float:
        return LEFT + (t - t0) / max(t1 - t0, 1) * (WIDTH - LEFT - PAD)

    def y(v: float) -> float:
        return PAD / 2 + (high - v) / (high - low) * (HEIGHT - PAD)

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    base = y(max(min(0.0, high), low)) if percent else y(low)
    area = f"{x(t0):.1f},{base:.1f} {line} {x(t1):.1f},{base:.1f}"
    label = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:,.2f}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">'
        f'<rect x="{LEFT}" y="{PAD / 2}" width="{WIDTH - LEFT - PAD}" height="{HEIGHT - PAD}" '
        'fill="none" stroke="#ccc"/>'
        f'<polygon points="{area}" fill="{fill}" fill-opacity="0.15"/>'
        f'<polyline points="{line}" fill="none" stroke="{fill}" stroke-width="1.2"/>'
        f'<text x="{LEFT - 4}" y="{y(high) + 4:.1f}" text-anchor="end">{label(high)}</text>'
        f'<text x="{LEFT - 4}" y="{y(low) + 4:.1f}" text-anchor="end">{label(low)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{_date(t0)}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end">{_date(t1)}</text>'
        "</svg>"
    )


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(result: dict[str, Any]) -> str:
    """The report of `results.summary(...)` as one HTML page."""
    equity = [(int(ts), float(Decimal(value))) for ts, value in result["equity"]]
    peak = float("-inf")
    drawdown = []
    for ts, value in equity:
        peak = max(peak, value)
        drawdown.append((ts, value / peak - 1 if peak > 0 else 0.0))
    stats = result["stats"]
    stat_rows = [[html.escape(name), html.escape(format_value(v))] for name, v in stats.items()]
    trade_rows = []
    for trade in result["trades"]:
        pnl = Decimal(trade["pnl"])
        css = "neg" if pnl < 0 else "pos"
        trade_rows.append(
            [
                html.escape(trade["symbol"]),
                trade["side"],
                html.escape(trade["quantity"]),
                _date(trade["entry_ts_ns"]),
                html.escape(trade["entry_price"]),
                _date(trade["exit_ts_ns"]),
                html.escape(trade["exit_price"]),
                html.escape(f"{Decimal(trade['fees']):.2f}"),
                f'<span class="{css}">{pnl:.2f}</span>',
            ]
        )
    params = html.escape(", ".join(f"{k}={v}" for k, v in result["params"].items()) or "defaults")
    title = f"Backtest of {html.escape(result['strategy'])}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1><p>Parameters: {params}</p>"
        f"<h2>Equity</h2>{_plot(equity, 'Equity', '#1f5fa8')}"
        f"<h2>Drawdown</h2>{_plot(drawdown, 'Drawdown', '#b00020', percent=True)}"
        f"<h2>Statistics</h2>{_table(stat_rows, ['statistic', 'value'])}"
        f"<h2>Round trips ({len(trade_rows)})</h2>"
        + _table(
            trade_rows,
            ["symbol", "side", "qty", "entry", "price", "exit", "price", "fees", "P&L"],
        )
        + "</body></html>\n"
    )
