"""The position book: opening, increasing, reducing, closing and flipping positions, fees, marks,
and the accounting identity (equity - initial cash == realized + unrealized) for any fills."""

from __future__ import annotations

import itertools
from decimal import Decimal, localcontext
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.core.errors import FillRejected
from components.core.events import Fill, Side
from components.core.money import MONEY_CONTEXT
from components.risk.positions import SHOWN_DIGITS, PositionBook, shown

D = Decimal
_ids = itertools.count(1)


def fill(side: Side, quantity: str | int, price: str | int, fee: str = "0", symbol: str = "AAPL"):  # type: ignore[no-untyped-def]
    return Fill(
        fill_id=f"f{next(_ids)}",
        client_order_id="c1",
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        venue="test",
        ts_event_ns=1,
    )


def book_with(*fills: Fill, cash: str = "10000") -> PositionBook:
    book = PositionBook(D(cash))
    for f in fills:
        book.apply_fill(f)
    return book


def test_apply_fill_when_opening_long_then_quantity_cost_and_cash_follow() -> None:
    book = book_with(fill(Side.BUY, 10, 100))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.avg_price, holding.realized_pnl) == (D(10), D(100), D(0))
    assert book.cash == D(9000)


def test_apply_fill_when_increasing_then_average_price_is_vwap() -> None:
    book = book_with(fill(Side.BUY, 10, 100), fill(Side.BUY, 30, 104))
    assert book.holdings["AAPL"].avg_price == D(103)
    assert book.holdings["AAPL"].cost == D(4120)


def test_apply_fill_when_reducing_then_realizes_against_average_and_keeps_it() -> None:
    book = book_with(fill(Side.BUY, 10, 100), fill(Side.BUY, 30, 104), fill(Side.SELL, 15, 110))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.avg_price, holding.realized_pnl) == (D(25), D(103), D(105))


def test_apply_fill_when_closing_then_flat_with_all_pnl_realized() -> None:
    book = book_with(fill(Side.BUY, 40, 103), fill(Side.SELL, 15, 110), fill(Side.SELL, 25, 100))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.cost, holding.avg_price) == (D(0), D(0), D(0))
    assert holding.realized_pnl == D(105) - D(75)
    assert book.cash == D(10000) + D(30)


def test_apply_fill_when_flipping_through_zero_then_closes_and_opens_at_fill_price() -> None:
    book = book_with(fill(Side.BUY, 10, 100), fill(Side.SELL, 25, 90))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.avg_price, holding.realized_pnl) == (D(-15), D(90), D(-100))


def test_apply_fill_when_covering_a_short_then_realizes_the_fall() -> None:
    book = book_with(fill(Side.SELL, 10, 50), fill(Side.BUY, 4, 45))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.avg_price, holding.realized_pnl) == (D(-6), D(50), D(20))
    assert book.cash == D(10000) + D(500) - D(180)


def test_apply_fill_when_fee_paid_then_cash_and_realized_pnl_drop_by_it() -> None:
    book = book_with(fill(Side.BUY, 10, 100, fee="1.25"))
    assert book.cash == D("8998.75")
    assert book.realized_pnl == D("-1.25")
    assert book.fees == D("1.25")


def test_apply_fill_when_average_does_not_divide_then_identity_stays_exact() -> None:
    book = book_with(fill(Side.BUY, 1, 3), fill(Side.BUY, 1, 3), fill(Side.BUY, 1, 4))
    book.apply_fill(fill(Side.SELL, 1, 5))
    assert book.holdings["AAPL"].exact_realized_pnl == Fraction(5, 3)
    assert book.holdings["AAPL"].realized_pnl == D("1." + "6" * 38 + "7")  # shown to 40 digits
    marks = {"AAPL": D("4.5")}
    assert book.equity(marks) - book.initial_cash == book.realized_pnl + book.unrealized_pnl(
        marks=marks
    )


def test_equity_when_marked_then_cash_plus_positions_at_mark() -> None:
    book = book_with(fill(Side.BUY, 10, 100), fill(Side.SELL, 5, 20, symbol="MSFT"))
    book.mark("AAPL", D(105))
    book.mark("MSFT", D(22))
    assert book.equity() == D(9000) + D(100) + D(1050) - D(110)
    assert book.unrealized_pnl("AAPL") == D(50)
    assert book.unrealized_pnl("MSFT") == D(-10)
    assert book.unrealized_pnl() == D(40)


def test_equity_when_symbol_has_no_mark_then_it_counts_at_cost() -> None:
    book = book_with(fill(Side.BUY, 10, 100))
    assert book.equity() == D(10000)
    assert book.unrealized_pnl("AAPL") == D(0)


@pytest.mark.parametrize(
    ("quantity", "price", "fee"),
    [("0", "1", "0"), ("1", "0", "0"), ("1", "1", "-1"), ("NaN", "1", "0")],
)
def test_apply_fill_when_fill_malformed_then_value_error(
    quantity: str, price: str, fee: str
) -> None:
    book = PositionBook(D(100))
    with pytest.raises(ValueError, match="quantity and price must be > 0 and fee >= 0"):
        book.apply_fill(fill(Side.BUY, quantity, price, fee=fee))
    assert book.cash == D(100) and not book.holdings


def test_snapshot_when_symbols_traded_then_positions_sorted_by_symbol() -> None:
    book = book_with(fill(Side.BUY, 2, 10, symbol="MSFT"), fill(Side.BUY, 1, 10, symbol="AAPL"))
    snapshot = book.snapshot(ts_event_ns=7)
    assert [(p.symbol, p.quantity, p.ts_event_ns) for p in snapshot] == [
        ("AAPL", D(1), 7),
        ("MSFT", D(2), 7),
    ]


# --- properties -----------------------------------------------------------------------------

prices = st.decimals(min_value=D("0.01"), max_value=D(1000), places=2)
fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=500),
        prices,
        st.decimals(min_value=D(0), max_value=D(5), places=2),
        st.sampled_from(["AAPL", "MSFT"]),
    ),
    max_size=40,
)


@given(fills, prices, prices)
def test_book_when_any_fills_then_equity_change_is_realized_plus_unrealized(
    trades: list[tuple[Side, int, Decimal, Decimal, str]], aapl: Decimal, msft: Decimal
) -> None:
    book = PositionBook(D(100_000))
    flows, held = D(0), {"AAPL": D(0), "MSFT": D(0)}
    for side, quantity, price, fee, symbol in trades:
        book.apply_fill(fill(side, quantity, price, fee=str(fee), symbol=symbol))
        flows -= side.sign * quantity * price + fee
        held[symbol] += side.sign * quantity
    marks = {"AAPL": aapl, "MSFT": msft}
    change = book.equity(marks) - book.initial_cash
    assert change == flows + sum(held[s] * marks[s] for s in held)
    assert change == book.realized_pnl + book.unrealized_pnl(marks=marks)
    # The form: realized (before fees) + unrealized + fees (a cost, so negative).
    assert change == book.gross_realized_pnl + book.unrealized_pnl(marks=marks) - book.fees
    assert book.fees == sum((fee for *_, fee, _ in trades), D(0))
    assert {s: book.quantity(s) for s in held} == held


marks_or_none = st.one_of(st.none(), st.decimals(min_value=D("1e-9"), max_value=D("1e9"), places=9))


@given(fills, marks_or_none, marks_or_none)
def test_equity_when_any_fills_and_marks_then_the_exact_fraction_as_shown(
    trades: list[tuple[Side, int, Decimal, Decimal, str]],
    aapl: Decimal | None,
    msft: Decimal | None,
) -> None:
    """Marked symbols are valued in Decimal (fast), a symbol without a mark at its cost (a
    fraction): the value and its spelling are those of the sum in fractions."""
    book = PositionBook(D(100_000))
    for side, quantity, price, fee, symbol in trades:
        book.apply_fill(fill(side, quantity, price, fee=str(fee), symbol=symbol))
    marks = {s: m for s, m in (("AAPL", aapl), ("MSFT", msft)) if m is not None}
    exact = Fraction(book.cash) + sum(
        (
            Fraction(h.quantity) * Fraction(marks[s]) if s in marks else h.exact_cost
            for s, h in book.holdings.items()
        ),
        Fraction(0),
    )
    assert str(book.equity(marks)) == str(shown(exact))


@given(
    st.integers(min_value=1, max_value=500),
    st.integers(min_value=1, max_value=500),
    prices,
    prices,
    st.decimals(min_value=D(0), max_value=D(5), places=2),
)
def test_book_when_fill_flips_position_then_same_as_close_then_open(
    held: int, beyond: int, entry: Decimal, exit_price: Decimal, fee: Decimal
) -> None:
    one = book_with(fill(Side.BUY, held, entry), cash="100000")
    one.apply_fill(fill(Side.SELL, held + beyond, exit_price, fee=str(fee)))
    two = book_with(fill(Side.BUY, held, entry), cash="100000")
    two.apply_fill(fill(Side.SELL, held, exit_price, fee=str(fee)))
    two.apply_fill(fill(Side.SELL, beyond, exit_price))
    assert one.holdings == two.holdings
    assert one.cash == two.cash


# --- exact at every size (regressions) ---------------------------------------------------------


def test_apply_fill_when_a_huge_partial_close_then_booked_exactly() -> None:
    """The cost a close of 1e9 removes from 3e9 @ 1e9 is 1e18: rounding it to 1e-10 needed more
    than 28 digits and raised after cash had changed."""
    book = book_with(fill(Side.BUY, "3e9", "1e9"), cash="1e19")
    book.apply_fill(fill(Side.SELL, "1e9", "1e9"))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.cost, holding.realized_pnl) == (D("2e9"), D("2e18"), 0)
    assert book.cash == D("1e19") - D("2e18")


def test_avg_price_when_a_tiny_position_is_reduced_then_unchanged() -> None:
    """A cost rounded to 1e-10 moved the average of 1e-9 @ 1.05 to 1.10."""
    book = book_with(fill(Side.BUY, "2e-9", "1.05"))
    book.apply_fill(fill(Side.SELL, "1e-9", "1.07"))
    assert book.holdings["AAPL"].avg_price == D("1.05")
    assert book.holdings["AAPL"].exact_realized_pnl == Fraction(2, 10**11)


def test_realized_pnl_when_thousands_of_partial_closes_then_no_drift() -> None:
    """An average of 5/3 closed 3 at a time at 2 realizes exactly 1 per close."""
    book = book_with(fill(Side.BUY, 10_000, 1), fill(Side.BUY, 20_000, 2), cash="100000")
    for _ in range(9_999):
        book.apply_fill(fill(Side.SELL, 3, 2))
    holding = book.holdings["AAPL"]
    assert (holding.quantity, holding.exact_cost) == (D(3), Fraction(5))
    assert holding.realized_pnl == D(9_999)


def test_identity_when_sizes_at_the_documented_bounds_then_exact() -> None:
    book = PositionBook(D("1e30"))
    book.apply_fill(fill(Side.BUY, "999999999999999.999999999999", "999999999999.999999999999"))
    book.apply_fill(fill(Side.SELL, "333333333333333.333333333333", "999999999999.000000000001"))
    marks = {"AAPL": D("999999999998.5")}
    holding = book.holdings["AAPL"]
    with localcontext(MONEY_CONTEXT):
        change = book.equity(marks) - book.initial_cash  # both exact decimals
        assert Fraction(change) == holding.exact_realized_pnl + holding.exact_unrealized_pnl(
            marks["AAPL"]
        )
        shown_sum = book.realized_pnl + book.unrealized_pnl(marks=marks)
        # 1/3s are shown to 40 digits: each within half a unit of its 40th digit.
        assert abs(change - shown_sum) <= abs(change).scaleb(-SHOWN_DIGITS + 1)


@pytest.mark.parametrize("value", [1.5, 2, "3"], ids=["float", "int", "str"])
def test_apply_fill_when_quantity_is_not_a_decimal_then_fill_rejected(value: object) -> None:
    book = PositionBook(D(100))
    bad = msgspec.structs.replace(fill(Side.BUY, 1, 1), quantity=value)
    with pytest.raises(FillRejected, match="quantity must be a Decimal"):
        book.apply_fill(bad)
    assert book.cash == D(100) and not book.holdings and book.fill_count == 0


@pytest.mark.parametrize(
    ("quantity", "price", "problem"),
    [
        ("1e16", "1", "quantity 1E\\+16 is above the maximum 1E\\+15"),
        ("1", "2e12", "price 2E\\+12 is above the maximum 1E\\+12"),
        ("1e-13", "1", "quantity 1E-13 has more than 12 decimal places"),
    ],
)
def test_apply_fill_when_outside_the_bounds_then_rejected_and_book_untouched(
    quantity: str, price: str, problem: str
) -> None:
    book = book_with(fill(Side.BUY, 1, 1))
    before = (book.cash, dict(book.holdings), book.fill_count)
    with pytest.raises(FillRejected, match=problem):
        book.apply_fill(fill(Side.SELL, quantity, price))
    assert (book.cash, dict(book.holdings), book.fill_count) == before
