"""The HTML report of a backtest: each symbol's price with the trades marked on it, the equity
curve against buy-and-hold, the drawdown, the monthly returns, every figure with its definition,
the position still open and the round trips.

One self-contained file: the charts are inline SVG drawn here (no script, no network, nothing to
install: a plotting library would weigh more than the report), and the page is a pure function
of the result, so the same backtest gives the same bytes. Curves longer than `MAX_POINTS` are
drawn from every k-th point (plus the last); the figures are computed on every point.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from components.backtest import stats
from components.backtest.results import moment

MAX_POINTS = 2000
WIDTH, HEIGHT, PAD = 900, 260, 48
LEFT = 96  # room for the value labels, e.g. "1,234,567.89"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LONG, SHORT, EXIT = "#070", "#b00", "#333"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
th { border-bottom: 1px solid #999; } td:first-child, th:first-child { text-align: left; }
td.definition { text-align: left; color: #666; font-size: 0.9em; }
tr:nth-child(even) td { background: #f4f4f4; } .neg { color: #b00; } .pos { color: #070; }
svg text { font: 11px system-ui, sans-serif; fill: #555; } .note { color: #666; }
"""


def format_value(value: Any) -> str:
    """A value without a unit: floats to 4 decimals, thousands separated, `-` for undefined."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Series(NamedTuple):
    points: list[tuple[int, float]]
    color: str
    label: str


class Marker(NamedTuple):
    ts_ns: int
    value: float
    color: str
    shape: str  # "up", "down" (entries: long, short) or "exit"
    title: str


def _sample(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = -(-len(points) // MAX_POINTS)
    sampled = points[::step]
    return sampled if sampled[-1] == points[-1] else [*sampled, points[-1]]


def _plot(
    series: Sequence[Series],
    title: str,
    percent: bool = False,
    markers: Sequence[Marker] = (),
    fill: bool = True,
) -> str:
    """Lines of (time, value) on shared axes, the first filled, with min/max labels, the first
    and last date, a legend, and markers at (time, value)."""
    main = series[0].points
    if len(main) < 2:
        return f"<p>{html.escape(title)}: not enough points to draw.</p>"
    t0, t1 = main[0][0], main[-1][0]
    values = [v for s in series for _, v in s.points] + [m.value for m in markers]
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1

    def x(t: int) -> float:
        return LEFT + (t - t0) / max(t1 - t0, 1) * (WIDTH - LEFT - PAD)

    def y(v: float) -> float:
        return PAD / 2 + (high - v) / (high - low) * (HEIGHT - PAD)

    label = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:,.2f}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">',
        f'<rect x="{LEFT}" y="{PAD / 2}" width="{WIDTH - LEFT - PAD}" height="{HEIGHT - PAD}" '
        'fill="none" stroke="#ccc"/>',
    ]
    for number, line in enumerate(series):
        drawn = _sample(line.points)
        if len(drawn) < 2:
            continue
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in drawn)
        if number == 0 and fill:
            base = y(max(min(0.0, high), low)) if percent else y(low)
            area = f"{x(drawn[0][0]):.1f},{base:.1f} {path} {x(drawn[-1][0]):.1f},{base:.1f}"
            parts.append(f'<polygon points="{area}" fill="{line.color}" fill-opacity="0.15"/>')
        dash = "" if number == 0 else ' stroke-dasharray="4 3"'
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{line.color}" '
            f'stroke-width="1.2"{dash}/>'
        )
        if len(series) > 1:
            parts.append(
                f'<text x="{LEFT + 8 + 160 * number}" y="{PAD / 2 + 14}" fill="{line.color}" '
                f'style="fill:{line.color}">{html.escape(line.label)}</text>'
            )
    for marker in markers:
        mx, my = x(marker.ts_ns), y(marker.value)
        if marker.shape == "exit":
            shape = f'<circle cx="{mx:.1f}" cy="{my:.1f}" r="3" fill="none" stroke="{EXIT}">'
            end = "</circle>"
        else:
            tip = -5 if marker.shape == "up" else 5
            shape = (
                f'<polygon points="{mx:.1f},{my + tip:.1f} {mx - 4:.1f},{my - tip:.1f} '
                f'{mx + 4:.1f},{my - tip:.1f}" fill="{marker.color}">'
            )
            end = "</polygon>"
        parts.append(f"{shape}<title>{html.escape(marker.title)}</title>{end}")
    parts += [
        f'<text x="{LEFT - 4}" y="{y(high) + 4:.1f}" text-anchor="end">{label(high)}</text>',
        f'<text x="{LEFT - 4}" y="{y(low) + 4:.1f}" text-anchor="end">{label(low)}</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{moment(t0)}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end">{moment(t1)}</text>',
        "</svg>",
    ]
    return "".join(parts)


def _table(rows: list[list[str]], header: list[str], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)

    def cell(number: int, text: str) -> str:
        css = classes[number] if number < len(classes) and classes[number] else ""
        return f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>"

    body = "".join(
        "<tr>" + "".join(cell(n, text) for n, text in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def monthly_returns(equity: list[tuple[int, float]], initial: float) -> dict[int, list[Any]]:
    """Each year's row: the return of every month (None where no equity point fell in it), then
    the year's, each from the last equity of the period before (the initial equity first)."""
    month_end: dict[tuple[int, int], float] = {}
    for ts, value in equity:
        when = dt.datetime.fromtimestamp(ts // 1_000_000_000, tz=dt.UTC)
        month_end[(when.year, when.month)] = value
    rows: dict[int, list[Any]] = {}
    previous = year_start = initial
    year = None
    for (y, m), value in sorted(month_end.items()):
        if y != year:
            if year is not None:
                rows[year][12] = previous / year_start - 1
            year, year_start = y, previous
            rows[y] = [None] * 13
        rows[y][m - 1] = value / previous - 1 if previous > 0 else None
        previous = value
    if year is not None:
        rows[year][12] = previous / year_start - 1 if year_start > 0 else None
    return rows


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    css = "neg" if value < 0 else "pos"
    return f'<span class="{css}">{value * 100:.2f}</span>'


def _buy_and_hold(
    prices: dict[str, list[list[Any]]], equity: list[tuple[int, float]], initial: float
) -> list[tuple[int, float]]:
    """The initial equity held as an equal share of every symbol, at each equity point."""
    if not prices or not equity:
        return []
    curves = []
    for series in prices.values():
        first = float(Decimal(series[0][1]))
        curve, index, value = [], 0, 1.0
        for ts, _ in equity:
            while index < len(series) and series[index][0] <= ts:
                value = float(Decimal(series[index][1])) / first
                index += 1
            curve.append(value)
        curves.append(curve)
    return [
        (ts, initial * sum(column) / len(curves))
        for (ts, _), column in zip(equity, zip(*curves, strict=True), strict=True)
    ]


def _markers(result: dict[str, Any], symbol: str) -> list[Marker]:
    marks: list[Marker] = []
    trades = [t for t in result["trades"] if t["symbol"] == symbol]
    opened = [p for p in result.get("open_positions", []) if p["symbol"] == symbol]
    for trade in trades:
        long = trade["side"] == "long"
        marks.append(
            Marker(
                trade["entry_ts_ns"],
                float(Decimal(trade["entry_price"])),
                LONG if long else SHORT,
                "up" if long else "down",
                f"{'buy' if long else 'sell short'} {trade['quantity']} at "
                f"{trade['entry_price']}, {moment(trade['entry_ts_ns'])}",
            )
        )
        marks.append(
            Marker(
                trade["exit_ts_ns"],
                float(Decimal(trade["exit_price"])),
                EXIT,
                "exit",
                f"exit at {trade['exit_price']}, {moment(trade['exit_ts_ns'])}: "
                f"P&L {Decimal(trade['pnl']):.2f}",
            )
        )
    for position in opened:
        long = position["side"] == "long"
        marks.append(
            Marker(
                position["entry_ts_ns"],
                float(Decimal(position["avg_price"])),
                LONG if long else SHORT,
                "up" if long else "down",
                f"open: {position['side']} {position['quantity']} at {position['avg_price']}",
            )
        )
    return marks


def render(result: dict[str, Any]) -> str:
    """The report of `results.summary(...)` as one HTML page."""
    equity = [(int(ts), float(Decimal(value))) for ts, value in result["equity"]]
    figures = result["stats"]
    initial = float(Decimal(figures["initial_equity"]))
    peak = float("-inf")
    drawdown = []
    for ts, value in equity:
        peak = max(peak, value)
        drawdown.append((ts, value / peak - 1 if peak > 0 else 0.0))
    prices = result.get("prices", {})
    sections = []
    for symbol, series in prices.items():
        line = [(int(ts), float(Decimal(price))) for ts, price in series]
        chart = _plot(
            [Series(line, "#444", symbol)],
            f"{symbol} price",
            markers=_markers(result, symbol),
            fill=False,
        )
        sections.append(
            f"<h2>{html.escape(symbol)}: price and trades</h2>{chart}"
            '<p class="note">Triangles: entries (green long, red short); circles: exits.</p>'
        )
    curves = [Series(equity, "#1f5fa8", "strategy")]
    benchmark = _buy_and_hold(prices, equity, initial)
    if benchmark:
        curves.append(Series(benchmark, "#999", "buy and hold"))
    sections.append(f"<h2>Equity</h2>{_plot(curves, 'Equity')}")
    sections.append(
        "<h2>Drawdown</h2>"
        + _plot([Series(drawdown, "#b00020", "drawdown")], "Drawdown", percent=True)
    )
    months = monthly_returns(equity, initial)
    sections.append(
        "<h2>Monthly returns (%)</h2>"
        + _table(
            [[str(year), *(_percent(v) for v in row)] for year, row in months.items()],
            ["year", *MONTHS, "year"],
        )
    )
    stat_rows = [
        [
            html.escape(name),
            html.escape(stats.display(name, value)),
            html.escape(stats.FIGURES[name].definition if name in stats.FIGURES else ""),
        ]
        for name, value in figures.items()
    ]
    sections.append(
        "<h2>Statistics</h2>"
        '<p class="note">Returns are simple per-bar returns of the equity curve (arithmetic '
        "mean, sample deviation), annualized with periods_per_year, risk-free rate 0; profit "
        "factor is in money. Every trade figure is over the closed trades; an open position "
        "is in open_pnl and net_pnl only.</p>"
        + _table(stat_rows, ["figure", "value", "definition"], ["", "", "definition"])
    )
    opened = result.get("open_positions", [])
    if opened:
        open_rows = [
            [
                html.escape(p["symbol"]),
                p["side"],
                html.escape(p["quantity"]),
                moment(p["entry_ts_ns"]),
                html.escape(p["avg_price"]),
                html.escape(p["last_price"] or "-"),
                _money(Decimal(p["unrealized_pnl"])),
                f"{Decimal(p['fees']):.2f}",
                _money(Decimal(p["pnl"])),
            ]
            for p in opened
        ]
        sections.append(
            "<h2>Open at the end</h2>"
            + _table(
                open_rows,
                [
                    "symbol",
                    "side",
                    "qty",
                    "since",
                    "avg price",
                    "last",
                    "unrealized",
                    "fees paid",
                    "P&L net",
                ],
            )
        )
    trade_rows = [
        [
            html.escape(trade["symbol"]),
            trade["side"],
            html.escape(trade["quantity"]),
            moment(trade["entry_ts_ns"]),
            html.escape(trade["entry_price"]),
            moment(trade["exit_ts_ns"]),
            html.escape(trade["exit_price"]),
            f"{(trade['exit_ts_ns'] - trade['entry_ts_ns']) / 86_400e9:.1f}",
            f"{Decimal(trade['fees']):.2f}",
            _money(Decimal(trade["pnl"])),
            _percent(trade["return_pct"] / 100),
        ]
        for trade in result["trades"]
    ]
    sections.append(
        f"<h2>Round trips ({len(trade_rows)})</h2>"
        + _table(
            trade_rows,
            [
                "symbol",
                "side",
                "qty",
                "entry",
                "price",
                "exit",
                "price",
                "days",
                "fees",
                "P&L",
                "return %",
            ],
        )
    )
    params = html.escape(", ".join(f"{k}={v}" for k, v in result["params"].items()) or "defaults")
    title = f"Backtest of {html.escape(result['strategy'])}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1><p>Parameters: {params}</p>" + "".join(sections) + "</body></html>\n"
    )


def _money(amount: Decimal) -> str:
    css = "neg" if amount < 0 else "pos"
    return f'<span class="{css}">{amount:,.2f}</span>'
