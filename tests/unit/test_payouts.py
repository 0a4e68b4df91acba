"""Party payout streams: ids, postings (SPEC §6), transitions and every rejection."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from settlement.core.errors import LedgerError, SettlementError
from settlement.core.money import Money
from settlement.ledger.balances import trial_balances
from settlement.ledger.payout_rules import (
    failed_postings,
    initiated_postings,
    party_of_account,
    payout_account,
    settled_postings,
)
from settlement.ledger.posting import Posting, check_balanced
from settlement.payouts import (
    PartyPayouts,
    PayoutEvent,
    PayoutFailed,
    PayoutInitiated,
    PayoutSettled,
)
from settlement.payouts.events import PartyPayoutsOpened
from settlement.payouts.ids import (
    RUN_ID_CHARS_MAX,
    party_payouts_id,
    payout_id_of,
    run_id_of,
    stream_of_payout,
)
from settlement.relay.cloudevents import event_name

T0 = datetime(2026, 11, 27, tzinfo=UTC)
T1 = datetime(2026, 11, 28, tzinfo=UTC)
SPEC_IDENTIFIER = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def jpy(amount: int | str) -> Money:
    return Money(Decimal(amount), "JPY")


def lines(postings: list[Posting]) -> list[tuple[str, str, Decimal, str]]:
    return [(p.account, p.side, p.amount.amount, p.amount.currency.code) for p in postings]


def payout_events(party: PartyPayouts) -> list[PayoutEvent]:
    """The payout events `party` has pending (its opening event left out)."""
    events = [e for e in party.collect_events() if not isinstance(e, PartyPayoutsOpened)]
    assert all(isinstance(e, PayoutEvent) for e in events)
    return events  # type: ignore[return-value]


def opening() -> list[Any]:
    return list(PartyPayouts.open("worker", "w1", run_id="run-1", at=T0).collect_events())


def replayed(events: list[Any]) -> PartyPayouts:
    party = None
    for event in events:
        party = event.mutate(party)
    assert isinstance(party, PartyPayouts)
    return party


# Ids -----------------------------------------------------------------------------------


def test_payout_ids_are_spec_identifiers_at_the_longest_run_and_party_ids() -> None:
    payout_id = payout_id_of("r" * RUN_ID_CHARS_MAX, "worker", "w" * 128, "KWD")
    assert len(payout_id) == 128
    assert SPEC_IDENTIFIER.fullmatch(payout_id)


def test_a_payout_id_leads_to_its_partys_stream() -> None:
    payout_id = payout_id_of("run-1", "client", "client-a", "USD")
    assert stream_of_payout(payout_id) == party_payouts_id("client", "client-a")
    assert payout_id == payout_id_of("run-1", "client", "client-a", "USD")  # deterministic
    assert payout_id != payout_id_of("run-1", "worker", "client-a", "USD")
    assert payout_id != payout_id_of("run-2", "client", "client-a", "USD")


@pytest.mark.parametrize("payout_id", [
    "", "po-run-1", "po-run-1-JPY", "mkt-000123",
    "po-run-1-" + "0" * 31 + "-JPY",  # one hex digit short
    "po-run-1-" + "A" * 32 + "-JPY",  # upper-case hex is not what we write
    "po--" + "0" * 32 + "-JPY",  # empty run id
    payout_id_of("run-1", "worker", "w1", "JPY") + "\n",
])
def test_anything_not_shaped_like_a_payout_id_names_no_stream(payout_id: str) -> None:
    assert stream_of_payout(payout_id) is None


@pytest.mark.parametrize("run_id", ["", "run 1", "r" * (RUN_ID_CHARS_MAX + 1), "run/1"])
def test_bad_run_ids_are_refused(run_id: str) -> None:
    with pytest.raises(SettlementError) as refused:
        payout_id_of(run_id, "worker", "w1", "JPY")
    assert refused.value.code == "invalid_identifier"


def test_the_default_run_id_is_the_utc_time_of_the_run() -> None:
    local = datetime.fromisoformat("2026-11-27T09:00:00+09:00")
    assert run_id_of(local) == "run-20261127T000000Z"


# Postings (SPEC §6) ----------------------------------------------------------------------


def test_initiated_moves_the_payable_into_transit() -> None:
    account = payout_account("worker", "w1")
    assert lines(initiated_postings(account, jpy(76_690))) == [
        ("liabilities:worker_payable:w1", "debit", Decimal(76_690), "JPY"),
        ("liabilities:payouts_in_transit", "credit", Decimal(76_690), "JPY"),
    ]


def test_settled_moves_transit_out_of_cash() -> None:
    assert lines(settled_postings(Money(Decimal("12.34"), "USD"))) == [
        ("liabilities:payouts_in_transit", "debit", Decimal("12.34"), "USD"),
        ("assets:safeguarded_cash", "credit", Decimal("12.34"), "USD"),
    ]


def test_failed_returns_transit_to_the_refundable_account() -> None:
    account = payout_account("client", "client-a")
    assert lines(failed_postings(account, jpy(25_000))) == [
        ("liabilities:payouts_in_transit", "debit", Decimal(25_000), "JPY"),
        ("liabilities:client_refundable:client-a", "credit", Decimal(25_000), "JPY"),
    ]


@pytest.mark.parametrize("amount", [jpy(0), jpy(-5)])
def test_payout_postings_refuse_amounts_that_are_not_positive(amount: Money) -> None:
    with pytest.raises(LedgerError):
        initiated_postings(payout_account("worker", "w1"), amount)


@pytest.mark.parametrize(("account", "party"), [
    ("liabilities:worker_payable:w1", ("worker", "w1")),
    ("liabilities:worker_payable:a:b", ("worker", "a:b")),
    ("liabilities:client_refundable:client-a", ("client", "client-a")),
    ("liabilities:worker_payable:", None),
    ("liabilities:escrow:job-1", None),
    ("liabilities:payouts_in_transit", None),
    ("liabilities:withholding_tax:client-a", None),
    ("assets:safeguarded_cash", None),
])
def test_only_payable_and_refundable_accounts_belong_to_a_party(
        account: str, party: tuple[str, str] | None) -> None:
    assert party_of_account(account) == party
    if party is not None:
        assert payout_account(*party) == account


# Transitions ------------------------------------------------------------------------------


@pytest.fixture
def party() -> PartyPayouts:
    return PartyPayouts.open("worker", "w1", run_id="run-1", at=T0)


def test_initiate_then_settle(party: PartyPayouts) -> None:
    payout_id = party.initiate("run-1", jpy(76_690), 24, T0)
    party.settle(payout_id, "bank-77", causation_id="res-1", at=T1)
    opened, initiated, settled = party.collect_events()
    assert isinstance(opened, PartyPayoutsOpened) and opened.postings == []
    assert isinstance(initiated, PayoutInitiated) and isinstance(settled, PayoutSettled)
    assert (initiated.payout_id, initiated.party_type, initiated.party_id, initiated.account,
            initiated.amount, initiated.as_of_position, initiated.run_id,
            initiated.causation_id, initiated.timestamp) == (
        payout_id, "worker", "w1", "liabilities:worker_payable:w1", jpy(76_690), 24, "run-1",
        "payout-run:run-1", T0)
    assert (settled.payout_id, settled.bank_ref, settled.causation_id, settled.timestamp) == (
        payout_id, "bank-77", "res-1", T1)
    assert party.payouts[payout_id].status == "settled"
    assert party.payouts[payout_id].bank_ref == "bank-77"
    assert replayed([opened, initiated, settled]).state_digest() == party.state_digest()
    ledger = trial_balances(p for e in (initiated, settled) for p in e.postings)["JPY"]
    assert ledger.balanced
    assert {a.account: a.balance for a in ledger.accounts} == {
        "assets:safeguarded_cash": Decimal(-76_690),
        "liabilities:payouts_in_transit": Decimal(0),
        "liabilities:worker_payable:w1": Decimal(-76_690),
    }


def test_initiate_then_fail_returns_the_money(party: PartyPayouts) -> None:
    payout_id = party.initiate("run-1", jpy(500), 7, T0)
    party.fail(payout_id, "account closed", causation_id="res-2", at=T1)
    events = payout_events(party)
    failed = events[-1]
    assert isinstance(failed, PayoutFailed)
    assert (failed.reason, failed.account, failed.amount) == (
        "account closed", "liabilities:worker_payable:w1", jpy(500))
    assert party.payouts[payout_id].status == "failed"
    assert replayed([*opening(), *events]).state_digest() == party.state_digest()
    ledger = trial_balances(p for e in events for p in e.postings)["JPY"]
    assert {a.account: a.balance for a in ledger.accounts} == {
        "liabilities:payouts_in_transit": Decimal(0),
        "liabilities:worker_payable:w1": Decimal(0),
    }


def test_one_run_pays_each_currency_separately(party: PartyPayouts) -> None:
    yen = party.initiate("run-1", jpy(500), 7, T0)
    dollars = party.initiate("run-1", Money(Decimal("9.99"), "USD"), 7, T0)
    assert yen != dollars
    assert {p.amount.currency.code for p in party.payouts.values()} == {"JPY", "USD"}


def test_every_payout_event_balances_and_carries_its_wire_name(party: PartyPayouts) -> None:
    first = party.initiate("run-1", jpy(500), 7, T0)
    second = party.initiate("run-2", jpy(300), 9, T0)
    party.settle(first, "bank-1", causation_id="res-1", at=T1)
    party.fail(second, "closed", causation_id="res-2", at=T1)
    events = payout_events(party)
    for event in events:
        check_balanced(event.postings)
    assert [event_name(e) for e in events] == [
        "payout_initiated", "payout_initiated", "payout_settled", "payout_failed"]


# Rejections: input → code, and a refused command changes nothing -----------------------------

Command = Callable[[PartyPayouts, str], object]
REJECTIONS: list[tuple[str, Command, str]] = [
    ("bad run id", lambda p, _: p.initiate("run 2", jpy(1), 9, T1), "invalid_identifier"),
    ("same run again", lambda p, _: p.initiate("run-1", jpy(1), 9, T1), "payout_exists"),
    ("zero", lambda p, _: p.initiate("run-2", jpy(0), 9, T1), "payout_not_positive"),
    ("negative", lambda p, _: p.initiate("run-2", jpy(-1), 9, T1), "payout_not_positive"),
    ("older balance", lambda p, _: p.initiate("run-2", jpy(1), 6, T1), "stale_balance"),
    ("settle unknown", lambda p, _: p.settle("po-x", "b", causation_id="r", at=T1),
     "unknown_payout"),
    ("fail unknown", lambda p, _: p.fail("po-x", "why", causation_id="r", at=T1),
     "unknown_payout"),
]


@pytest.mark.parametrize(("name", "command", "code"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections_of_an_open_payout(party: PartyPayouts, name: str, command: Command,
                                      code: str) -> None:
    payout_id = party.initiate("run-1", jpy(500), 7, T0)
    assert_refused(party, code, lambda: command(party, payout_id))


@pytest.mark.parametrize("outcome", ["settle", "fail"])
@pytest.mark.parametrize("then", ["settle", "fail"])
def test_a_completed_payout_never_changes_again(party: PartyPayouts, outcome: str,
                                                then: str) -> None:
    payout_id = party.initiate("run-1", jpy(500), 7, T0)
    complete(party, outcome, payout_id)
    code = "payout_already_settled" if outcome == "settle" else "payout_already_failed"
    assert_refused(party, code, lambda: complete(party, then, payout_id))


def test_a_new_payout_may_follow_a_completed_one(party: PartyPayouts) -> None:
    first = party.initiate("run-1", jpy(500), 7, T0)
    party.fail(first, "closed", causation_id="res-1", at=T1)
    second = party.initiate("run-2", jpy(500), 12, T1)
    assert [p.status for p in party.payouts.values()] == ["failed", "initiated"]
    assert party.payouts[second].as_of_position == 12


@pytest.mark.parametrize(("party_type", "party_id", "code"), [
    ("bank", "w1", "invalid_party_type"),
    ("worker", "w 1", "invalid_identifier"),
    ("client", "", "invalid_identifier"),
])
def test_opening_refuses_unknown_parties(party_type: str, party_id: str, code: str) -> None:
    with pytest.raises(SettlementError) as refused:
        PartyPayouts.open(party_type, party_id, run_id="run-1", at=T0)
    assert refused.value.code == code


def complete(party: PartyPayouts, how: str, payout_id: str) -> None:
    if how == "settle":
        party.settle(payout_id, "bank-1", causation_id="res-1", at=T1)
    else:
        party.fail(payout_id, "closed", causation_id="res-1", at=T1)


def assert_refused(party: PartyPayouts, code: str, command: Callable[[], object]) -> None:
    party.collect_events()
    before = party.state_digest()
    with pytest.raises(SettlementError) as refused:
        command()
    assert refused.value.code == code, refused.value
    assert party.collect_events() == []
    assert party.state_digest() == before
