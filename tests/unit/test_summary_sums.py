"""The live projector's balance totals summed in Python (`summaries.prefix_sums`):
the prefixes and sums PostgreSQL's `_balance_sums` gives over the same rows,
decimals included (`tests/integration/test_summaries.py` compares the kept rows
with the full scans)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from settlement.projections.storage.summaries import FILLED, fill_statements, prefix_sums, prefixes

D = Decimal


@pytest.mark.parametrize(("account", "expected"), [
    ("assets:safeguarded_cash", ["", "assets:"]),
    ("liabilities:escrow:bench-000001", ["", "liabilities:", "liabilities:escrow:"]),
    ("expenses:", ["", "expenses:"]),
    ("revenue", [""]),
    ("a::b", ["", "a:", "a::"]),
])
def test_prefixes_are_the_empty_one_and_each_ending_at_a_colon(account: str,
                                                               expected: list[str]) -> None:
    assert prefixes(account) == expected


def test_sums_per_prefix_on_the_natural_side_keep_the_largest_scale() -> None:
    rows = [("assets:safeguarded_cash", "JPY", D("100.50"), D("0")),
            ("liabilities:escrow:j1", "JPY", D("0"), D("100")),
            ("revenue:fees", "JPY", D("0"), D("0.5")),
            ("expenses:bank", "USD", D("3"), D("1"))]
    sums = {(c, p): (str(d), str(cr), str(b)) for c, p, d, cr, b in prefix_sums(rows)}
    assert sums == {
        ("JPY", ""): ("100.50", "100.5", "201.00"),
        ("JPY", "assets:"): ("100.50", "0", "100.50"),
        ("JPY", "liabilities:"): ("0", "100", "100"),
        ("JPY", "liabilities:escrow:"): ("0", "100", "100"),
        ("JPY", "revenue:"): ("0", "0.5", "0.5"),
        ("USD", ""): ("3", "1", "2"),
        ("USD", "expenses:"): ("3", "1", "2"),
    }


def test_keys_between_the_account_and_the_sums_are_kept_per_row() -> None:
    day1, day2 = date(2026, 12, 1), date(2026, 12, 2)
    rows = [("liabilities:worker_payable:w1", "JPY", day1, D("0"), D("90")),
            ("liabilities:worker_payable:w2", "JPY", day1, D("10"), D("0")),
            ("liabilities:worker_payable:w1", "JPY", day2, D("0"), D("7"))]
    sums = {key[:3]: key[3:] for key in prefix_sums(rows)}
    assert sums[("JPY", "liabilities:worker_payable:", day1)] == (D("10"), D("90"), D("80"))
    assert sums[("JPY", "", day2)] == (D("0"), D("7"), D("7"))
    assert len(sums) == 6  # three prefixes on each of two days


def test_the_filled_tables_are_those_the_fill_writes() -> None:
    # A bulk rebuild makes the other tables' indexes while the fill runs (`bulk.complete`):
    # a table the fill wrote and that was indexed meanwhile would wait on the index build.
    written = {statement.split()[2].removeprefix("{schema}.")
               for statement in fill_statements() if statement.startswith(("INSERT", "DELETE"))}
    assert written == set(FILLED)
