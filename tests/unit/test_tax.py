"""Withholding per month and year, due dates, statements and remittances (SPEC
§5, §6, §12), with hand-computed amounts."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource

from settlement.core.errors import InvalidInput, NotFound, Rejected
from settlement.core.fees import withholding_tax
from settlement.core.money import Money
from settlement.core.months import Month
from settlement.projections.model.envelope import parse
from settlement.projections.model.payouts import FAILED, SETTLED, evolve_payout
from settlement.relay.cloudevents import to_cloud_event
from settlement.relay.records import to_record
from settlement.tax.remittance import ClientWithholding, stream_of_remittance
from settlement.tax.statement import csv_lines, document, statement, to_json
from settlement.tax.withholding import (
    Release,
    annual,
    due_date,
    monthly,
    parse_month,
    parse_year,
)

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2027, 2, 1, tzinfo=JST)


def release(base: int, day: int, worker: str = "w1", client: str = "c1", month: int = 11,
            year: int = 2026, withheld: bool = True) -> Release:
    """A release of gross = base (no consumption tax share), W as recorded at release."""
    w = withholding_tax(Money(base, "JPY")).amount if withheld else Decimal(0)
    gross = Decimal(base)
    return Release(day, datetime(year, month, day, 12, tzinfo=JST), "job", f"i{day}", client,
                   worker, "JPY", gross, Decimal(0), Decimal(0), w, gross - w)


def test_withholding_at_the_boundary_of_one_release() -> None:
    # B ≤ 1,000,000: floor(B × 0.1021); above: 102,100 + floor((B − 1,000,000) × 0.2042).
    assert withholding_tax(Money(1_000_000, "JPY")).amount == 102_100
    assert withholding_tax(Money(1_000_001, "JPY")).amount == 102_100
    assert withholding_tax(Money(1_000_010, "JPY")).amount == 102_102
    (row,) = monthly([release(1_000_000, 3), release(1_000_010, 4, client="c2")][:1],
                     Month(2026, 11))
    assert (row.withheld, row.gross, row.workers) == (102_100, 1_000_000, 1)


def test_two_releases_in_a_month_are_each_withheld_on_their_own() -> None:
    # 600,000 twice: 61,260 each = 122,520; never 1,200,000 at once (142,940).
    rows = monthly([release(600_000, 3), release(600_000, 20, worker="w2"),
                    release(600_000, 1, month=12), release(5_000, 4, withheld=False)],
                   Month(2026, 11))
    (row,) = rows
    assert (row.withheld, row.gross, row.releases, row.workers) == (122_520, 1_200_000, 2, 2)
    assert row.withheld != withholding_tax(Money(1_200_000, "JPY")).amount


@pytest.mark.parametrize(("month", "due"), [
    ((2026, 11), date(2026, 12, 10)),  # a Thursday
    ((2026, 4), date(2026, 5, 11)),  # the 10th a Sunday → Monday
    ((2026, 9), date(2026, 10, 13)),  # a Saturday, then Sunday and Sports Day (Mon 10/12)
    ((2027, 12), date(2028, 1, 11)),  # Monday 1/10 is 成人の日 → Tuesday
])
def test_due_date_moves_to_the_next_business_day(month: tuple[int, int], due: date) -> None:
    assert due_date(Month(*month)) == due


def test_bad_months_and_years() -> None:
    for text, code in (("2027-02", "month_not_over"), ("2027-13", "invalid_month"),
                       ("2027-1", "invalid_month"), ("1999-12", "invalid_month")):
        with pytest.raises(InvalidInput) as refused:
            parse_month(text, NOW)
        assert refused.value.code == code, text
    assert str(parse_month("2027-01", NOW)) == "2027-01"
    with pytest.raises(InvalidInput) as future:
        parse_year("2028", NOW)
    assert future.value.code == "year_in_future"
    assert parse_year("2027", NOW) == 2027


def test_annual_rows_over_50000_individuals_only_withheld_or_not() -> None:
    year = [release(30_000, 5, month=m) for m in (1, 6)]  # w1 via c1: 60,000, withheld
    year += [release(50_000, 7, worker="w2", withheld=False)]  # exactly 50,000: no row
    year += [release(20_000, 8, worker="w3", withheld=False, month=m) for m in (2, 3, 4)]
    year += [release(90_000, 9, worker="corp")]  # not an individual
    year += [release(90_000, 9, worker="w1", year=2025)]  # another year
    rows = annual(year, 2026, ["w1", "w2", "w3"])
    assert [(r.client_id, r.worker_id, r.gross, r.withheld, r.releases) for r in rows] == [
        ("c1", "w1", 60_000, 6_126, 2), ("c1", "w3", 60_000, 0, 3)]


INITIATED = {"payout_id": "po-1", "party_type": "worker", "party_id": "w1",
             "amount": {"amount": "76440", "currency": "JPY"},
             "transfer_fee": {"amount": "250", "currency": "JPY"},
             "transfer_fee_tax": {"amount": "22", "currency": "JPY"},
             "bank_account": {"bank_code": "0001", "branch_code": "001",
                              "account_type": "ordinary", "account_number": "1234567",
                              "holder_kana": "ﾔﾏﾀﾞ ﾀﾛｳ"},
             "items": [{"job_id": "j", "item_id": "m1", "amount": "76440"}]}


def test_statement_shows_fee_sent_and_a_masked_account() -> None:
    r = Release(1, NOW, "j", "m1", "c1", "w1", "JPY", Decimal(110_000), Decimal(21_000),
                Decimal(2_100), Decimal(10_460), Decimal(76_440))
    s = statement(INITIATED, NOW, {("j", "m1"): r})
    body = to_json(s, "settled")
    assert (body["transfer_fee"], body["sent"], body["totals"]["withholding"]) == (
        "250", "76190", "10460")
    assert body["bank_account"]["account_number"] == "****567"
    assert csv_lines(s)[-2:] == [
        {"line": "transfer_fee", "job_id": "", "item_id": "", "gross": "", "fee": "",
         "fee_tax": "", "withholding": "", "net": "-250"},
        {"line": "sent", "job_id": "", "item_id": "", "gross": "", "fee": "", "fee_tax": "",
         "withholding": "", "net": "76190"}]
    assert "1234567" not in str(document(s))


def test_remittance_remits_what_is_not_covered_and_confirms_once() -> None:
    month = Month(2026, 11)
    stream = ClientWithholding.open_remitting("c1", month, Money(13_273, "JPY"), NOW)
    (first,) = stream.remittances
    assert stream.remit(month, Money(13_273, "JPY"), NOW) is None  # nothing new
    late = stream.remit(month, Money(14_000, "JPY"), NOW)  # a late release: 727 more
    assert late is not None and stream.remittances[late].amount == Money(727, "JPY")
    with pytest.raises(Rejected) as fell:
        stream.remit(month, Money(100, "JPY"), NOW)
    assert fell.value.code == "withheld_decreased"
    stream.confirm(first, "nta-1", causation_id="x", at=NOW)
    with pytest.raises(Rejected) as again:
        stream.confirm(first, "nta-1", causation_id="x", at=NOW)
    assert again.value.code == "remittance_already_confirmed"
    with pytest.raises(NotFound):
        stream.confirm("wr-202611-9-" + "0" * 32, "nta-1", causation_id="x", at=NOW)
    assert stream_of_remittance(first) == stream.id
    events = stream.collect_events()
    opened, _, confirmed = (to_cloud_event(n, e) for n, e in enumerate(events, start=1))
    assert opened["type"] == "settlement.withholding_remitted"
    assert opened["subject"] == "c1" and to_record(1, events[0]) is not None  # keyed by party
    assert opened["data"]["postings"] == [
        {"account": "liabilities:withholding_tax:c1", "side": "debit", "amount": "13273",
         "currency": "JPY"},
        {"account": "liabilities:payouts_in_transit", "side": "credit", "amount": "13273",
         "currency": "JPY"}]
    assert confirmed["data"]["postings"][1]["account"] == "assets:safeguarded_cash"
    view = evolve_payout(None, parse(opened))
    assert (view.payout_id, view.party_type, view.amount) == (first, "withholding", 13_273)
    assert evolve_payout(view, parse(confirmed)).status == SETTLED


SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _validator(name: str) -> Draft202012Validator:
    loaded = [json.loads(p.read_text("utf-8")) for p in SCHEMAS.glob("*.json")]
    registry: Registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in loaded)
    return Draft202012Validator({"$ref": f"https://settlement.example/schemas/v1/{name}"},
                                registry=registry)


def test_a_failed_remittance_reverses_and_the_month_is_remitted_again() -> None:
    month = Month(2026, 11)
    stream = ClientWithholding.open_remitting("c1", month, Money(13_273, "JPY"), NOW)
    (first,) = stream.remittances
    stream.fail(first, "口座相違", causation_id="r-1", at=NOW)
    with pytest.raises(Rejected) as failed:
        stream.confirm(first, "nta-1", causation_id="r-2", at=NOW)
    assert failed.value.code == "remittance_already_failed"
    again = stream.remit(month, Money(13_273, "JPY"), NOW)  # owed again, in full
    assert again is not None and again.startswith("wr-202611-2-")
    assert stream.remittances[again].amount == Money(13_273, "JPY")
    opened, reversed_, _ = (to_cloud_event(n, e)
                            for n, e in enumerate(stream.collect_events(), start=1))
    assert reversed_["type"] == "settlement.withholding_remittance_failed"
    assert [(p["account"], p["side"]) for p in reversed_["data"]["postings"]] == [
        ("liabilities:payouts_in_transit", "debit"), ("liabilities:withholding_tax:c1", "credit")]
    assert evolve_payout(evolve_payout(None, parse(opened)), parse(reversed_)).status == FAILED


def test_remittance_events_match_their_schemas() -> None:
    month = Month(2026, 11)
    stream = ClientWithholding.open_remitting("c1", month, Money(13_273, "JPY"), NOW)
    stream.confirm(next(iter(stream.remittances)), "nta-1", causation_id="tax-confirm:x", at=NOW)
    stream.remit(month, Money(13_300, "JPY"), NOW)
    stream.fail(f"wr-202611-2-{stream.id.hex}", "口座相違", causation_id="r-1", at=NOW)
    chain = ("a" * 64, "b" * 64)
    for n, event in enumerate(stream.collect_events(), start=1):
        cloud = to_cloud_event(n, event, chain)
        name = f"{cloud['type']}.json"
        errors = list(_validator(name).iter_errors(cloud))
        assert not errors, (name, [e.message for e in errors])
        assert not _validator(name).is_valid({**cloud, "data": {**cloud["data"], "x": 1}})


def test_a_client_refund_item_never_reads_as_the_workers_release() -> None:
    # A dispute split releases and refunds the same item: the client's payout pays the refund.
    refund = {**INITIATED, "party_type": "client", "party_id": "c1", "transfer_fee": None,
              "transfer_fee_tax": None, "amount": {"amount": "25000", "currency": "JPY"},
              "items": [{"job_id": "j", "item_id": "m1", "amount": "25000"}]}
    r = Release(1, NOW, "j", "m1", "c1", "w1", "JPY", Decimal(30_000), Decimal(3_000),
                Decimal(300), Decimal(3_063), Decimal(23_637))
    body = to_json(statement(refund, NOW, {("j", "m1"): r}), "initiated")
    assert body["items"] == [{"job_id": "j", "item_id": "m1", "gross": "25000", "fee": "0",
                              "fee_tax": "0", "withholding": "0", "net": "25000"}]
    assert (body["transfer_fee"], body["sent"]) == ("0", "25000")
