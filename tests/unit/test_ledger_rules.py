"""Postings of money movements (SPEC §6) and the double-entry checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.core.errors import LedgerError
from settlement.core.fees import DEFAULT_FEE_PLANS, FeePlan, load_fee_plans
from settlement.core.money import Money, exponent
from settlement.core.movements import Funding, Refund, Release
from settlement.ledger.posting import Posting, check_balanced
from settlement.ledger.rules import postings_for

PLANS = load_fee_plans(DEFAULT_FEE_PLANS)


def jpy(amount: int | str) -> Money:
    return Money(Decimal(amount), "JPY")


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def lines(postings: list[Posting]) -> list[tuple[str, str, Money]]:
    return [(p.account, p.side, p.amount) for p in postings]


def test_funding_with_a_client_fee() -> None:
    # Item 10,000 on the flat plan: client fee total C = 550, of which c = 500
    # is revenue and C − c = 50 consumption tax; the payment A is 10,550.
    funding = Funding("m1", jpy(10_000), jpy(500), jpy(50), "pay-9")
    assert lines(postings_for("job-42", "c-1", [funding])) == [
        ("assets:safeguarded_cash", "debit", jpy(10_550)),
        ("liabilities:escrow:job-42", "credit", jpy(10_000)),
        ("revenue:platform_fees:client", "credit", jpy(500)),
        ("liabilities:consumption_tax", "credit", jpy(50)),
    ]


def test_funding_without_a_client_fee_omits_the_zero_lines() -> None:
    funding = Funding("m1", jpy(11_000), jpy(0), jpy(0), "pay-9")
    assert lines(postings_for("job-42", "c-1", [funding])) == [
        ("assets:safeguarded_cash", "debit", jpy(11_000)),
        ("liabilities:escrow:job-42", "credit", jpy(11_000)),
    ]


def test_release_with_fee_tax_and_withholding() -> None:
    # Tiered plan, G 110,000 with 10,000 tax: fee 21,000, fee tax 2,100,
    # W 10,210, net 110,000 − 21,000 − 2,100 − 10,210 = 76,690.
    release = Release("m1", "w-7", jpy(110_000), jpy(21_000), jpy(2_100), jpy(10_210),
                      jpy(76_690))
    assert lines(postings_for("job-42", "c-1", [release])) == [
        ("liabilities:escrow:job-42", "debit", jpy(110_000)),
        ("liabilities:worker_payable:w-7", "credit", jpy(76_690)),
        ("revenue:platform_fees:worker", "credit", jpy(21_000)),
        ("liabilities:consumption_tax", "credit", jpy(2_100)),
        ("liabilities:withholding_tax:c-1", "credit", jpy(10_210)),
    ]


def test_release_without_fee_tax_or_withholding_omits_the_zero_lines() -> None:
    # usd_standard, G 0.09: fee 0.009 → 0.00, no tax, no withholding.
    release = Release("m1", "w-7", usd("0.09"), usd("0.00"), usd("0.00"), usd("0"), usd("0.09"))
    assert lines(postings_for("job-42", "c-1", [release])) == [
        ("liabilities:escrow:job-42", "debit", usd("0.09")),
        ("liabilities:worker_payable:w-7", "credit", usd("0.09")),
    ]


def test_refund() -> None:
    refund = Refund("m1", usd("250.50"))
    assert lines(postings_for("job-42", "c-1", [refund])) == [
        ("liabilities:escrow:job-42", "debit", usd("250.50")),
        ("liabilities:client_refundable:c-1", "credit", usd("250.50")),
    ]


def test_movements_of_one_event_are_posted_together() -> None:
    # A dispute split: 6,000 released (fee 1,200, tax 120), 4,000 refunded.
    release = Release("m1", "w-7", jpy(6_000), jpy(1_200), jpy(120), jpy(0), jpy(4_680))
    refund = Refund("m1", jpy(4_000))
    assert lines(postings_for("job-42", "c-1", [release, refund])) == [
        ("liabilities:escrow:job-42", "debit", jpy(6_000)),
        ("liabilities:worker_payable:w-7", "credit", jpy(4_680)),
        ("revenue:platform_fees:worker", "credit", jpy(1_200)),
        ("liabilities:consumption_tax", "credit", jpy(120)),
        ("liabilities:escrow:job-42", "debit", jpy(4_000)),
        ("liabilities:client_refundable:c-1", "credit", jpy(4_000)),
    ]


@pytest.mark.parametrize(
    ("movements", "code"),
    [
        # Net should be 8,580: the parts do not add up to the gross.
        ([Release("m1", "w-7", jpy(11_000), jpy(2_200), jpy(220), jpy(0), jpy(8_600))],
         "ledger_unbalanced"),
        ([Refund("m1", jpy(100)), Refund("m2", usd("1.00"))], "ledger_cross_currency"),
    ],
)
def test_postings_for_refuses_bad_movements(movements: list[Release | Refund], code: str) -> None:
    with pytest.raises(LedgerError) as raised:
        postings_for("job-42", "c-1", movements)
    assert raised.value.code == code


CASH, ESCROW = "assets:safeguarded_cash", "liabilities:escrow:job-42"

# Postings → the code check_balanced refuses them with.
UNBALANCED = [
    ([Posting(CASH, "debit", jpy(100)), Posting(ESCROW, "credit", jpy(99))], "ledger_unbalanced"),
    ([Posting(CASH, "debit", usd("1.00")), Posting(ESCROW, "credit", usd("0.99"))],
     "ledger_unbalanced"),
    ([Posting(CASH, "debit", jpy(100)), Posting(ESCROW, "credit", jpy(100)),
      Posting(CASH, "debit", usd("1.00")), Posting(ESCROW, "credit", usd("1.00"))],
     "ledger_cross_currency"),
    ([Posting(CASH, "debit", jpy(100)), Posting(ESCROW, "credit", usd("100.00"))],
     "ledger_cross_currency"),
    # Zero and negative lines are refused even when the set sums to zero.
    ([Posting(CASH, "debit", jpy(0)), Posting(ESCROW, "credit", jpy(0))], "ledger_unbalanced"),
    ([Posting(CASH, "debit", jpy(-5)), Posting(ESCROW, "credit", jpy(-5))], "ledger_unbalanced"),
    ([Posting(CASH, "debit", jpy(100)), Posting(ESCROW, "credit", jpy(105)),
      Posting(ESCROW, "credit", jpy(-5))], "ledger_unbalanced"),
    ([Posting(CASH, "left", jpy(100)), Posting(ESCROW, "credit", jpy(100))],  # type: ignore[arg-type]
     "ledger_unbalanced"),
]


@pytest.mark.parametrize(("postings", "code"), UNBALANCED)
def test_check_balanced_refuses(postings: list[Posting], code: str) -> None:
    with pytest.raises(LedgerError) as raised:
        check_balanced(postings)
    assert raised.value.code == code


def test_check_balanced_accepts_a_balanced_set() -> None:
    check_balanced([
        Posting(CASH, "debit", usd("10.50")),
        Posting(ESCROW, "credit", usd("10.00")),
        Posting("revenue:platform_fees:client", "credit", usd("0.50")),
    ])


def minor_units(currency: str, high: int, low: int = 1) -> st.SearchStrategy[Decimal]:
    """Amounts of `low` to `high` minor units, at the currency's precision; small
    amounts and the tier bounds are drawn often so rounding and boundaries show."""
    units = st.one_of(st.integers(low, 1_000), st.integers(low, high),
                      st.sampled_from([99_999, 100_000, 100_001, 199_999, 200_000]))
    return units.map(lambda n: Decimal(n).scaleb(-exponent(currency)))


@st.composite
def releases(draw: st.DrawFn) -> tuple[FeePlan, Money, Money, Money, bool]:
    """A plan and the arguments of one release: the tax share is at most the gross
    (the aggregates refuse `tax_exceeds_amount`) and withholding is JPY only."""
    plan = PLANS[draw(st.sampled_from(["tiered", "flat", "usd_standard"]))]
    c = plan.currency
    high = 10**12 * 10 ** exponent(c)
    gross = draw(minor_units(c, high))
    cumulative = draw(minor_units(c, high, low=0))
    share = draw(st.integers(0, int(gross))) if c == "JPY" else 0
    withholding = c == "JPY" and draw(st.booleans())
    return plan, Money(gross, c), Money(cumulative, c), Money(Decimal(share), c), withholding


def decimals(amount: Money) -> int:
    return max(0, -int(amount.amount.as_tuple().exponent))


@given(releases())
def test_release_parts_are_whole_non_negative_and_balance(
    case: tuple[FeePlan, Money, Money, Money, bool],
) -> None:
    plan, gross, cumulative, share, withholding = case
    fees = plan.release(gross, cumulative, share, withholding)
    parts = [fees.fee, fees.fee_tax, fees.withholding, fees.net]
    for part in parts:
        assert part.currency.code == plan.currency
        assert part.amount >= 0
        assert decimals(part) <= exponent(plan.currency)
    assert fees.gross == gross
    assert sum((p.amount for p in parts), Decimal(0)) == gross.amount
    release = Release("m1", "w-7", fees.gross, fees.fee, fees.fee_tax, fees.withholding, fees.net)
    check_balanced(postings_for("job-42", "c-1", [release]))
