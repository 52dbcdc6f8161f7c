"""Config models (pydantic v2): one `<Component>Config` per component, composed into
`TradingSystemSpec`, the one definition of a valid system. The CRD's schema is generated from it,
and `tradingsystem run` / `validate` read either a bare spec or a whole `TradingSystem` manifest.

Field descriptions are user documentation (they become the CRD's). Units end names (`_ms`, `_s`).
"""

from __future__ import annotations

import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from components.core.errors import ConfigError

API_VERSION = "trading.dev/v1alpha1"
KIND = "TradingSystem"

Symbol = Annotated[
    str,
    Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}$", description="A ticker such as AAPL or BRK.B."),
]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _known_zone(zone: str) -> str:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    return zone


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def cel_rule(rule: str, message: str, field: str | None = None) -> dict[str, Any]:
    """A cross-field rule for the CRD (`x-kubernetes-validations`), mirroring a model validator
    so that the API server refuses what `parse_spec` refuses, with the same message."""
    validation = {"rule": rule, "message": message}
    if field is not None:
        validation["fieldPath"] = field
    return {"x-kubernetes-validations": [validation]}


def transition_rule(rule: str, message: str, field: str | None = None) -> dict[str, Any]:
    """A rule on a change (CEL reading `oldSelf`), which the API server checks on an update
    only: what a cluster cannot do to a running system (a volume's size or class) is refused
    when the spec is written, not later on the child, where the system would sit in
    ApplyFailed. No model validator mirrors it: a model sees one version of the spec."""
    return cel_rule(rule, message, field)


class BrokerConfig(_Model):
    """Where the ZMQ broker listens. Components connect to it; it never connects to them."""

    model_config = ConfigDict(
        json_schema_extra=cel_rule(
            "self.publish_port != self.subscribe_port && self.publish_port != self.request_port"
            " && self.publish_port != self.reply_port && self.subscribe_port != self.request_port"
            " && self.subscribe_port != self.reply_port && self.request_port != self.reply_port",
            "the four ports must differ",
        )
    )

    publish_port: Port = Field(5555, description="XSUB port that publishers connect to.")
    subscribe_port: Port = Field(5556, description="XPUB port that subscribers connect to.")
    request_port: Port = Field(5557, description="ROUTER port that requesters connect to.")
    reply_port: Port = Field(5558, description="DEALER port that request servers connect to.")
    high_water_mark: int = Field(
        100_000, ge=1_000, description="Messages queued per peer before ZMQ drops (pub/sub)."
    )
    heartbeat_interval_ms: int = Field(
        1000, ge=100, le=60_000, description="How often the broker publishes a heartbeat."
    )


class SyntheticFeedConfig(_Model):
    """A seeded random walk: the same seed gives the same prices."""

    seed: int = Field(7, description="Seed of the random walk.")
    tick_interval_ms: float = Field(
        50, ge=0.1, le=60_000, description="Time between two quote/trade updates per symbol."
    )
    initial_price: PositiveDecimal = Field(Decimal(100), description="First mid price.")
    volatility_bps: float = Field(
        8, gt=0, le=1000, description="Standard deviation of one step, in basis points."
    )
    spread_bps: float = Field(2, gt=0, le=1000, description="Quoted spread, in basis points.")
    tick_size: PositiveDecimal = Field(Decimal("0.01"), description="Price increment.")
    book_levels: int = Field(
        0,
        ge=0,
        le=50,
        description="Order-book levels a side to simulate, as deltas around each quote (0: none).",
    )


class ReplayFeedConfig(_Model):
    """Replays a CSV file of trades and quotes (see examples/data)."""

    path: str = Field(description="CSV file to replay.")
    speed: float = Field(
        1.0, ge=0, description="Playback speed factor; 0 replays as fast as possible."
    )
    loop: bool = Field(False, description="Start again at the end of the file.")


class AlpacaFeedConfig(_Model):
    """Alpaca's market-data stream v2. Keys come from APCA_API_KEY_ID / APCA_API_SECRET_KEY."""

    source: Literal["iex", "sip", "test"] = Field(
        "iex", description="Alpaca data feed: iex (free), sip (paid), test (always on)."
    )
    url: str | None = Field(
        None,
        pattern=r"^wss?://",
        description="Stream URL; default wss://stream.data.alpaca.markets/v2/<source>.",
    )
    trades: bool = Field(True, description="Subscribe to trades.")
    quotes: bool = Field(True, description="Subscribe to quotes.")
    bars: bool = Field(False, description="Subscribe to Alpaca's minute bars (timeframe 1m).")
    auth_timeout_s: float = Field(
        10, gt=0, le=60, description="Connect, authenticate and subscribe within this time."
    )
    silence_timeout_s: float = Field(
        60,
        gt=0,
        le=3600,
        description=(
            "No data frame (trade, quote or bar) for this long while the symbols are expected "
            "to trade is a silent socket: reconnect, then fail over to the backup. Pings, pongs "
            "and control messages do not count as data."
        ),
    )
    trading_hours: str | None = Field(
        None,
        pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
        description=(
            "Local HH:MM-HH:MM, Monday to Friday, in which the subscribed symbols are expected "
            "to trade, so that silence counts (e.g. 09:30-16:00); unset: always expected."
        ),
    )
    trading_timezone: str = Field(
        "America/New_York", description="IANA time zone of trading_hours."
    )
    heartbeat_s: float = Field(
        10, gt=0, le=300, description="WebSocket ping interval; no pong in half of it is a drop."
    )
    backoff_initial_s: float = Field(1, gt=0, le=60, description="First reconnect delay.")
    backoff_max_s: float = Field(30, gt=0, le=600, description="Longest reconnect delay.")
    long_backoff_s: float = Field(
        60,
        gt=0,
        le=3600,
        description="Least delay after 'connection limit exceeded' (406) or 'too many' (429).",
    )
    max_frame_bytes: int = Field(
        1 << 20, ge=1024, description="Larger frames are dropped (and counted) unread."
    )

    @pydantic.field_validator("trading_timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        return _known_zone(zone)

    @pydantic.field_validator("trading_hours")
    @classmethod
    def _hours_in_order(cls, hours: str | None) -> str | None:
        if hours is not None and hours[:5] >= hours[6:]:
            raise ValueError(f"must start before it ends, within one day (was {hours!r})")
        return hours

    @property
    def stream_url(self) -> str:
        return self.url or f"wss://stream.data.alpaca.markets/v2/{self.source}"


def _replay_rule() -> dict[str, Any]:
    return cel_rule(
        "self.kind != 'replay' || has(self.replay)", "required when kind is replay", ".replay"
    )


class BackupFeedConfig(_Model):
    """A second feed that takes over while the primary is down, and hands back when it recovers.

    A synthetic or replayed backup keeps a demo or a test running; for real money the backup is
    a second real source, e.g. Alpaca's iex feed behind sip (a different endpoint)."""

    model_config = ConfigDict(json_schema_extra=_replay_rule())
    kind: Literal["alpaca", "synthetic", "replay"] = Field(
        "synthetic", description="Backup source."
    )
    synthetic: SyntheticFeedConfig = Field(default_factory=SyntheticFeedConfig)
    replay: ReplayFeedConfig | None = Field(None, description="Required when kind is replay.")
    alpaca: AlpacaFeedConfig = Field(default_factory=AlpacaFeedConfig)
    takeover_after_s: float = Field(
        5, gt=0, le=3600, description="The primary must be down this long before the backup runs."
    )

    @pydantic.model_validator(mode="after")
    def _replay_needs_a_file(self) -> BackupFeedConfig:
        if self.kind == "replay" and self.replay is None:
            raise ValueError("replay: required when kind is replay")
        return self


class FeedConfig(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                *_replay_rule()["x-kubernetes-validations"],
                *cel_rule(
                    "self.kind == 'alpaca' || !has(self.backup)",
                    "only a network feed (kind alpaca) can fail over",
                    ".backup",
                )["x-kubernetes-validations"],
            ]
        }
    )
    kind: Literal["synthetic", "replay", "alpaca"] = Field(
        "synthetic", description="Market-data source."
    )
    synthetic: SyntheticFeedConfig = Field(default_factory=SyntheticFeedConfig)
    replay: ReplayFeedConfig | None = Field(None, description="Required when kind is replay.")
    alpaca: AlpacaFeedConfig = Field(default_factory=AlpacaFeedConfig)
    backup: BackupFeedConfig | None = Field(
        None, description="Optional second feed for failover (with kind alpaca)."
    )

    @pydantic.model_validator(mode="after")
    def _replay_needs_a_file(self) -> FeedConfig:
        if self.kind == "replay" and self.replay is None:
            raise ValueError("replay: required when kind is replay")
        if self.backup is not None and self.kind != "alpaca":
            raise ValueError("backup: only a network feed (kind alpaca) can fail over")
        backup = self.backup
        if (
            backup
            and backup.kind == "alpaca"
            and backup.alpaca.stream_url == self.alpaca.stream_url
        ):
            raise ValueError(
                "backup.alpaca: must be another stream than the primary's (Alpaca allows one "
                "connection per stream)"
            )
        return self


class MarketDataConfig(_Model):
    feed: FeedConfig = Field(default_factory=FeedConfig)
    bar_intervals_s: list[Annotated[int, Field(ge=1, le=86_400)]] = Field(
        default_factory=lambda: [1],
        min_length=1,
        description="Bar timeframes to build from trades, in seconds.",
    )
    max_future_s: float = Field(
        5, gt=0, le=3600, description="Events stamped further ahead of the clock are dropped."
    )
    trade_history: int = Field(
        10_000, ge=1, le=10_000_000, description="Trades kept per symbol in memory."
    )
    bar_history: int = Field(
        1_000, ge=1, le=1_000_000, description="Closed bars kept per symbol and timeframe."
    )
    bars_dir: str | None = Field(
        None, description="If set, closed bars are appended to Parquet files in this folder."
    )


class StrategyConfig(_Model):
    class_path: str = Field(
        "components.strategy.sma_cross:SmaCross",
        pattern=r"^([A-Za-z_][\w.]*|[^:]+\.py):[A-Za-z_]\w*$",
        description="module:Class of the strategy to run, or path/to/file.py:Class.",
    )
    params: dict[str, Any] = Field(
        default_factory=lambda: {"fast": 3, "slow": 8},
        description="Parameters handed to the strategy's params model.",
    )
    bar_interval_s: int = Field(1, ge=1, description="Timeframe of the bars the strategy reads.")
    order_quantity: PositiveDecimal = Field(Decimal(10), description="Shares per signal.")
    risk_timeout_ms: int = Field(
        500, ge=10, le=60_000, description="A risk check not answered in time counts as rejected."
    )


class RiskLimits(_Model):
    """Pre-trade limits. Exposure counts approved-but-unfilled orders as if they filled; an order
    that does not increase exposure is never refused by a position, notional or concentration
    limit, so that a position above a lowered limit can always be reduced."""

    max_position: PositiveDecimal = Field(
        Decimal(100), description="Largest absolute position per symbol, in shares."
    )
    max_notional: PositiveDecimal = Field(
        Decimal(100_000),
        description="Largest gross exposure (sum of |position| x price, with pending orders).",
    )
    max_concentration_pct: Decimal = Field(
        Decimal(100),
        gt=0,
        le=1000,
        allow_inf_nan=False,
        description="Largest exposure in one symbol, in percent of equity.",
    )
    max_open_orders: int = Field(
        20, ge=1, le=10_000, description="Approved orders not yet filled or closed, at most."
    )
    max_order_quantity: PositiveDecimal = Field(
        Decimal(1_000), description="Largest quantity of one order, in shares."
    )
    max_order_value: PositiveDecimal = Field(
        Decimal(50_000), description="Largest value of one order (quantity x price)."
    )
    price_collar_bps: Decimal = Field(
        Decimal(500),
        gt=0,
        le=10_000,
        allow_inf_nan=False,
        description="A limit price farther than this from the last trade (or mid) is refused.",
    )
    allowed_symbols: list[Symbol] | None = Field(
        None, description="Symbols orders may be sent for (default: every symbol of the spec)."
    )


class SessionConfig(_Model):
    """The trading day: daily P&L and a daily-loss trip reset at its start, in exchange time."""

    timezone: str = Field("America/New_York", description="IANA time zone of the exchange.")
    start: str = Field(
        "09:30",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Local time (HH:MM) at which a new session starts.",
    )

    @pydantic.field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        return _known_zone(zone)


class BreakerConfig(_Model):
    """The circuit breaker: what trips it and how it recovers."""

    max_daily_loss: PositiveDecimal = Field(
        Decimal(5_000), description="Trip when the session's P&L falls to minus this amount."
    )
    max_drawdown_pct: Decimal = Field(
        Decimal(3),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Trip when equity falls this far below its peak within drawdown_window_s.",
    )
    drawdown_window_s: float = Field(
        300, gt=0, le=86_400, description="Window of the rapid-drawdown trigger."
    )
    max_move_pct: Decimal = Field(
        Decimal(5),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Trip when a symbol's mid moves this far within volatility_window_s.",
    )
    volatility_window_s: float = Field(
        60, gt=0, le=86_400, description="Window of the volatility trigger."
    )
    recovery_wait_s: float = Field(
        60, gt=0, le=86_400, description="Time open before a test (half-open) period."
    )
    half_open_test_s: float = Field(
        60, gt=0, le=86_400, description="Half-open time without a new trip before closing."
    )
    half_open_size_pct: Decimal = Field(
        Decimal(25),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="While half-open, orders above this share of max_order_quantity are refused.",
    )
    allow_reducing_when_open: bool = Field(
        True, description="While open, let orders pass that only reduce a position."
    )


class StopsConfig(_Model):
    """Exits per position, in percent of the average entry price; unset means no such stop."""

    stop_loss_pct: Decimal | None = Field(
        None, gt=0, le=100, allow_inf_nan=False, description="Exit at this loss from entry."
    )
    trailing_stop_pct: Decimal | None = Field(
        None,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Exit at this fall from the best price since entry.",
    )
    take_profit_pct: Decimal | None = Field(
        None, gt=0, le=1000, allow_inf_nan=False, description="Exit at this gain from entry."
    )


class RiskConfig(_Model):
    limits: RiskLimits = Field(default_factory=RiskLimits)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    stops: StopsConfig = Field(default_factory=StopsConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    initial_cash: PositiveDecimal = Field(Decimal(100_000), description="Starting cash.")
    approval_timeout_ms: int = Field(
        2000,
        ge=100,
        le=600_000,
        description="An approved order that execution does not acknowledge in time expires.",
    )
    snapshot_every: int = Field(
        10_000,
        ge=10,
        le=10_000_000,
        description="Records between two state snapshots (older log segments are then deleted).",
    )


Probability = Annotated[float, Field(ge=0, le=1)]


class SimulatedFaultsConfig(_Model):
    """Faults the simulated venue injects (tests, drills): each a probability per request or
    per report, drawn from a seeded generator so that a run can be replayed."""

    seed: int = Field(0, description="Seed of the fault generator.")
    rate_limit: Probability = Field(0, description="A request starts a burst of 429s.")
    burst: int = Field(3, ge=1, le=1000, description="429s in a burst.")
    retry_after_s: float = Field(0.05, ge=0, le=60, description="What a 429 says to wait.")
    server_error: Probability = Field(0, description="A request fails with a 5xx, not acted on.")
    dropped: Probability = Field(0, description="A request's connection drops, not acted on.")
    accept_then_timeout: Probability = Field(
        0, description="An order is taken, but its answer never comes."
    )
    duplicate_report: Probability = Field(0, description="A report is delivered twice.")
    reorder_report: Probability = Field(0, description="A report is held back behind the next.")


class SimulatedVenueConfig(_Model):
    """The simulated exchange's fill model (the same in live runs, backtests and tests)."""

    latency_ms: float = Field(
        0, ge=0, le=10_000, description="Delay from submit until the order reaches the book."
    )
    fee_per_share: Decimal = Field(Decimal(0), ge=0, description="Fee charged per share filled.")
    fee_per_order: Decimal = Field(
        Decimal(0), ge=0, allow_inf_nan=False, description="Fixed fee charged on every fill."
    )
    fee_rate: Decimal = Field(
        Decimal(0),
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description="Fee as a fraction of each fill's value (0.001 is 10 basis points).",
    )
    slippage_bps: Decimal = Field(
        Decimal(0),
        ge=0,
        le=1000,
        description="Price worsened for orders that take liquidity, in basis points.",
    )
    respect_quote_size: bool = Field(
        False,
        description="Take at most the displayed size per quote (partial fills); "
        "otherwise a marketable order fills completely at the quote.",
    )
    tick_size: PositiveDecimal = Field(Decimal("0.01"), description="Price increment.")
    faults: SimulatedFaultsConfig | None = Field(
        None, description="Inject faults around the simulated venue (off when absent)."
    )


class AlpacaVenueConfig(_Model):
    """Alpaca's Trading API. Keys come from APCA_API_KEY_ID / APCA_API_SECRET_KEY only."""

    paper_url: str = Field(
        "https://paper-api.alpaca.markets", description="REST base URL of paper trading."
    )
    live_url: str = Field(
        "https://api.alpaca.markets", description="REST base URL of live trading."
    )
    request_timeout_s: float = Field(
        5, gt=0, le=60, description="An unanswered request counts as outcome unknown after this."
    )
    poll_interval_s: float = Field(
        2,
        gt=0,
        le=300,
        description="How often open orders are polled while the trade_updates stream is down.",
    )
    silence_timeout_s: float = Field(
        15,
        gt=0,
        le=3600,
        description=(
            "While any order works, no trade_updates data frame for this long (pings and pongs "
            "do not count) makes the engine poll the working orders over REST; if the poll finds "
            "an update the stream never sent, the stream is reconnected."
        ),
    )


class RetryConfig(_Model):
    initial_backoff_ms: float = Field(
        50, gt=0, le=60_000, description="First retry delay (before jitter)."
    )
    max_backoff_ms: float = Field(
        5000, gt=0, le=600_000, description="Cap of the exponential retry delay."
    )
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts per request before giving up.")


class SlippageConfig(_Model):
    """The pre-trade estimate: half the spread plus square-root impact on bar volatility/volume."""

    impact_coefficient: float = Field(
        0.7, ge=0, le=10, description="Scale of the square-root impact term."
    )
    window_bars: int = Field(
        60, ge=2, le=10_000, description="Bars the volatility and volume averages weigh."
    )


class AlgoConfig(_Model):
    """Large orders worked over time as child orders, each checked by the risk manager."""

    kind: Literal["none", "twap", "vwap"] = Field(
        "none", description="none, twap (equal slices) or vwap (slices along volume_curve)."
    )
    min_quantity: PositiveDecimal = Field(
        Decimal(1000), description="Orders of at least this many shares are worked as parents."
    )
    duration_s: float = Field(60, gt=0, le=86_400, description="Time over which slices are sent.")
    slices: int = Field(10, ge=2, le=1000, description="Number of child orders.")
    volume_curve: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list,
        description="VWAP: relative volume of each slice (as many as slices); empty means the "
        "U shape of a trading day (more at the open and the close).",
    )

    @pydantic.model_validator(mode="after")
    def _curve_matches_slices(self) -> AlgoConfig:
        if self.volume_curve and len(self.volume_curve) != self.slices:
            raise ValueError(
                f"volume_curve: has {len(self.volume_curve)} values, slices is {self.slices}"
            )
        return self


class ExecutionConfig(_Model):
    model_config = ConfigDict(
        json_schema_extra=transition_rule(
            "self.venue != 'alpaca-live' || oldSelf.venue == 'alpaca-live' || self.live_confirmed",
            "switching a running system to alpaca-live (real money) needs "
            "execution.live_confirmed: true in the same change",
            field=".venue",
        )
    )

    venue: Literal["simulated", "alpaca-paper", "alpaca-live"] = Field(
        "simulated", description="Where orders are sent."
    )
    live_confirmed: bool = Field(
        False,
        description="Set to true in the change that moves a running TradingSystem to "
        "alpaca-live: the API server refuses that switch without it, so that real money is "
        "never traded by an edit made for paper.",
    )
    simulated: SimulatedVenueConfig = Field(default_factory=SimulatedVenueConfig)
    alpaca: AlpacaVenueConfig = Field(default_factory=AlpacaVenueConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    slippage: SlippageConfig = Field(default_factory=SlippageConfig)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    rate_limit_per_minute: int = Field(
        200, ge=1, le=100_000, description="Requests per minute to the venue (token bucket)."
    )
    rate_limit_burst: int = Field(
        10, ge=1, le=10_000, description="Requests that may be sent back to back (bucket size)."
    )
    cancel_timeout_s: float = Field(
        5, gt=0, le=120, description="Bound on cancelling working orders at shutdown."
    )


# --- Kubernetes only: how the operator runs each component (local runs ignore these) ----------

Quantity = Annotated[
    str,
    Field(
        pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$",
        description="A Kubernetes quantity such as 250m, 1, 512Mi or 10Gi.",
    ),
]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
# Variables the operator sets itself: the runtime settings and the Alpaca credentials.
RESERVED_ENV_PREFIXES = ("TS_", "APCA_")


class EnvVar(_Model):
    name: EnvName = Field(description="Variable name; TS_* and APCA_* are set by the operator.")
    value: str = Field(max_length=4096, description="Literal value (use a Secret for secrets).")

    @pydantic.field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.startswith(RESERVED_ENV_PREFIXES):
            raise ValueError(f"{name} is set by the operator (reserved: TS_*, APCA_*)")
        return name


class ResourceAmounts(_Model):
    cpu: Quantity | None = Field(None, description="CPU, e.g. 100m.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 256Mi.")


class ComputeResources(_Model):
    requests: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(cpu="100m", memory="128Mi"),
        description="What the scheduler reserves for the container.",
    )
    limits: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(memory="512Mi"),
        description="Hard caps; no CPU limit by default (throttling adds latency).",
    )


class PodConfig(_Model):
    """How one component's pod runs on Kubernetes."""

    model_config = ConfigDict(
        json_schema_extra=cel_rule(
            "self.env.all(e, self.env.exists_one(f, f.name == e.name))",
            "names must be unique",
            field=".env",
        )
    )
    image: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="Container image; default: spec.image, else the operator's own image.",
    )
    resources: ComputeResources = Field(default_factory=ComputeResources)
    env: list[EnvVar] = Field(
        default_factory=list, max_length=64, description="Extra environment variables."
    )

    @pydantic.field_validator("env")
    @classmethod
    def _env_unique(cls, env: list[EnvVar]) -> list[EnvVar]:
        names = [variable.name for variable in env]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"env: names must be unique (repeated: {', '.join(repeated)})")
        return env


class ScalablePodConfig(PodConfig):
    """A component that may be paused. One replica at most: a second market-data or strategy
    pod would publish every quote or signal twice on the bus."""

    model_config = ConfigDict(
        json_schema_extra=cel_rule(
            "self.env.all(e, self.env.exists_one(f, f.name == e.name))",
            "names must be unique",
            field=".env",
        )
    )
    replicas: int = Field(1, ge=0, le=1, description="1 runs the component, 0 pauses it.")


class PodsConfig(_Model):
    """Per component. Risk and execution keep their state on a volume and the broker is the
    single hub, so each runs exactly one pod; execution is scaled to zero only by a halt."""

    broker: PodConfig = Field(default_factory=PodConfig)
    marketdata: ScalablePodConfig = Field(default_factory=ScalablePodConfig)
    strategy: ScalablePodConfig = Field(default_factory=ScalablePodConfig)
    risk: PodConfig = Field(default_factory=PodConfig)
    execution: PodConfig = Field(default_factory=PodConfig)


class StorageConfig(_Model):
    """The volumes (PVCs) that hold risk's state log and execution's order log. A PVC may grow
    (where its class allows expansion) but never shrink or change class: both are refused when
    the TradingSystem is updated (`quantity` is the Kubernetes CEL quantity library, 1.29+)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                *transition_rule(
                    "quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",
                    "volumes cannot shrink (a PVC's storage request may only grow)",
                    field=".size",
                )["x-kubernetes-validations"],
                *transition_rule(
                    "(has(self.storage_class) ? self.storage_class : '')"
                    " == (has(oldSelf.storage_class) ? oldSelf.storage_class : '')",
                    "is fixed once the volumes exist (a PVC's class cannot change)",
                    field=".storage_class",
                )["x-kubernetes-validations"],
            ]
        }
    )

    size: Quantity = Field("1Gi", max_length=32, description="Size of each volume.")
    storage_class: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="StorageClass of the volumes; default: the cluster's default class.",
    )
    retain_on_delete: bool = Field(
        True,
        description="Keep the volumes (positions, cash, orders) when the TradingSystem is deleted.",
    )


class MonitoringConfig(_Model):
    service_monitor: bool = Field(
        False, description="Create a Prometheus Operator ServiceMonitor for every component."
    )
    scrape_interval_s: int = Field(15, ge=5, le=300, description="Scrape interval.")


class TradingSystemSpec(_Model):
    """The whole system: what to trade, from which data, with which limits, on which venue."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                *cel_rule(
                    "self.strategy.bar_interval_s in self.marketdata.bar_intervals_s",
                    "must be one of marketdata.bar_intervals_s",
                    field=".strategy.bar_interval_s",
                )["x-kubernetes-validations"],
                *cel_rule(
                    "!has(self.risk) || !has(self.risk.limits)"
                    " || !has(self.risk.limits.allowed_symbols)"
                    " || self.risk.limits.allowed_symbols.all(s, s in self.symbols)",
                    "must all be in symbols",
                    field=".risk.limits.allowed_symbols",
                )["x-kubernetes-validations"],
            ]
        }
    )

    symbols: list[Symbol] = Field(
        min_length=1,
        max_length=500,
        description="Symbols to trade.",
        json_schema_extra={"x-kubernetes-list-type": "set"},  # the API server refuses repeats
    )
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    marketdata: MarketDataConfig = Field(default_factory=MarketDataConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    halted: bool = Field(False, description="Stop sending orders; execution is scaled to zero.")
    resume_policy: Literal["manual", "automatic"] = Field(
        "manual",
        description=(
            "After the breaker trips: manual keeps the system halted (spec.halted is set) until "
            "someone clears spec.halted; automatic resumes once the breaker is half-open or closed."
        ),
    )
    breaker_stale_after_s: float = Field(
        30,
        ge=1,
        le=3600,
        description=(
            "On Kubernetes the risk manager refreshes its breaker report every third of this; a "
            "report older than this (before the first one: the system's age) means the breaker "
            "is unknown, and execution is halted (reason BreakerStale) until reports return."
        ),
    )
    image: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="Container image of every component; default: the operator's own image.",
    )
    pods: PodsConfig = Field(default_factory=PodsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    credentials_secret: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description=(
            "Secret whose keys APCA_API_KEY_ID and APCA_API_SECRET_KEY become the environment of "
            "market data and execution (Alpaca feeds and venues)."
        ),
    )

    @pydantic.field_validator("symbols")
    @classmethod
    def _symbols_unique(cls, symbols: list[str]) -> list[str]:
        seen: set[str] = set()
        duplicates = sorted({s for s in symbols if s in seen or seen.add(s)})
        if duplicates:
            raise ValueError(f"symbols must be unique (repeated: {', '.join(duplicates)})")
        return symbols

    @pydantic.model_validator(mode="after")
    def _allowed_symbols_are_traded(self) -> TradingSystemSpec:
        allowed = self.risk.limits.allowed_symbols
        unknown = sorted(set(allowed or ()) - set(self.symbols))
        if unknown:
            raise ValueError(
                f"risk.limits.allowed_symbols: {', '.join(unknown)} not in symbols {self.symbols}"
            )
        return self

    @pydantic.model_validator(mode="after")
    def _strategy_bars_are_built(self) -> TradingSystemSpec:
        if self.strategy.bar_interval_s not in self.marketdata.bar_intervals_s:
            raise ValueError(
                f"strategy.bar_interval_s: {self.strategy.bar_interval_s} is not one of "
                f"marketdata.bar_intervals_s {self.marketdata.bar_intervals_s}"
            )
        ports = self.broker
        used = {ports.publish_port, ports.subscribe_port, ports.request_port, ports.reply_port}
        if len(used) < 4:
            raise ValueError("broker: the four ports must differ")
        return self


class Manifest(_Model):
    """A `TradingSystem` document as `kubectl apply` takes it."""

    model_config = ConfigDict(extra="allow", frozen=True)
    apiVersion: Literal["trading.dev/v1alpha1"]
    kind: Literal["TradingSystem"]
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: TradingSystemSpec


def parse_spec(document: Any, source: str = "<config>") -> tuple[str, TradingSystemSpec]:
    """Validate a bare spec or a whole manifest; return the system's name and its spec."""
    if not isinstance(document, dict):
        raise ConfigError(source, [f"(root): expected a mapping, found {type(document).__name__}"])
    try:
        if "apiVersion" in document or "kind" in document:
            manifest = Manifest.model_validate(document)
            name = str(manifest.metadata.get("name") or "tradingsystem")
            return name, manifest.spec
        return "tradingsystem", TradingSystemSpec.model_validate(document)
    except pydantic.ValidationError as exc:
        raise ConfigError(source, [_describe(error) for error in exc.errors()]) from exc


def load_spec(path: str | Path) -> tuple[str, TradingSystemSpec]:
    """Read a YAML (or JSON) file holding a spec or a manifest."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot read: {exc.strerror}"]) from exc
    try:
        # Strictly UTF-8 (YAML 1.2's and JSON's encoding), whatever the locale says.
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = f"byte 0x{data[exc.start]:02x} at offset {exc.start}: {exc.reason}"
        raise ConfigError(
            str(path), [f"line {line}, column {column}: not UTF-8 text ({problem})"]
        ) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a control one)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problem = (
            f"{exc.reason} (#x{exc.character:04x})"
            if isinstance(exc.character, int)
            else exc.reason
        )
        raise ConfigError(
            str(path), [f"line {line}, column {column}: not valid YAML: {problem}"]
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(str(path), [f"{where}: not valid YAML: {problem}"]) from exc
    return parse_spec(document, str(path))


def _describe(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(root)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in {"missing", "extra_forbidden", "value_error"}:
        message += f" (was {error['input']!r})"
    return f"{path}: {message}"
