"""`BacktestConfig`: how a backtest fills, charges, sizes and limits what a strategy asks for.

Fees are the simulated exchange's own model (`SimulatedVenueConfig`: per fill, per share and a
rate of value), and the limits are the risk manager's (`RiskLimits`); the backtest builds those
objects from here, so a backtest charges and limits exactly as a local run configured alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]

FillModel = Literal["next_open", "close", "quote"]


class BacktestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_cash: Positive = Field(Decimal(100_000), description="Starting cash.")
    fill: FillModel = Field(
        "next_open",
        description=(
            "Price an order fills at: next_open (the open of the symbol's next bar), close (the "
            "close of the bar that caused it) or quote (the last quote; the last trade's price "
            "for trade data)."
        ),
    )
    commission_per_order: NonNegative = Field(Decimal(0), description="Fixed fee per fill.")
    commission_rate: Annotated[Decimal, Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        Decimal(0), description="Fee as a fraction of each fill's value (0.001 = 10 bp)."
    )
    commission_per_share: NonNegative = Field(Decimal(0), description="Fee per share filled.")
    spread_bps: NonNegative = Field(
        Decimal(0),
        description="Quoted spread around bar and trade prices, in basis points of the price "
        "(quote data brings its own spread).",
    )
    slippage_bps: Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        Decimal(0),
        description="Price worsened for every fill, in basis points, rounded to the tick against "
        "the trader (the simulated exchange's slippage).",
    )
    tick_size: Positive = Field(Decimal("0.01"), description="Price increment of slipped prices.")
    sizing: Literal["fixed", "fraction"] = Field(
        "fixed", description="fixed: `quantity` units; fraction: `fraction` of equity."
    )
    quantity: Positive = Field(Decimal(1), description="Units per entry when sizing is fixed.")
    fraction: Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        Decimal(1),
        description="Share of equity per entry when sizing is fraction, turned into whole units "
        "at the fill price, leaving room for the entry's fees.",
    )
    allow_short: bool = Field(False, description="Whether a sell signal may open a short.")
    on_opposite: Literal["flip", "close"] = Field(
        "flip",
        description="On a signal against the position: flip (close, then open sized from the "
        "equity after the close) or close only.",
    )
    close_at_end: bool = Field(
        True,
        description="Close open positions at the last price (intents still waiting for a next "
        "open are dropped); if not, they stay open and are reported apart (open_positions, "
        "open_pnl, in net_pnl).",
    )
    max_position: Positive | None = Field(
        None, description="The risk manager's max_position limit (shares); none if unset."
    )
    max_notional: Positive | None = Field(
        None, description="The risk manager's max_notional limit; none if unset."
    )
    periods_per_year: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None,
        description="Equity points per year, to annualize; unset: inferred from the data's "
        "span in calendar time (daily trading bars give about 252).",
    )
